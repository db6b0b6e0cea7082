"""Bad values in one row get a message naming the row, and never crash the engine for everyone.

``time_zone: Mars/Olympus`` passed validation and then raised ZoneInfoNotFoundError for every
campaign's decisions; negative and non-finite order amounts passed as well.
"""

from __future__ import annotations

import math
import shutil
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from orchestration.core.decisioning.campaigns import Campaign
from orchestration.core.decisioning.engine import (
    DECISIONS,
    REASON_TEXT,
    REASONS,
    CampaignScores,
    PolicyInputs,
    evaluate,
    quiet_hours_deferral,
)
from orchestration.core.decisioning.policy import parse_policy
from orchestration.core.world.synthetic import WorldSpec, generate_world
from orchestration.core.world.validation import RawDataError, require_valid_raw, validate_raw_dir

AS_OF = datetime(2025, 6, 1, 12, tzinfo=UTC)


@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("world")
    generate_world(WorldSpec(customers=1_000, as_of=AS_OF), root / "raw", root / "truth")
    return root / "raw"


@pytest.fixture
def raw(pristine, tmp_path) -> Path:
    shutil.copytree(pristine, tmp_path / "raw")
    return tmp_path / "raw"


def _rewrite(path: Path, row: int, column: str, value) -> None:
    table = pq.read_table(path)
    values = table.column(column).to_pylist()
    values[row] = value
    index = table.schema.get_field_index(column)
    array = pa.array(values, type=table.schema.field(column).type, from_pandas=False)
    pq.write_table(table.set_column(index, column, array), path)


def _problems(raw: Path, table: str) -> list[str]:
    found = {t: p for t, p in validate_raw_dir(raw, now=AS_OF).items() if p}
    assert found.keys() == {table}, found
    return found[table]


def test_an_unknown_time_zone_names_the_file_row_customer_and_value(raw):
    _rewrite(raw / "customers.parquet", 17, "time_zone", "Mars/Olympus")
    (message,) = _problems(raw, "customers")
    assert message == (
        "raw/customers.parquet: column 'time_zone' has 1 value(s) that are not IANA time zones, "
        "e.g. 'Mars/Olympus' at row 17 (customer_id=18); use a name from the IANA time zone "
        "database (e.g. Europe/Berlin, America/New_York, UTC) or map it when you export the table"
    )
    with pytest.raises(RawDataError, match="Mars/Olympus"):
        require_valid_raw(raw, now=AS_OF)


@pytest.mark.parametrize("amount", [-12.5, math.inf, math.nan])
def test_a_negative_or_non_finite_amount_names_the_row(raw, amount):
    _rewrite(raw / "orders.parquet", 3, "amount", amount)
    (message,) = _problems(raw, "orders")
    assert message.startswith(
        "raw/orders.parquet: column 'amount' has 1 negative or non-finite value(s) (NaN or "
        f"infinity), e.g. {amount!r} at row 3 (order_id=4); an amount is what was paid"
    ), message
    assert "finite number >= 0" in message


# --- the engine: one bad row quarantines one customer -------------------------------------------

DECIDED_AT = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
POLICY = (
    "global_control: {share: 0.0}\nfrequency_caps: []\n"
    "quiet_hours: {sms: {start: '08:00', end: '21:00'}}\n"
)


def _candidates(zones: list[str | None]) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "customer_id": np.arange(1, len(zones) + 1, dtype="int64"),
            "region": "eu-west",
            "time_zone": zones,
            "signed_up_at": pd.Timestamp("2024-01-01", tz="UTC"),
        }
    )
    for channel in ("email", "sms", "push"):
        frame[f"is_{channel}_opted_in"] = True
        frame[f"is_{channel}_suppressed"] = False
        frame[f"is_{channel}_reachable"] = True
    return frame


def _scores(n: int) -> CampaignScores:
    return CampaignScores(
        np.full(n, 0.1), np.full(n, "1", dtype=object), np.full(n, "champion", dtype=object)
    )


def test_an_unknown_time_zone_quarantines_that_customer_only():
    zones = ["Europe/London", "Mars/Olympus", "America/New_York", None]
    campaigns = [  # the sms campaign wins the valid customers (priority breaks the tie)
        Campaign(name=f"c_{ch}", channel=ch, max_sends=10, holdout_share=0.0, priority=p)
        for ch, p in (("email", 0), ("sms", 1))
    ]
    inputs = PolicyInputs(
        _candidates(zones),
        {c.name: _scores(len(zones)) for c in campaigns},
        pd.DataFrame(columns=["campaign", "customer_id", "channel", "send_date"]),
        DECIDED_AT,
    )
    decisions = evaluate(inputs, campaigns, parse_policy(POLICY))  # does not raise
    for result in decisions.campaigns:
        outcome = [
            (DECISIONS[d], REASONS[r]) for d, r in zip(result.decision, result.reason, strict=True)
        ]
        assert outcome[1] == ("excluded", "invalid_customer_data")
        assert outcome[3] == ("excluded", "invalid_customer_data")  # no time zone at all
        assert outcome[0] in {
            ("send", "selected_top_uplift"),
            ("excluded", "won_by_other_campaign"),
        }
    sms = next(r for r in decisions.campaigns if r.campaign.channel == "sms")
    assert (DECISIONS[sms.decision[0]], REASONS[sms.reason[0]]) == ("send", "selected_top_uplift")
    # the other customers are decided as ever: 12:00 UTC is 07:00 in New York, before 08:00
    assert (DECISIONS[sms.decision[2]], REASONS[sms.reason[2]]) == ("deferred", "quiet_hours")
    assert pd.Timestamp(sms.deferred_until[2]) == pd.Timestamp("2026-11-23 13:00")
    assert "invalid_customer_data" in REASON_TEXT
    frame = decisions.to_frame("run", None)
    assert (frame.loc[frame["customer_id"] == 2, "reason"] == "invalid_customer_data").all()


def test_quiet_hours_deferral_never_raises_on_an_unknown_zone():
    policy = parse_policy(POLICY).policy
    out = quiet_hours_deferral(
        pd.Series(["Mars/Olympus", "../etc/passwd", "Europe/Berlin"]), DECIDED_AT, policy, "sms"
    )
    assert np.isnat(out[0]) and np.isnat(out[1])
