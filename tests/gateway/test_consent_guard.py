"""The dispatch-time consent and suppression re-check reads the raw files as validation would.

Opt-outs written as ``"EMAIL"`` or stamped a few minutes in the future (within the validator's
clock-skew tolerance) were delivered anyway; a suppression with no channel holds everywhere; an
opt-in that truly follows an opt-out allows again.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd

from orchestration.core.delivery.consent_guard import NOT_OPTED_IN, SUPPRESSED, ConsentGuard
from orchestration.core.delivery.ledger import SendLedger
from orchestration.core.delivery.outbox import OutboxProvider
from orchestration.core.world.validation import FUTURE_TOLERANCE
from tests.gateway.raw_world import T0, deliver, recipients, write_raw

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def _consent(raw: Path, *events: tuple[int, str, bool, datetime]) -> None:
    """Append consent events (customer_id, channel, is_opted_in, consented_at)."""
    path = raw / "consent_events.parquet"
    before = pd.read_parquet(path)
    added = pd.DataFrame(
        {
            "consent_event_id": range(1000, 1000 + len(events)),
            "customer_id": [e[0] for e in events],
            "channel": [e[1] for e in events],
            "is_opted_in": [e[2] for e in events],
            "source": "preference_center",
            "consented_at": [pd.Timestamp(e[3]) for e in events],
        }
    )
    pd.concat([before, added], ignore_index=True).to_parquet(path)


def _guard(raw: Path, now: datetime = NOW) -> ConsentGuard:
    return ConsentGuard(raw, clock=lambda: now)


def _pairs(*pairs: tuple[int, str]) -> pd.DataFrame:
    return pd.DataFrame(pairs, columns=["customer_id", "channel"])


def test_an_upper_case_channel_opt_out_cancels_the_dispatch(tmp_path):
    raw = write_raw(tmp_path / "raw", 3)
    _consent(raw, (2, " EMAIL", False, T0 + timedelta(days=1)))
    assert _guard(raw).blocked(_pairs((1, "email"), (2, "email"))) == {(2, "email"): NOT_OPTED_IN}

    ledger = SendLedger(tmp_path / "ledger.db")
    outbox = OutboxProvider(tmp_path / "outbox.db")
    report = deliver(recipients([1, 2, 3]), "2026-03-02", "run-a", ledger, outbox, raw)
    assert (report.delivered, report.cancelled) == (2, 1)
    row = ledger.frame().set_index("customer_id").loc[2]
    assert (row["status"], row["last_error"]) == ("cancelled", NOT_OPTED_IN)


def test_an_opt_out_stamped_three_minutes_in_the_future_cancels(tmp_path):
    raw = write_raw(tmp_path / "raw", 2)
    _consent(raw, (1, "email", False, NOW + timedelta(minutes=3)))
    assert _guard(raw).blocked(_pairs((1, "email"), (2, "email"))) == {(1, "email"): NOT_OPTED_IN}


def test_an_opt_out_never_loses_to_an_opt_in_within_the_clock_skew(tmp_path):
    raw = write_raw(tmp_path / "raw", 2)
    # the opt-in's stamp is later, but by less than the tolerated skew: either may be first
    _consent(
        raw,
        (1, "email", False, NOW - timedelta(minutes=1)),
        (1, "email", True, NOW + timedelta(minutes=2)),
    )
    assert timedelta(minutes=3) < FUTURE_TOLERANCE
    assert _guard(raw).blocked(_pairs((1, "email"))) == {(1, "email"): NOT_OPTED_IN}


def test_a_suppression_without_a_channel_suppresses_every_channel(tmp_path):
    raw = write_raw(tmp_path / "raw", 2)
    _consent(raw, *((1, ch, True, T0) for ch in ("sms", "push")))
    pd.DataFrame(
        {
            "suppression_id": [1],
            "customer_id": [1],
            "channel": pd.Series([None], dtype="string"),
            "reason": ["legal_request"],
            "suppressed_at": [pd.Timestamp(T0 + timedelta(days=1))],
        }
    ).to_parquet(raw / "suppressions.parquet")
    pairs = _pairs((1, "email"), (1, "sms"), (1, "push"), (2, "email"))
    assert _guard(raw).blocked(pairs) == {
        (1, "email"): SUPPRESSED,
        (1, "sms"): SUPPRESSED,
        (1, "push"): SUPPRESSED,
    }


def test_an_opt_in_after_an_opt_out_allows_again(tmp_path):
    raw = write_raw(tmp_path / "raw", 2)
    _consent(
        raw,
        (1, "email", False, T0 + timedelta(days=1)),
        (1, "email", True, T0 + timedelta(days=2)),
        (2, "email", False, T0 + timedelta(days=1)),
    )
    assert _guard(raw).blocked(_pairs((1, "email"), (2, "email"))) == {(2, "email"): NOT_OPTED_IN}


def test_an_opt_in_stamped_beyond_the_tolerance_does_not_count_yet(tmp_path):
    raw = write_raw(tmp_path / "raw", 1)
    _consent(
        raw,
        (1, "email", False, T0 + timedelta(days=1)),
        (1, "email", True, NOW + FUTURE_TOLERANCE + timedelta(minutes=1)),
    )
    guard = _guard(raw)
    assert guard.blocked(_pairs((1, "email"))) == {(1, "email"): NOT_OPTED_IN}
    later = _guard(raw, NOW + timedelta(minutes=10))
    assert later.blocked(_pairs((1, "email"))) == {}


def test_each_pair_is_looked_up_on_its_own_channel_whatever_its_id(tmp_path):
    raw = write_raw(tmp_path / "raw", 5)  # customers 1-5 opted in on email only
    _consent(raw, (3, "sms", True, T0))
    asked = _pairs(
        (0, "email"), (6, "email"), (5, "email"), (3, "sms"), (2, "sms"), (4, "push"), (1, "email")
    )
    assert _guard(raw).blocked(asked) == {
        (0, "email"): NOT_OPTED_IN,  # below every opted-in id
        (6, "email"): NOT_OPTED_IN,  # above every one
        (2, "sms"): NOT_OPTED_IN,  # opted in on email, not on sms
        (4, "push"): NOT_OPTED_IN,  # a channel nobody opted in on
    }
