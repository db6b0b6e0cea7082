"""Reading a feature version's rows for the drift gates: the joined rows of one side of the newest
snapshot, sampled reproducibly, equal to the same rows of a plain pandas join of the files."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from orchestration.core.features.publishing import FEATURE_TABLES
from orchestration.core.features.tables import read_feature_rows

# microseconds with a zone, as the dbt exports (DuckDB reads nanoseconds as naive times)
SNAPSHOTS = pd.to_datetime(["2026-01-01", "2026-02-01", "2026-03-01"], utc=True).as_unit("us")
CUSTOMERS = 400


@pytest.fixture
def version(tmp_path):
    """Four feature tables on one spine (customers x snapshots), each with its own columns;
    the rows of each file shuffled so nothing depends on the files' order."""
    rng = np.random.default_rng(7)
    spine = pd.DataFrame(
        {
            "customer_id": np.repeat(np.arange(1, CUSTOMERS + 1), len(SNAPSHOTS)),
            "event_timestamp": SNAPSHOTS[np.tile(np.arange(len(SNAPSHOTS)), CUSTOMERS)],
        }
    )
    for i, table in enumerate(FEATURE_TABLES):
        frame = spine.assign(**{f"f{i}_value": rng.normal(size=len(spine))})
        frame[f"f{i}_flag"] = rng.random(len(spine)) < 0.3
        shuffled = frame.sample(frac=1.0, random_state=i)
        shuffled.to_parquet(tmp_path / f"{table}.parquet", index=False)
    return tmp_path


def _pandas_join(version_path) -> pd.DataFrame:
    frames = [pd.read_parquet(version_path / f"{t}.parquet") for t in FEATURE_TABLES]
    joined = frames[0]
    for frame in frames[1:]:
        joined = joined.merge(frame, on=["customer_id", "event_timestamp"], how="inner")
    return joined


def _same_rows(got: pd.DataFrame, expected: pd.DataFrame) -> None:
    keys = ["customer_id", "event_timestamp"]
    expected = expected.sort_values(keys).reset_index(drop=True)[list(got.columns)]
    got = got.reset_index(drop=True)
    assert list(got["customer_id"]) == list(expected["customer_id"])
    pd.testing.assert_frame_equal(got, expected, check_dtype=False)


def test_the_newest_snapshot_whole_is_the_join_of_the_files(version):
    got = read_feature_rows(version, latest=True)
    expected = _pandas_join(version)
    expected = expected[expected["event_timestamp"] == SNAPSHOTS[-1]]
    assert len(got) == CUSTOMERS
    assert set(got.columns) == set(expected.columns)
    _same_rows(got, expected)


def test_a_sample_is_the_joined_rows_of_its_keys_and_the_same_every_time(version):
    got = read_feature_rows(version, latest=False, sample_rows=150, seed=3)
    again = read_feature_rows(version, latest=False, sample_rows=150, seed=3)
    pd.testing.assert_frame_equal(got, again)
    assert len(got) == 150
    assert not got.duplicated(["customer_id", "event_timestamp"]).any()
    assert set(got["event_timestamp"]) <= set(SNAPSHOTS[:-1])  # the older snapshots only
    assert got["event_timestamp"].nunique() == 2  # spread over both, not one block
    joined = _pandas_join(version)
    chosen = joined.merge(got[["customer_id", "event_timestamp"]], on=got.columns[:2].tolist())
    _same_rows(got, chosen)


def test_another_seed_draws_other_rows(version):
    one = read_feature_rows(version, latest=True, sample_rows=100, seed=0)
    other = read_feature_rows(version, latest=True, sample_rows=100, seed=1)
    assert len(one) == len(other) == 100
    assert set(one["customer_id"]) != set(other["customer_id"])
    assert (one["event_timestamp"] == SNAPSHOTS[-1]).all()


def test_a_sample_larger_than_the_snapshot_is_the_whole_snapshot(version):
    got = read_feature_rows(version, latest=True, sample_rows=10 * CUSTOMERS)
    assert sorted(got["customer_id"]) == list(range(1, CUSTOMERS + 1))
