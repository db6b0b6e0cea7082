"""Lifting the kill switch needs a second identity's approval of that very engagement; until
then the switch stays on and nothing is dispatched."""

from __future__ import annotations

import os

import pytest

from orchestration.core.delivery.dispatch import Gateway, kill_switch_on, route_for
from orchestration.core.delivery.kill_switch import (
    LiftAwaitingApproval,
    engage,
    kill_switch_file,
    kill_switch_hash,
    lift,
)
from orchestration.core.delivery.ledger import SendLedger
from orchestration.core.delivery.outbox import OutboxProvider
from orchestration.core.governance.approvals import KILL_SWITCH, KILL_SWITCH_SUBJECT
from orchestration.core.governance.identities import GovernanceError
from orchestration.core.observability.audit import AuditLog, audit_log_path
from tests.gateway.raw_world import recipients, release, write_raw


def test_lifting_without_an_approval_is_refused_and_nothing_is_sent(tmp_path, settings, governance):
    engage(settings.gateway_dir, "ops", "wrong audience", governance.audit)
    ledger = SendLedger(tmp_path / "ledger.db")
    release(ledger, recipients([1, 2]), "2026-11-23", "r1")
    outbox = OutboxProvider(tmp_path / "outbox.db")
    gateway = Gateway(
        ledger,
        {ch: route_for(outbox) for ch in ("email", "sms", "push")},
        write_raw(tmp_path / "raw", 5),
        gateway_dir=settings.gateway_dir,
        sleep=lambda _: None,
    )

    with pytest.raises(LiftAwaitingApproval, match="requested by alice.*--as <not alice>"):
        lift(settings.gateway_dir, "alice", governance, require_approval=True)
    assert kill_switch_on(settings.gateway_dir)
    report = gateway.dispatch_due(run_id="d", campaigns=["c1"])
    assert report.stopped_by_kill_switch and outbox.received() == 0
    # the requester cannot approve her own lift; a second refusal records no second request
    content_hash = kill_switch_hash(settings.gateway_dir)
    with pytest.raises(GovernanceError, match="self-approval refused: alice"):
        governance.approve(KILL_SWITCH, KILL_SWITCH_SUBJECT, content_hash, "alice")
    with pytest.raises(LiftAwaitingApproval):
        lift(settings.gateway_dir, "bob", governance, require_approval=True)
    assert governance.requesters(KILL_SWITCH, KILL_SWITCH_SUBJECT, content_hash) == ["alice"]

    governance.approve(KILL_SWITCH, KILL_SWITCH_SUBJECT, content_hash, "bob")
    note = lift(settings.gateway_dir, "alice", governance, require_approval=True)
    assert "approved by bob" in note and not kill_switch_on(settings.gateway_dir)
    assert gateway.dispatch_due(run_id="d2", campaigns=["c1"]).delivered == 2

    log = AuditLog(audit_log_path(settings.data_dir))
    actions = [(e.actor, e.action) for e in log.entries()]
    assert actions == [
        ("ops", "kill_switch_on"),
        ("alice", "submit"),
        ("alice", "kill_switch_lift_refused"),
        ("alice", "approve_refused"),
        ("bob", "kill_switch_lift_refused"),
        ("bob", "approve"),
        ("alice", "kill_switch_off"),
    ]
    refusal = log.entries()[3].details
    assert refusal["reason"].startswith("self-approval refused: alice")
    assert log.verify().ok


def test_an_approval_of_an_earlier_engagement_does_not_lift_a_later_one(settings, governance):
    path = kill_switch_file(settings.gateway_dir)
    path.parent.mkdir(parents=True)
    path.touch()  # the old way: an empty file
    first = kill_switch_hash(settings.gateway_dir)
    with pytest.raises(LiftAwaitingApproval):
        lift(settings.gateway_dir, "alice", governance, require_approval=True)
    governance.approve(KILL_SWITCH, KILL_SWITCH_SUBJECT, first, "carol")
    # lifted by hand, then touched again later: same (empty) content, a new engagement
    path.unlink()
    path.touch()
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    assert kill_switch_hash(settings.gateway_dir) != first
    with pytest.raises(LiftAwaitingApproval):
        lift(settings.gateway_dir, "alice", governance, require_approval=True)
    assert kill_switch_on(settings.gateway_dir)


def test_without_required_approvals_anyone_lifts_it(settings, governance):
    engage(settings.gateway_dir, "ops", "drill", governance.audit)
    note = lift(settings.gateway_dir, "ops", governance, require_approval=False)
    assert "not required" in note and not kill_switch_on(settings.gateway_dir)
    with pytest.raises(GovernanceError, match="not on"):
        lift(settings.gateway_dir, "ops", governance, require_approval=False)
