"""Variant decisions reach the provider only through the release door, with the chosen
variant's template and channel; a refused or revoked release sends none of them."""

from __future__ import annotations

import sqlite3

import pandas as pd
import pytest

from orchestration.core.delivery.dispatch import Gateway, route_for
from orchestration.core.delivery.ledger import SendLedger
from orchestration.core.delivery.outbox import OutboxProvider
from orchestration.core.delivery.releases import (
    ReleaseRefused,
    build_release,
    gate_verdict,
    sendable,
)
from tests.gateway.raw_world import write_raw

SEND_DATE = "2026-11-23"
GATES = [("campaign_decisions", "audience_compliant")]


def _decisions() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "campaign": "spring_variants",
            "customer_id": [1, 2, 3, 4],
            "channel": ["email", "sms", "email", "email"],
            "decision": ["send", "send", "holdout", "send"],
            "variant": ["offer", "reminder", "offer", "reminder"],
            "template": ["spring_offer", "spring_reminder", "spring_offer", "spring_reminder"],
            "model_version": "3",
            "policy_version": "p1",
        }
    )


def _release(run_id: str, passed: bool = True):
    decisions = _decisions()
    messages = sendable(decisions, ["spring_variants"])
    verdict = gate_verdict(GATES, [(a, c, passed) for a, c in GATES])
    release = build_release(
        run_id=run_id,
        released_at="2026-11-23T09:00:00+00:00",
        send_date=SEND_DATE,
        verdict=verdict,
        decisions=decisions,
        messages=messages,
        feature_version="v1",
        campaign_files={"spring_variants.yaml": "abc"},
    )
    return release, messages


def _gateway(tmp_path, ledger):
    raw_dir = write_raw(tmp_path / "raw", 10)
    outbox = OutboxProvider(tmp_path / "outbox.db")
    routes = {ch: route_for(outbox) for ch in ("email", "sms", "push")}
    return Gateway(ledger, routes, raw_dir, sleep=lambda _: None), outbox


def _sent(outbox: OutboxProvider) -> list[tuple]:
    con = sqlite3.connect(outbox.path)
    try:
        return con.execute(
            "select customer_id, channel, template from messages order by customer_id"
        ).fetchall()
    finally:
        con.close()


def test_the_chosen_variant_is_what_the_provider_receives(tmp_path):
    ledger = SendLedger(tmp_path / "ledger.db")
    release, messages = _release("r1")
    assert ledger.record_release(release, messages) == 3
    gateway, outbox = _gateway(tmp_path, ledger)
    report = gateway.dispatch_due(run_id="d1", campaigns=["spring_variants"])
    assert _sent(outbox) == [(1, "email", "spring_offer"), (4, "email", "spring_reminder")]
    # customer 2's variant goes out on sms, where the raw world has no consent: the dispatch-time
    # consent re-check stops it on the variant's own channel
    assert report.failures_by_reason == {"consent_withdrawn_before_dispatch": 1}


def test_a_refused_release_enqueues_no_variant(tmp_path):
    with pytest.raises(ReleaseRefused, match="audience_compliant"):
        _release("r1", passed=False)


def test_a_revoked_release_sends_no_variant(tmp_path):
    ledger = SendLedger(tmp_path / "ledger.db")
    release, messages = _release("r1")
    ledger.record_release(release, messages)
    assert ledger.revoke_release("r1", by="ops", reason="wrong variant") == 3
    gateway, outbox = _gateway(tmp_path, ledger)
    assert gateway.dispatch_due(run_id="d1", campaigns=["spring_variants"]).delivered == 0
    assert _sent(outbox) == []


def test_a_ledger_written_before_variants_gains_the_template_column(tmp_path):
    path = tmp_path / "ledger.db"
    SendLedger(path).close()
    con = sqlite3.connect(path)
    con.execute("alter table deliveries drop column template")
    con.commit()
    con.close()
    ledger = SendLedger(path)
    release, messages = _release("r1")
    assert ledger.record_release(release, messages) == 3
    due = ledger.claim_due("w", 10, ["spring_variants"])
    assert sorted(m.template for m in due) == ["spring_offer", "spring_reminder", "spring_reminder"]
