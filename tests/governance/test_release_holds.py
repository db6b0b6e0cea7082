"""The release door under four eyes: an unapproved campaign (or policy) version is decided and
recorded but nothing of it is enqueued, so no dispatch can send it; once approved, the next
release lets it through. Every hold, release and version going live is in the audit chain."""

from __future__ import annotations

import json
import sqlite3

import pandas as pd

from orchestration.core.delivery.dispatch import Gateway, route_for
from orchestration.core.delivery.ledger import SendLedger
from orchestration.core.delivery.outbox import OutboxProvider
from orchestration.core.delivery.releases import build_release, gate_verdict, sendable
from orchestration.core.governance.approvals import CAMPAIGN, POLICY, file_hash, release_holds
from orchestration.core.observability.audit import AuditLog, audit_log_path
from tests.gateway.raw_world import write_raw

SEND_DATE = "2026-11-23"
GATES = [("campaign_decisions", "audience_compliant")]


def _decisions(campaign: str, ids) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "campaign": campaign,
            "customer_id": list(ids),
            "channel": "email",
            "decision": "send",
            "model_version": "3",
            "policy_version": "p1",
        }
    )


def _run(tmp_path, settings, governance, run_id: str, ledger: SendLedger) -> tuple:
    """One run's release step: decide two campaigns, hold what approvals hold, record."""
    campaigns = {name: tmp_path / "campaigns" / f"{name}.yaml" for name in ("spring", "winter")}
    decisions = pd.concat([_decisions("spring", [1, 2, 3]), _decisions("winter", [4, 5])])
    messages = sendable(decisions, campaigns)
    holds = release_holds(governance, campaigns, settings.policy_file)
    release = build_release(
        run_id=run_id,
        released_at=f"{SEND_DATE}T09:0{len(ledger.releases())}:00+00:00",
        send_date=SEND_DATE,
        verdict=gate_verdict(GATES, [(a, c, True) for a, c in GATES]),
        decisions=decisions,
        messages=messages,
        feature_version="v1",
        campaign_files={p.name: file_hash(p) for p in [*campaigns.values(), settings.policy_file]},
        held=holds.campaigns,
        held_files=holds.files,
    )
    return release, ledger.record_release(release, messages)


def _world(tmp_path, settings):
    (tmp_path / "campaigns").mkdir()
    for name in ("spring", "winter"):
        (tmp_path / "campaigns" / f"{name}.yaml").write_text(f"name: {name}\n")
    ledger = SendLedger(tmp_path / "ledger.db", audit=AuditLog(audit_log_path(settings.data_dir)))
    outbox = OutboxProvider(tmp_path / "outbox.db")
    routes = {ch: route_for(outbox) for ch in ("email", "sms", "push")}
    gateway = Gateway(ledger, routes, write_raw(tmp_path / "raw", 10), sleep=lambda _: None)
    return ledger, gateway, outbox


def _approve(governance, kind, subject, path, author="alice", approver="bob"):
    governance.submit(kind, subject, file_hash(path), author)
    governance.approve(kind, subject, file_hash(path), approver)


def test_unapproved_versions_are_held_and_nothing_reaches_a_customer(
    tmp_path, settings, governance
):
    ledger, gateway, outbox = _world(tmp_path, settings)
    release, newly_due = _run(tmp_path, settings, governance, "r1", ledger)
    assert (release.status, newly_due, release.messages) == ("awaiting_approval", 0, 0)
    assert sorted(release.held) == ["spring", "winter"]
    row = ledger.releases().iloc[0]
    assert row.status == "awaiting_approval" and sorted(json.loads(row.held)) == [
        "spring",
        "winter",
    ]
    report = gateway.dispatch_due(run_id="dispatch", campaigns=["spring", "winter"])
    assert (report.delivered, outbox.received(), len(ledger.frame())) == (0, 0, 0)
    log = AuditLog(audit_log_path(settings.data_dir))
    assert [e.action for e in log.entries()] == ["hold_awaiting_approval"]


def test_a_held_campaign_stays_out_while_an_approved_one_is_released(
    tmp_path, settings, governance
):
    ledger, gateway, outbox = _world(tmp_path, settings)
    _approve(governance, POLICY, settings.policy_file.name, settings.policy_file)
    _approve(governance, CAMPAIGN, "winter", tmp_path / "campaigns" / "winter.yaml", "carol")
    release, newly_due = _run(tmp_path, settings, governance, "r1", ledger)
    assert (release.status, newly_due, release.campaigns) == ("released", 2, ("winter",))
    assert list(release.held) == ["spring"] and "not submitted" in release.held["spring"]
    gateway.dispatch_due(run_id="dispatch", campaigns=["spring", "winter"])
    sent = ledger.frame()
    assert set(sent["campaign"]) == {"winter"} and outbox.received() == 2


def test_approval_then_the_next_run_sends_and_an_edit_holds_it_again(
    tmp_path, settings, governance
):
    ledger, gateway, outbox = _world(tmp_path, settings)
    _run(tmp_path, settings, governance, "r1", ledger)  # held: nothing approved yet
    _approve(governance, POLICY, settings.policy_file.name, settings.policy_file)
    spring = tmp_path / "campaigns" / "spring.yaml"
    _approve(governance, CAMPAIGN, "spring", spring)
    _approve(governance, CAMPAIGN, "winter", tmp_path / "campaigns" / "winter.yaml")
    release, newly_due = _run(tmp_path, settings, governance, "r2", ledger)
    assert (release.status, newly_due, release.held) == ("released", 5, {})
    assert gateway.dispatch_due(run_id="d2", campaigns=["spring", "winter"]).delivered == 5

    spring.write_text("name: spring\nmax_sends: 100000\n")  # edited after its approval
    later, _ = _run(tmp_path, settings, governance, "r3", ledger)
    assert list(later.held) == ["spring"]

    log = AuditLog(audit_log_path(settings.data_dir))
    live = [(e.action, e.subject) for e in log.entries() if e.action in ("go_live", "release")]
    # r2 put all three files live; r3 put nothing new live (spring's edit was held)
    assert live == [
        ("release", "r2"),
        ("go_live", "global_policy.yaml"),
        ("go_live", "spring.yaml"),
        ("go_live", "winter.yaml"),
        ("release", "r3"),
    ]
    assert log.verify().ok


def test_a_ledger_written_before_approvals_is_migrated_in_place(tmp_path):
    path = tmp_path / "ledger.db"
    with sqlite3.connect(path) as con:
        con.execute(
            "create table releases (run_id text primary key, status text not null check"
            " (status in ('released', 'revoked')), released_at text not null, send_date text"
            " not null, checks text not null, model_versions text not null, policy_version text"
            " not null, feature_version text not null, campaign_files text not null,"
            " decisions_digest text not null, messages integer not null, campaigns text not"
            " null, revoked_at text, revoked_by text, revoke_reason text)"
        )
        con.execute(
            "insert into releases values ('old', 'released', '2026-11-22T09:00:00+00:00',"
            " '2026-11-22', '{}', '3', 'p1', 'v1', '{}', 'abc', 4, '[\"c1\"]', null, null, null)"
        )
    ledger = SendLedger(path)
    row = ledger.releases().iloc[0]
    assert (row.run_id, row.status, row.messages, row.held) == ("old", "released", 4, "{}")
