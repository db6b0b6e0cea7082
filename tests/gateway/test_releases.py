"""The release door: only a run whose own gates all passed enqueues messages, and only messages of
a standing release are ever claimed for dispatch."""

from __future__ import annotations

import pandas as pd
import pytest

from orchestration.core.delivery.dispatch import Gateway, route_for
from orchestration.core.delivery.ledger import SendLedger
from orchestration.core.delivery.outbox import OutboxProvider
from orchestration.core.delivery.releases import (
    ReleaseRefused,
    build_release,
    decisions_digest,
    gate_verdict,
    sendable,
)
from tests.gateway.raw_world import write_raw

SEND_DATE = "2026-11-23"
GATES = [("campaign_decisions", "audience_compliant"), ("raw/orders", "fresh_within_window")]


def _decisions(ids, decision="send") -> pd.DataFrame:
    return pd.DataFrame(
        {
            "campaign": "c1",
            "customer_id": list(ids),
            "channel": "email",
            "decision": decision,
            "model_version": "3",
            "policy_version": "p1",
        }
    )


def _release(run_id: str, ids, verdict=None):
    decisions = _decisions(ids)
    messages = sendable(decisions, ["c1"])
    verdict = verdict or gate_verdict(GATES, [(a, c, True) for a, c in GATES])
    release = build_release(
        run_id=run_id,
        released_at="2026-11-23T09:00:00+00:00",
        send_date=SEND_DATE,
        verdict=verdict,
        decisions=decisions,
        messages=messages,
        feature_version="v1",
        campaign_files={"c1.yaml": "abc"},
    )
    return release, messages


def _gateway(tmp_path, ledger: SendLedger) -> tuple[Gateway, OutboxProvider]:
    raw_dir = write_raw(tmp_path / "raw", 50)
    outbox = OutboxProvider(tmp_path / "outbox.db")
    routes = {ch: route_for(outbox) for ch in ("email", "sms", "push")}
    return Gateway(ledger, routes, raw_dir, sleep=lambda _: None), outbox


def test_a_failed_or_missing_gate_refuses_the_release():
    failed = gate_verdict(GATES, [("campaign_decisions", "audience_compliant", False)])
    assert not failed.passed
    assert failed.failed == ["campaign_decisions:audience_compliant"]
    assert failed.missing == ["raw/orders:fresh_within_window"]
    with pytest.raises(ReleaseRefused, match="audience_compliant"):
        _release("r1", [1, 2], verdict=failed)
    # a re-execution of a subset evaluated no gate: refused too, not "nothing failed"
    assert not gate_verdict(GATES, []).passed
    assert not gate_verdict([], []).passed  # no expected gate at all is a misconfiguration


def test_the_last_evaluation_of_a_check_counts():
    evaluations = [(a, c, True) for a, c in GATES] + [("raw/orders", "fresh_within_window", False)]
    assert gate_verdict(GATES, evaluations).failed == ["raw/orders:fresh_within_window"]


def test_release_records_what_it_let_through_and_is_idempotent(tmp_path):
    ledger = SendLedger(tmp_path / "ledger.db")
    release, messages = _release("r1", [1, 2, 3])
    assert ledger.record_release(release, messages) == 3
    assert ledger.record_release(release, messages) == 0  # the same run twice: nothing new
    row = ledger.releases().iloc[0]
    assert (row.run_id, row.status, row.messages) == ("r1", "released", 3)
    assert row.decisions_digest == decisions_digest(messages)
    assert "campaign_decisions:audience_compliant" in row.checks
    assert ledger.counts(SEND_DATE) == {"due": 3}


def test_only_released_messages_are_dispatched(tmp_path):
    ledger = SendLedger(tmp_path / "ledger.db")
    gateway, outbox = _gateway(tmp_path, ledger)
    release, messages = _release("good", [1, 2, 3])
    ledger.record_release(release, messages)
    report = gateway.dispatch_due(run_id="dispatch", campaigns=["c1"])
    assert report.delivered == 3
    assert outbox.received() == 3


def test_revoking_cancels_what_was_not_yet_delivered(tmp_path):
    ledger = SendLedger(tmp_path / "ledger.db")
    gateway, outbox = _gateway(tmp_path, ledger)
    first, messages = _release("first", [1, 2])
    ledger.record_release(first, messages)
    gateway.dispatch_due(run_id="d1", campaigns=["c1"])
    later, more = _release("later", [3, 4, 5])
    ledger.record_release(later, more)

    assert ledger.revoke_release("later", by="ops", reason="wrong audience") == 3
    report = gateway.dispatch_due(run_id="d2", campaigns=["c1"])
    assert report.delivered == 0
    assert outbox.received() == 2  # the first release's deliveries stand; nothing of the revoked
    statuses = ledger.frame().set_index("customer_id")["status"].to_dict()
    assert statuses == {
        1: "delivered",
        2: "delivered",
        3: "cancelled",
        4: "cancelled",
        5: "cancelled",
    }
    revoked = ledger.releases().set_index("run_id").loc["later"]
    assert (revoked.status, revoked.revoked_by, revoked.revoke_reason) == (
        "revoked",
        "ops",
        "wrong audience",
    )
    with pytest.raises(KeyError, match="already revoked"):
        ledger.revoke_release("later", by="ops", reason="again")


def test_sendable_takes_send_and_deferred_rows_of_live_campaigns_only():
    decisions = pd.concat(
        [
            _decisions([1], "send"),
            _decisions([2], "deferred").assign(deferred_until="2026-11-23T15:00:00+00:00"),
            _decisions([3], "holdout"),
            _decisions([4], "send").assign(campaign="paused"),
        ]
    )
    messages = sendable(decisions, ["c1"])
    assert messages["customer_id"].tolist() == [1, 2]
    assert pd.isna(messages["not_before"].iloc[0])
    assert messages["not_before"].iloc[1] == pd.Timestamp("2026-11-23T15:00:00Z")


def test_messages_not_delivered_within_a_day_expire_and_are_never_sent_late(tmp_path):
    from tests.gateway.raw_world import recipients, release

    ledger = SendLedger(tmp_path / "ledger.db")
    gateway, outbox = _gateway(tmp_path, ledger)
    release(ledger, recipients([1, 2]), "2026-11-20", "old")  # left due by an outage
    release(ledger, recipients([3]), "2026-11-23", "today")
    assert ledger.expire_before("2026-11-22") == 2
    report = gateway.dispatch_due(run_id="d", campaigns=["c1"])
    assert (report.delivered, outbox.received()) == (1, 1)
    statuses = ledger.frame().set_index("customer_id")[["status", "last_error"]]
    assert statuses.loc[1].tolist() == ["cancelled", "expired"]
    assert statuses.loc[3, "status"] == "delivered"


def test_a_message_enqueued_after_a_release_needs_it_standing_and_goes_with_its_revocation(
    tmp_path,
):
    ledger = SendLedger(tmp_path / "ledger.db")
    gateway, outbox = _gateway(tmp_path, ledger)
    one = pd.DataFrame({"campaign": ["c1"], "customer_id": [7], "channel": ["email"]})
    # no such release: nothing written
    assert ledger.enqueue_under_release("nobody-released-this", one, SEND_DATE) is None
    release, messages = _release("r1", [1])
    ledger.record_release(release, messages)
    assert ledger.enqueue_under_release("r1", one, SEND_DATE) == 1
    assert ledger.enqueue_under_release("r1", one, SEND_DATE) == 0  # the unique key: once
    assert ledger.revoke_release("r1", by="ops", reason="bad model") == 2
    assert ledger.enqueue_under_release("r1", one, SEND_DATE) is None
    assert gateway.dispatch_due(run_id="d1", campaigns=["c1"]).delivered == 0
    assert outbox.received() == 0
    assert sorted(ledger.frame()["status"]) == ["cancelled", "cancelled"]
