"""The whole pipeline on a world whose past campaigns tested two message variants.

``CAMPAIGN_WORLD_VARIANTS=true``: the past campaigns split their treated customers between the
arms ``offer`` and ``reminder`` (true effects per customer type: ``core/world/synthetic.py``).
The campaigns are ``campaigns/variants/`` (``spring_variants_email_sms``: offer by email,
reminder by SMS). The run must train one uplift per arm, pass the per-arm champion gate, choose
a variant per customer that follows the true effects, and release the chosen variants' templates
and channels into the ledger. The decision API decides the same customers alike (parity).

Slow (a second pipeline world, ~2 minutes). Definitions are built from the campaigns directory
when they are imported, so the fixture rebuilds them for this directory.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from dagster import AssetKey

from orchestration.settings import Settings
from tests.conftest import local_instance, point_at
from tests.e2e.conftest import WORLD_START
from tests.e2e.example_rct import reload_definitions as _definitions

pytestmark = pytest.mark.slow

CAMPAIGN = "spring_variants_email_sms"
CAMPAIGNS_DIR = Path(__file__).parents[2] / "campaigns" / "variants"


@pytest.fixture(scope="module")
def variant_run(tmp_path_factory):
    from orchestration.run_summary import summarize_run

    data_dir = tmp_path_factory.mktemp("variants") / "data"
    with pytest.MonkeyPatch.context() as mp:
        point_at(mp, data_dir)
        mp.setenv("CAMPAIGN_WORLD_VARIANTS", "true")
        mp.setenv("CAMPAIGN_CAMPAIGNS_DIR", str(CAMPAIGNS_DIR))
        mp.setenv("CAMPAIGN_WORLD_NOW", WORLD_START.isoformat())
        defs = _definitions()
        assert AssetKey(["audience", CAMPAIGN]) in defs.resolve_all_asset_keys()
        home = data_dir.parent / "dagster_home"
        home.mkdir(parents=True, exist_ok=True)
        instance = local_instance(home)
        result = defs.resolve_job_def("campaign_pipeline").execute_in_process(
            instance=instance,
            run_config={"ops": {"raw_data": {"config": {"customers": 20_000, "seed": 7}}}},
            raise_on_error=False,
        )
        yield {
            "settings": Settings.from_env(),
            "result": result,
            "summary": summarize_run(instance, result.run_id),
        }
    _definitions()  # back to the default campaigns for whatever runs next


def _decisions(run) -> pd.DataFrame:
    for event in run["result"].get_asset_materialization_events():
        if event.asset_key == AssetKey("campaign_decisions"):
            return pd.read_parquet(event.materialization.metadata["decisions_file"].value)
    raise AssertionError("campaign_decisions was not materialized")


def test_one_uplift_per_arm_and_the_per_arm_gate(variant_run):
    summary = variant_run["summary"]
    gate = next(c for c in summary.checks if c["check"] == "champion_beats_random")
    print(gate["description"])
    assert variant_run["result"].success, [(s.step, s.status) for s in summary.stages]
    model = summary.metadata("uplift_model")
    assert model["arms"] == "offer, reminder"
    for arm in ("offer", "reminder"):
        print(f"{arm}: qini {model[f'arm_{arm}_qini']:.4f} {model[f'arm_{arm}_qini_ci']}")
    assert gate["passed"], gate
    assert gate["metadata"]["arms_offered"] == "offer, reminder"


def test_the_chosen_variant_follows_the_true_effects(variant_run):
    s = variant_run["settings"]
    decisions = _decisions(variant_run)
    mine = decisions[decisions["campaign"] == CAMPAIGN]
    sent = mine[mine["decision"].isin(["send", "deferred"])]
    assert len(sent) > 100
    assert set(sent["variant"]) == {"offer", "reminder"}
    assert (sent.loc[sent["variant"] == "reminder", "channel"] == "sms").all()
    assert (sent.loc[sent["variant"] == "offer", "template"] == "spring_discount_offer").all()
    assert mine["runner_up_value"].notna().any()
    truth = pd.read_parquet(s.ground_truth_dir / "customer_uplift.parquet")
    chosen = sent.merge(truth, on="customer_id")
    right = np.where(
        chosen["variant"] == "offer",
        chosen["true_uplift__offer"] >= chosen["true_uplift__reminder"],
        chosen["true_uplift__reminder"] >= chosen["true_uplift__offer"],
    )
    print(f"chosen variant is the truly better one for {right.mean():.1%} of {len(chosen)} sends")
    assert right.mean() > 0.7
    assert (chosen["segment"] != "sleeping_dog").mean() > 0.9


def test_the_release_carries_the_variants_to_the_ledger(variant_run):
    s = variant_run["settings"]
    con = sqlite3.connect(s.gateway_dir / "ledger.db")
    try:
        rows = con.execute(
            "select channel, template, count(*) from deliveries where campaign = ? group by 1, 2",
            (CAMPAIGN,),
        ).fetchall()
    finally:
        con.close()
    by = {(channel, template): n for channel, template, n in rows}
    assert set(by) == {("email", "spring_discount_offer"), ("sms", "spring_reminder")}


def test_the_api_picks_the_same_variants(variant_run, tmp_path):
    """The decision service, loaded as `campaign serve` loads it, decides the run's customers at
    the run's moment with the same variants (the batch's contact history without its own
    sends)."""
    from orchestration.core.decisioning.inputs import recent_contacts
    from orchestration.core.decisioning.realtime import ApiDecisionStore, DecisionService
    from orchestration.core.delivery.ledger import SendLedger

    s, run = variant_run["settings"], variant_run["result"]
    batch = _decisions(variant_run)
    decided_at = pd.Timestamp(batch["decided_at"].iloc[0]).to_pydatetime()
    service = DecisionService(s, store=ApiDecisionStore(tmp_path / "api.db"), refresh_seconds=3600)
    ledger = SendLedger(s.gateway_dir / "ledger.db")
    try:
        assert service.health()["status"] == "ok", service.health()
        days = service.state.policy.policy.longest_cap_window_days
        history = recent_contacts(ledger, decided_at, days, exclude_runs=[run.run_id])
        today = history[history["send_date"] == decided_at.date().isoformat()]
        sent_today = {str(k): int(v) for k, v in today.groupby("campaign").size().items()}
        customers = np.sort(batch["customer_id"].unique())
        online = service.evaluate(
            customers, decided_at=decided_at, contact_history=history, sent_today=sent_today
        ).rows
    finally:
        service.close()
        ledger.close()
    both = batch.merge(online, on=["campaign", "customer_id"], suffixes=("_batch", "_api"))
    assert len(both) > 0.99 * len(batch)
    for column in ("decision", "variant", "channel", "template"):
        a, b = both[f"{column}_batch"], both[f"{column}_api"]
        same = ((a == b) | (a.isna() & b.isna())).mean()
        print(f"{column}: {same:.4%} agree")
        assert same > 0.999, column
    np.testing.assert_allclose(
        both["runner_up_value_batch"], both["runner_up_value_api"], rtol=0, atol=1e-9
    )
