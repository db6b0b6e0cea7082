"""Four eyes through the real pipeline: with approvals required and nothing approved, a run whose
gates all pass decides, records a release ``awaiting_approval`` and sends nothing; once the
campaign and policy versions are approved by another identity, the next run sends.

The smallest e2e world (5,000 customers, as in test_gate_failing_paths.py, with the champion
floor lowered for the same reason): this module is about the release door, not the model. The
held run is in CI (``make test``); the approved second run is marked slow (``make test-all``).
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta

import pytest
from dagster import DagsterInstance

from orchestration.core.decisioning.campaigns import load_campaigns
from orchestration.core.governance.approvals import (
    CAMPAIGN,
    POLICY,
    file_hash,
    governance_for,
)
from orchestration.core.observability.audit import AuditLog, audit_log_path
from orchestration.settings import Settings
from tests.conftest import local_instance, point_at
from tests.governance.approvers import write_approvers

pytestmark = pytest.mark.e2e

CUSTOMERS = 5_000
SEED = 11
WORLD_NOW = (datetime.now(UTC) - timedelta(days=2)).replace(
    hour=10, minute=0, second=0, microsecond=0
)


def _run(instance: DagsterInstance):
    from orchestration.definitions import defs

    return defs.resolve_job_def("campaign_pipeline").execute_in_process(
        instance=instance,
        run_config={"ops": {"raw_data": {"config": {"customers": CUSTOMERS, "seed": SEED}}}},
        raise_on_error=False,
    )


def _count(path, table: str) -> int:
    if not path.exists():
        return 0
    with sqlite3.connect(path) as con:
        return con.execute(f"select count(*) from {table}").fetchone()[0]


def _metadata(result, asset: str) -> dict:
    events = [
        e
        for e in result.get_asset_materialization_events()
        if e.asset_key.to_user_string() == asset
    ]
    assert events, f"{asset} was not materialized"
    return {k: v.value for k, v in events[-1].materialization.metadata.items()}


@pytest.fixture(scope="module")
def held_world(tmp_path_factory):
    root = tmp_path_factory.mktemp("approvals_pipeline")
    with pytest.MonkeyPatch.context() as mp:
        point_at(mp, root / "data")
        mp.setenv("CAMPAIGN_WORLD_NOW", WORLD_NOW.isoformat())
        mp.setenv("CAMPAIGN_MIN_CHAMPION_QINI", "-1")
        write_approvers(root / "team", mp)
        (root / "dagster_home").mkdir()
        instance = local_instance(root / "dagster_home")
        held = _run(instance)
        yield {"instance": instance, "settings": Settings.from_env(), "held": held}


def test_an_unapproved_campaign_is_decided_but_held_and_nothing_is_sent(held_world):
    s, held = held_world["settings"], held_world["held"]
    assert held.success
    release = _metadata(held, "campaign_release")
    assert release["status"] == "awaiting_approval"
    assert "spring_reactivation_email" in release["held_awaiting_approval"]
    assert (release["messages"], release["newly_due"]) == (0, 0)
    assert _metadata(held, "campaign_sends")["delivered"] == 0
    assert _count(s.gateway_dir / "ledger.db", "deliveries") == 0
    assert _count(s.gateway_dir / "outbox.db", "messages") == 0
    run_id = held.run_id
    assert list(s.decisions_dir.glob(f"decided_on=*/run={run_id}.parquet"))  # decided all the same


@pytest.mark.slow  # a second whole pipeline run (~2-3 min); the same path without Dagster is
# tests/governance/test_release_holds.py::test_approval_then_the_next_run_sends_...
def test_after_another_identity_approves_the_next_run_sends(held_world):
    s, instance = held_world["settings"], held_world["instance"]
    governance = governance_for(s)
    campaign = load_campaigns(s.campaigns_dir).sources["spring_reactivation_email"]
    for kind, subject, path in (
        (CAMPAIGN, "spring_reactivation_email", campaign),
        (POLICY, s.policy_file.name, s.policy_file),
    ):
        governance.submit(kind, subject, file_hash(path), "alice")
        governance.approve(kind, subject, file_hash(path), "bob", current_hash=file_hash(path))

    approved = _run(instance)
    assert approved.success
    release = _metadata(approved, "campaign_release")
    assert release["status"] == "released" and release["messages"] > 0
    assert _count(s.gateway_dir / "outbox.db", "messages") == release["messages"]
    log = AuditLog(audit_log_path(s.data_dir))
    actions = [e.action for e in log.entries()]
    assert actions.count("hold_awaiting_approval") == 1 and actions.count("release") == 1
    assert "go_live" in actions and log.verify().ok
