"""Canary guardrails: a misbehaving challenger trips the canary, the share drops to 0, an alert is
recorded; a new challenger version resets it."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from orchestration.core.decisioning.canary import (
    evaluate_guardrails,
    ks_statistic,
    load_state,
    run_canary,
    shares_for_run,
    state_path,
)
from orchestration.core.decisioning.decide import campaign_scores
from orchestration.settings import Settings

MODEL = "uplift_model"
OTHER = "other_model"
CHAMP, CHALL = f"uplift__{MODEL}@champion", f"uplift__{MODEL}@challenger"


@pytest.fixture
def settings(tmp_path, monkeypatch) -> Settings:
    monkeypatch.delenv("CAMPAIGN_ALERT_NOTIFIERS", raising=False)
    monkeypatch.delenv("CAMPAIGN_ALERT_LOG", raising=False)
    return Settings(data_dir=tmp_path / "data")


def _campaign(name: str, model: str, share: float):
    return SimpleNamespace(
        name=name, challenger_share=share, model=SimpleNamespace(name=model, alias="champion")
    )


CAMPAIGNS = [_campaign("canary_campaign", MODEL, 0.2), _campaign("plain", OTHER, 0.1)]


def _scores(n: int = 2000, challenger_version: str = "2", seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    champion = rng.normal(0.02, 0.03, n)
    return pd.DataFrame(
        {
            "customer_id": np.arange(1, n + 1, dtype="int64"),
            CHAMP: champion,
            f"version__{MODEL}@champion": "1",
            CHALL: champion + rng.normal(0, 0.002, n),
            f"version__{MODEL}@challenger": challenger_version,
        }
    )


def _decisions(scores: pd.DataFrame, share: float = 0.2) -> pd.DataFrame:
    """What decide_campaigns records for the canary campaign: who scored each row."""
    s = campaign_scores(scores, _campaign("canary_campaign", MODEL, share), share)
    return pd.DataFrame(
        {
            "campaign": "canary_campaign",
            "customer_id": scores["customer_id"],
            "channel": "email",
            "decision": np.where(s.uplift > 0, "send", "excluded"),
            "scored_by": s.scored_by,
            "dry_run": False,
        }
    )


def _frame(champion, challenger, scored_by="challenger") -> pd.DataFrame:
    return pd.DataFrame(
        {"scored_by": scored_by, "champion_uplift": champion, "challenger_uplift": challenger}
    )


def test_ks_statistic():
    a = np.linspace(0, 1, 101)
    assert ks_statistic(a, a) == 0.0
    assert ks_statistic(a, a + 2) == 1.0


def test_a_healthy_challenger_passes_every_guardrail():
    scores = _scores()
    assert evaluate_guardrails(_frame(scores[CHAMP], scores[CHALL]), {"champion": 3}) == []


def test_each_guardrail_fails_on_its_own():
    scores = _scores()
    champion, challenger = scores[CHAMP].to_numpy(), scores[CHALL].to_numpy().copy()

    broken = challenger.copy()
    broken[:5] = np.nan
    (errors,) = evaluate_guardrails(_frame(champion, broken), {})
    assert errors.startswith("scoring errors")

    (drift,) = evaluate_guardrails(_frame(champion, challenger + 0.05), {})
    assert drift.startswith("score drift")
    assert evaluate_guardrails(_frame(champion, challenger), {}, drift_share=0.9)[0].startswith(
        "score drift"
    )

    (compliance,) = evaluate_guardrails(_frame(champion, challenger), {"challenger": 1})
    assert compliance.startswith("compliance: 1")


def test_customers_without_features_are_not_scoring_errors():
    scores = _scores()
    champion, challenger = scores[CHAMP].to_numpy().copy(), scores[CHALL].to_numpy().copy()
    champion[:50] = challenger[:50] = np.nan  # no features: neither model scores them
    assert evaluate_guardrails(_frame(champion, challenger), {}) == []


def test_a_failing_canary_trips_sets_the_share_to_zero_and_alerts(settings):
    scores = _scores()
    assert shares_for_run(settings, CAMPAIGNS, scores) == {"canary_campaign": 0.2, "plain": 0.1}
    decisions = _decisions(scores)
    assert (decisions["scored_by"] == "challenger").any()

    broken = scores.copy()
    broken.loc[broken.index[:10], CHALL] = np.nan
    outcomes = run_canary(settings, decisions, broken, {c.name: c.model.name for c in CAMPAIGNS})
    assert list(outcomes) == [MODEL]
    assert outcomes[MODEL].newly_tripped
    state = load_state(settings, MODEL)
    assert state.tripped and state.challenger_version == "2" and "scoring errors" in state.reason
    assert json.loads(state_path(settings).read_text())[MODEL]["tripped"] is True

    alerts = (settings.data_dir / "alerts" / "alerts.jsonl").read_text().splitlines()
    assert len(alerts) == 1
    alert = json.loads(alerts[0])
    assert alert["incident_key"] == f"canary:{MODEL}"
    assert alert["kind"] == "check_failed" and alert["status"] == "open"

    # next run: the tripped model's campaigns get share 0, the other model is untouched ...
    shares = shares_for_run(settings, CAMPAIGNS, scores)
    assert shares == {"canary_campaign": 0.0, "plain": 0.1}
    # ... so decisioning scores everyone with the champion
    after = _decisions(scores, share=shares["canary_campaign"])
    assert (after["scored_by"] == "champion").all()
    # and with no canary running nothing is evaluated again, nor alerted twice
    assert run_canary(settings, after, broken, {"canary_campaign": MODEL}) == {}
    again = run_canary(settings, decisions, broken, {"canary_campaign": MODEL})
    assert not again[MODEL].newly_tripped
    assert len((settings.data_dir / "alerts" / "alerts.jsonl").read_text().splitlines()) == 1


def test_a_new_challenger_version_resets_the_canary(settings):
    scores = _scores()
    broken = scores.copy()
    broken[CHALL] = broken[CHALL] + 0.5
    run_canary(settings, _decisions(scores), broken, {"canary_campaign": MODEL})
    assert load_state(settings, MODEL).tripped
    # a run without any challenger scored keeps the trip (same version may come back)
    no_challenger = scores.drop(columns=[CHALL, f"version__{MODEL}@challenger"])
    assert shares_for_run(settings, CAMPAIGNS, no_challenger)["canary_campaign"] == 0.0
    assert load_state(settings, MODEL).tripped
    assert shares_for_run(settings, CAMPAIGNS, scores)["canary_campaign"] == 0.0

    fresh = _scores(challenger_version="3")
    assert shares_for_run(settings, CAMPAIGNS, fresh)["canary_campaign"] == 0.2
    state = load_state(settings, MODEL)
    assert not state.tripped and state.challenger_version == "3"
    # the healthy new challenger stays untripped after its guardrails run
    outcome = run_canary(settings, _decisions(fresh), fresh, {"canary_campaign": MODEL})
    assert outcome[MODEL].failed == [] and not load_state(settings, MODEL).tripped


def test_violations_among_challenger_rows_trip_the_canary(settings):
    scores = _scores()
    decisions = _decisions(scores)
    challenger_row = decisions[
        (decisions["scored_by"] == "challenger") & (decisions["decision"] == "send")
    ].iloc[0]
    champion_row = decisions[
        (decisions["scored_by"] == "champion") & (decisions["decision"] == "send")
    ].iloc[0]

    def verify_champion_only(recipients):
        return pd.DataFrame(
            {"customer_id": [champion_row["customer_id"]], "channel": ["email"], "violation": "x"}
        )

    def verify_challenger(recipients):
        return pd.DataFrame(
            {"customer_id": [challenger_row["customer_id"]], "channel": ["email"], "violation": "x"}
        )

    ok = run_canary(settings, decisions, scores, {"canary_campaign": MODEL}, verify_champion_only)
    assert ok[MODEL].failed == []
    bad = run_canary(settings, decisions, scores, {"canary_campaign": MODEL}, verify_challenger)
    assert bad[MODEL].failed == ["compliance: 1 policy violations among challenger-scored rows"]
    assert load_state(settings, MODEL).tripped
