"""decision_inputs on hand-made files: candidates with reachability, the cap window, excluded runs
and today's sends per campaign."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from orchestration.core.decisioning.inputs import decision_inputs, recent_contacts
from orchestration.core.decisioning.policy import parse_policy
from orchestration.core.world.contract import raw_path
from orchestration.settings import Settings

DECIDED_AT = datetime(2026, 3, 10, 9, 30, tzinfo=UTC)
CAPS = "quiet_hours: {}\nfrequency_caps:\n  - {scope: all, max_messages: 3, window_days: 7}\n"


def _day(days_ago: int) -> str:
    return (DECIDED_AT - timedelta(days=days_ago)).date().isoformat()


@pytest.fixture
def settings(tmp_path) -> Settings:
    s = Settings(data_dir=tmp_path / "data")
    s.exports_dir.mkdir(parents=True)
    s.pipeline_dir.mkdir(parents=True)
    s.raw_dir.mkdir(parents=True)
    pd.DataFrame(
        {"customer_id": [3, 1, 2], "region": ["eu-west", "us-east", "eu-west"]}
    ).to_parquet(s.exports_dir / "dim_customers.parquet", index=False)
    pd.DataFrame(
        {"customer_id": [1, 2, 3], "uplift__uplift_model@champion": [0.1, 0.2, 0.3]}
    ).to_parquet(s.pipeline_dir / "customer_scores.parquet", index=False)
    pd.DataFrame(
        {
            "customer_id": [1, 1, 2, 3],
            "channel": ["email", "sms", "sms", "email"],
            "address": ["a@example.com", "+1", "+2", "c@example.com"],
            "is_verified": [True, True, False, True],
            "updated_at": pd.Timestamp("2026-01-01", tz="UTC"),
        }
    ).to_parquet(raw_path(s.raw_dir, "contact_points"), index=False)
    return s


class FakeLedger:
    """The one thing decision_inputs reads of the send ledger: ``frame()``, one row per message
    (any status) with its run id."""

    def __init__(self, rows: list[tuple[str, int, str, int, str]]):
        self.rows = [
            {
                "campaign": campaign,
                "customer_id": customer,
                "channel": channel,
                "send_date": _day(days_ago),
                "run_id": run,
                "status": "delivered",
            }
            for campaign, customer, channel, days_ago, run in rows
        ]

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.rows)


def _pairs(history: pd.DataFrame) -> set[tuple[str, int, str]]:
    return {(r.campaign, int(r.customer_id), r.send_date) for r in history.itertuples(index=False)}


def _inputs(settings, ledger, policy: str = CAPS, **options):
    return decision_inputs(
        settings, parse_policy(policy).policy, DECIDED_AT, ledger=ledger, **options
    )


def test_candidates_carry_reachability_and_the_scores_are_read(settings):
    inputs = decision_inputs(settings, parse_policy(CAPS).policy, DECIDED_AT)
    c = inputs.candidates.set_index("customer_id")
    assert list(c.index) == [3, 1, 2]  # dim_customers' order, one row each
    assert c["region"].to_dict() == {3: "eu-west", 1: "us-east", 2: "eu-west"}
    assert c["is_email_reachable"].to_dict() == {3: True, 1: True, 2: False}
    assert c["is_sms_reachable"].to_dict() == {3: False, 1: True, 2: False}  # 2: not verified
    assert not c["is_push_reachable"].any()
    assert list(inputs.scores.columns) == ["customer_id", "uplift__uplift_model@champion"]
    assert inputs.send_date == "2026-03-10" and inputs.decided_at == DECIDED_AT


def test_empty_ledger_gives_an_empty_history(settings):
    """Default: the gateway's ledger under the data directory (a new, empty one here)."""
    inputs = decision_inputs(settings, parse_policy(CAPS).policy, DECIDED_AT)
    assert (settings.gateway_dir / "ledger.db").exists()
    assert inputs.contact_history.empty
    assert list(inputs.contact_history.columns) == [
        "campaign",
        "customer_id",
        "channel",
        "send_date",
    ]
    assert inputs.sent_today == {}


def test_history_covers_the_policys_longest_cap_window(settings):
    ledger = FakeLedger(
        [
            ("a", 1, "email", 0, "r1"),
            ("a", 2, "email", 6, "r0"),  # the window's first day
            ("a", 3, "email", 7, "r0"),  # one day before it
            ("b", 1, "sms", 30, "r0"),
        ],
    )
    inputs = _inputs(settings, ledger)
    assert _pairs(inputs.contact_history) == {("a", 1, _day(0)), ("a", 2, _day(6))}
    assert list(inputs.contact_history.columns) == [
        "campaign",
        "customer_id",
        "channel",
        "send_date",
    ]
    wider = CAPS + "  - {scope: sms, max_messages: 1, window_days: 31}\n"
    assert len(_inputs(settings, ledger, wider).contact_history) == 4
    # no cap at all: today only (the daily limit still counts)
    bare = _inputs(settings, ledger, "frequency_caps: []\nquiet_hours: {}\n")
    assert _pairs(bare.contact_history) == {("a", 1, _day(0))}


def test_sent_today_is_counted_per_campaign(settings):
    ledger = FakeLedger(
        [
            ("a", 1, "email", 0, "r1"),
            ("a", 2, "email", 0, "r1"),
            ("b", 3, "sms", 0, "r1"),
            ("b", 1, "sms", 1, "r0"),  # yesterday: history, not today
            ("c", 2, "push", 2, "r0"),
        ],
    )
    inputs = _inputs(settings, ledger)
    assert inputs.sent_today == {"a": 2, "b": 1}
    assert len(inputs.contact_history) == 5


def test_excluded_runs_leave_history_and_todays_counts(settings):
    ledger = FakeLedger(
        [
            ("a", 1, "email", 0, "compared"),
            ("a", 2, "email", 0, "other"),
            ("b", 3, "sms", 2, "compared"),
            ("b", 1, "sms", 3, "older"),
        ],
    )
    everything = _inputs(settings, ledger)
    assert len(everything.contact_history) == 4 and everything.sent_today == {"a": 2}
    inputs = _inputs(settings, ledger, exclude_runs={"compared"})
    assert _pairs(inputs.contact_history) == {("a", 2, _day(0)), ("b", 1, _day(3))}
    assert inputs.sent_today == {"a": 1}
    both = _inputs(settings, ledger, exclude_runs=["compared", "other"])
    assert _pairs(both.contact_history) == {("b", 1, _day(3))} and both.sent_today == {}


def test_recent_contacts_counts_back_from_the_decision_day():
    """Naive decision times are read as UTC; the window moves with the decision day."""
    ledger = FakeLedger([("a", 1, "email", 6, "r0"), ("a", 2, "email", 7, "r0")])
    assert len(recent_contacts(ledger, DECIDED_AT, 7)) == 1
    assert len(recent_contacts(ledger, DECIDED_AT.replace(tzinfo=None), 7)) == 1
    assert len(recent_contacts(ledger, DECIDED_AT - timedelta(days=1), 7)) == 2
    assert len(recent_contacts(ledger, DECIDED_AT, 7, exclude_runs=["r0"])) == 0
