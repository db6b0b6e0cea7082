"""Audience selection: every candidate gets exactly one decision with the right reason."""

from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest

from orchestration.core import audience as a
from orchestration.core.campaigns import Campaign

DECIDED_AT = datetime(2026, 11, 23, 9, tzinfo=UTC)


def _candidates(n: int = 1000, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "customer_id": np.arange(1, n + 1, dtype="int64"),
            "region": rng.choice(["us-east", "eu-west"], n),
            "signed_up_at": pd.Timestamp("2024-01-01", tz="UTC"),
        }
    )
    for channel in ("email", "sms", "push"):
        frame[f"is_{channel}_opted_in"] = rng.random(n) < 0.7
        frame[f"is_{channel}_suppressed"] = rng.random(n) < 0.05
        frame[f"is_{channel}_reachable"] = rng.random(n) < 0.95
    return frame


def _scores(candidates: pd.DataFrame, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "customer_id": candidates["customer_id"],
            "predicted_uplift": rng.normal(0.02, 0.05, len(candidates)),
            "feature_timestamp": pd.Timestamp("2026-11-23", tz="UTC"),
        }
    )


def _campaign(**overrides) -> Campaign:
    fields = {"name": "test_campaign", "channel": "email", "max_sends": 100, "holdout_share": 0.1}
    return Campaign(**{**fields, **overrides})


def _decide(candidates, scores, campaign, sent=frozenset()):
    context = a.DecisionContext(run_id="run-1", decided_at=DECIDED_AT, model_version="3")
    return a.decide(candidates, scores, campaign, context, sent)


def test_every_candidate_gets_one_decision_with_a_reason():
    candidates = _candidates()
    decisions = _decide(candidates, _scores(candidates), _campaign())
    assert len(decisions) == len(candidates)
    assert decisions["customer_id"].is_unique
    assert (decisions["reason"] != "").all()
    assert set(decisions["decision"]) <= {a.SEND, a.HOLDOUT, a.EXCLUDED}


def test_never_sends_to_opted_out_or_suppressed():
    candidates = _candidates()
    decisions = _decide(candidates, _scores(candidates), _campaign(max_sends=10_000)).merge(
        candidates, on="customer_id"
    )
    sends = decisions[decisions["decision"] == a.SEND]
    assert len(sends) > 0
    assert sends["is_email_opted_in"].all()
    assert not sends["is_email_suppressed"].any()
    assert sends["is_email_reachable"].all()
    opted_out = decisions[~decisions["is_email_opted_in"]]
    assert (opted_out["reason"] == a.REASON_NO_CONSENT).all()


def test_selects_the_top_uplift_up_to_the_cap():
    candidates = _candidates()
    scores = _scores(candidates)
    decisions = _decide(candidates, scores, _campaign(max_sends=50))
    sends = decisions[decisions["decision"] == a.SEND]
    assert len(sends) == 50
    passed_over = decisions[decisions["reason"] == a.REASON_OVER_CAP]
    assert sends["predicted_uplift"].min() >= passed_over["predicted_uplift"].max()


def test_never_sends_where_uplift_is_not_positive():
    candidates = _candidates()
    decisions = _decide(candidates, _scores(candidates), _campaign(max_sends=10_000))
    assert (decisions.loc[decisions["decision"] == a.SEND, "predicted_uplift"] > 0).all()
    low = decisions["predicted_uplift"] <= 0
    assert (
        decisions.loc[low & (decisions["reason"] != a.REASON_NO_CONSENT), "decision"] == a.EXCLUDED
    ).all()


def test_holdout_is_random_share_of_the_audience_and_stable():
    candidates = _candidates(20_000)
    scores = _scores(candidates)
    campaign = _campaign(max_sends=5_000, holdout_share=0.2)
    first = _decide(candidates, scores, campaign)
    second = _decide(candidates, scores, campaign)
    pd.testing.assert_frame_equal(first, second)
    sends = (first["decision"] == a.SEND).sum()
    holdouts = (first["decision"] == a.HOLDOUT).sum()
    assert sends == 5_000
    assert holdouts / (sends + holdouts) == pytest.approx(0.2, abs=0.02)
    # holdouts sit inside the targeted ranks, not after the last send
    last_send_rank = first.loc[first["decision"] == a.SEND, "uplift_rank"].max()
    assert first.loc[first["decision"] == a.HOLDOUT, "uplift_rank"].max() < last_send_rank


def test_already_sent_today_counts_against_the_cap():
    candidates = _candidates()
    scores = _scores(candidates)
    campaign = _campaign(max_sends=30, holdout_share=0.0)
    first = _decide(candidates, scores, campaign)
    sent = set(first.loc[first["decision"] == a.SEND, "customer_id"])
    second = _decide(candidates, scores, campaign, frozenset(sent))
    assert (second["decision"] == a.SEND).sum() == 0
    assert (second.loc[second["customer_id"].isin(sent), "reason"] == a.REASON_ALREADY_SENT).all()


def test_missing_features_are_excluded_not_guessed():
    candidates = _candidates(100)
    scores = _scores(candidates)
    scores.loc[scores.index[:10], "predicted_uplift"] = np.nan
    decisions = _decide(candidates, scores, _campaign(max_sends=1000))
    first_ten = decisions[decisions["customer_id"] <= 10]
    assert (first_ten["decision"] != a.SEND).all()
    consenting = first_ten[first_ten["reason"] != a.REASON_NO_CONSENT]
    assert set(consenting["reason"]) <= {
        a.REASON_MISSING_FEATURES,
        a.REASON_SUPPRESSED,
        a.REASON_UNREACHABLE,
    }


def test_budget_caps_the_sends():
    candidates = _candidates(5000)
    campaign = _campaign(
        max_sends=10_000, holdout_share=0.0, budget={"cost_per_send": 0.5, "max_total_cost": 20}
    )
    decisions = _decide(candidates, _scores(candidates), campaign)
    assert (decisions["decision"] == a.SEND).sum() == 40


def test_eligibility_filters_apply():
    candidates = _candidates()
    decisions = _decide(
        candidates,
        _scores(candidates),
        _campaign(max_sends=10_000, eligibility={"regions": ["eu-west"]}),
    )
    sends = decisions[decisions["decision"] == a.SEND].merge(candidates, on="customer_id")
    assert set(sends["region"]) == {"eu-west"}
