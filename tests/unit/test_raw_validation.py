"""Contract validation: every broken file gets a message naming the file, the field and a row."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from orchestration.core.world.contract import (
    CAMPAIGN_EXPOSURES,
    CUSTOMERS,
    ENGAGEMENT_EVENTS,
    ORDERS,
    RAW_TABLES,
)
from orchestration.core.world.synthetic import WorldSpec, generate_world
from orchestration.core.world.validation import (
    RawDataError,
    require_valid_raw,
    validate_raw_dir,
    validate_raw_file,
)

AS_OF = datetime(2025, 6, 1, 12, tzinfo=UTC)


@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("pristine")
    generate_world(WorldSpec(customers=2_000, as_of=AS_OF), root / "raw", root / "ground_truth")
    return root / "raw"


@pytest.fixture
def raw(pristine, tmp_path) -> Path:
    """A private copy of a valid raw directory, to break."""
    target = tmp_path / "raw"
    shutil.copytree(pristine, target)
    return target


def _edit(path: Path, edit: Callable[[pd.DataFrame], pd.DataFrame]) -> None:
    """Rewrite a raw file through pandas (as a team's export would), keeping microseconds."""
    frame = edit(pq.read_table(path).to_pandas())
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path, coerce_timestamps="us")


def _set(path: Path, row: int, column: str, value) -> None:
    def edit(frame: pd.DataFrame) -> pd.DataFrame:
        if value is None:
            frame[column] = frame[column].astype(object)
        frame.loc[row, column] = value
        return frame

    _edit(path, edit)


def _only_problem(raw: Path, table: str) -> str:
    problems = validate_raw_dir(raw, now=AS_OF)
    assert {t: p for t, p in problems.items() if p}.keys() == {table}, problems
    assert len(problems[table]) == 1, problems[table]
    return problems[table][0]


def test_a_generated_world_is_valid(pristine):
    assert validate_raw_dir(pristine, now=AS_OF) == {t.name: [] for t in RAW_TABLES}
    require_valid_raw(pristine, now=AS_OF)  # does not raise


def test_missing_file(raw):
    (raw / "orders.parquet").unlink()
    message = _only_problem(raw, "orders")
    assert message.startswith("raw/orders.parquet: file is missing")
    assert "order_id, customer_id, amount, ordered_at" in message


def test_missing_column_names_the_expected_type(raw):
    _edit(raw / "orders.parquet", lambda f: f.drop(columns=["amount"]))
    assert _only_problem(raw, "orders") == (
        "raw/orders.parquet: column 'amount' is missing (expected double); add it or map your "
        "source column to it"
    )


def test_column_of_the_wrong_type(raw):
    _edit(raw / "orders.parquet", lambda f: f.assign(amount=f["amount"].astype(str)))
    message = _only_problem(raw, "orders")
    assert "column 'amount' has type VARCHAR" in message and "double" in message


def test_castable_types_from_a_pandas_export_are_accepted(raw):
    """int32 ids and nanosecond or zone-less timestamps cast to the contract types."""
    frame = pq.read_table(raw / "customers.parquet").to_pandas()
    frame["customer_id"] = frame["customer_id"].astype("int32")
    frame["updated_at"] = frame["updated_at"].dt.tz_localize(None)
    frame.to_parquet(raw / "customers.parquet", index=False)  # nanoseconds
    assert validate_raw_dir(raw, now=AS_OF)["customers"] == []


def test_null_primary_key(raw):
    _set(raw / "orders.parquet", 3, "order_id", None)
    message = _only_problem(raw, "orders")
    assert message.startswith("raw/orders.parquet: primary key column 'order_id' has 1 null")
    assert "row 3" in message


def test_null_in_a_required_column(raw):
    customer = pq.read_table(raw / "campaign_exposures.parquet")["customer_id"][4].as_py()
    _set(raw / "campaign_exposures.parquet", 4, "arm", None)
    message = _only_problem(raw, "campaign_exposures")
    assert "column 'arm' has 1 null value(s), first at row 4 (exposure_id=" in message
    assert str(customer) not in message or "exposure_id" in message


def test_nulls_allowed_where_the_contract_says(pristine):
    assert ENGAGEMENT_EVENTS.nullable == ("channel",)
    assert validate_raw_file(pristine / "engagement_events.parquet", ENGAGEMENT_EVENTS, AS_OF) == []
    assert pq.read_table(pristine / "suppressions.parquet")["channel"].null_count > 0
    assert validate_raw_dir(pristine, now=AS_OF)["suppressions"] == []


def test_duplicate_primary_key(raw):
    ids = pq.read_table(raw / "orders.parquet")["order_id"]
    _set(raw / "orders.parquet", 5, "order_id", ids[4].as_py())
    message = _only_problem(raw, "orders")
    assert message.startswith("raw/orders.parquet: primary key (order_id) is not unique")
    assert (
        f"1 key value(s) appear more than once (1 extra row(s)), e.g. order_id={ids[4]}" in message
    )
    assert "rows 4 and 5" in message


def test_duplicate_composite_key(raw):
    _edit(raw / "contact_points.parquet", lambda f: pd.concat([f, f.iloc[[0]]], ignore_index=True))
    message = _only_problem(raw, "contact_points")
    assert "primary key (customer_id, channel) is not unique" in message
    assert "customer_id=1, channel='email'" in message


def test_value_outside_the_allowed_set(raw):
    event_id = pq.read_table(raw / "engagement_events.parquet")["event_id"][7].as_py()
    _set(raw / "engagement_events.parquet", 7, "channel", "fax")
    message = _only_problem(raw, "engagement_events")
    assert message.startswith("raw/engagement_events.parquet: column 'channel' has 1 value(s)")
    assert f"e.g. 'fax' at row 7 (event_id={event_id})" in message
    assert "email, sms, push" in message


def test_timestamp_in_the_future(raw):
    order_id = pq.read_table(raw / "orders.parquet")["order_id"][2].as_py()
    _set(raw / "orders.parquet", 2, "ordered_at", pd.Timestamp(AS_OF + timedelta(days=1)))
    message = _only_problem(raw, "orders")
    assert message.startswith(
        "raw/orders.parquet: column 'ordered_at' has 1 timestamp(s) in the future"
    )
    assert f"at row 2 (order_id={order_id})" in message
    # a few minutes of clock skew is tolerated
    _set(raw / "orders.parquet", 2, "ordered_at", pd.Timestamp(AS_OF + timedelta(minutes=2)))
    assert validate_raw_dir(raw, now=AS_OF)["orders"] == []


def test_orders_of_an_unknown_customer(raw):
    order_id = pq.read_table(raw / "orders.parquet")["order_id"][1].as_py()
    _set(raw / "orders.parquet", 1, "customer_id", 999_999)
    message = _only_problem(raw, "orders")
    assert message.startswith("raw/orders.parquet: column 'customer_id' has 1 row(s)")
    assert f"customer_id=999999 at row 1 (order_id={order_id})" in message
    assert "customers.parquet" in message


def test_rows_of_a_customer_missing_from_customers(raw):
    """Orphans inside the id range (customers no longer 1..N) are found too."""
    _edit(raw / "customers.parquet", lambda f: f[f["customer_id"] != 10])
    problems = validate_raw_dir(raw, now=AS_OF)
    assert problems["customers"] == []
    orphaned = [t for t, p in problems.items() if p]
    assert "contact_points" in orphaned and "consent_events" in orphaned
    assert all("customer_id=10 at row" in p[0] for t, p in problems.items() if p)


def test_unreadable_file(raw):
    (raw / "customers.parquet").write_text("customer_id,signed_up_at\n1,2024-01-01\n")
    problems = validate_raw_file(raw / "customers.parquet", CUSTOMERS, AS_OF)
    assert len(problems) == 1
    assert problems[0].startswith("raw/customers.parquet: cannot be read as Parquet")


def test_require_valid_raw_lists_every_problem(raw):
    _edit(raw / "orders.parquet", lambda f: f.drop(columns=["amount"]))
    _set(raw / "campaign_exposures.parquet", 0, "arm", "Placebo Arm")
    with pytest.raises(RawDataError) as caught:
        require_valid_raw(raw, now=AS_OF)
    error = caught.value
    assert set(error.problems) == {ORDERS.name, CAMPAIGN_EXPOSURES.name}
    text = str(error)
    assert "2 problems" in text
    assert "raw/orders.parquet: column 'amount' is missing" in text
    assert "raw/campaign_exposures.parquet: column 'arm'" in text and "'Placebo Arm'" in text
    assert "not identifiers" in text
    assert isinstance(error, ValueError)


def test_a_named_treatment_arm_is_valid(raw):
    """A multi-arm test names its treatments; any identifier is an arm besides control."""
    _set(raw / "campaign_exposures.parquet", 0, "arm", "womens_email")
    assert validate_raw_dir(raw, now=AS_OF)["campaign_exposures"] == []
