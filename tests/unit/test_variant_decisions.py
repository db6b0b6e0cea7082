"""Variant decisions: a campaign with ``variants:`` sends each customer the variant (arm) with the
highest expected net value, or none, and records the runner-up's value.

The expected values below are computed by hand from the stated uplifts, costs and values, not by
the code under test.
"""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from orchestration.core.decisioning.campaigns import Campaign
from orchestration.core.decisioning.decide import (
    VariantScoreError,
    arm_score_column,
    campaign_scores,
    decide_campaigns,
    score_column,
    version_column,
)
from orchestration.core.decisioning.engine import CampaignScores, PolicyInputs, evaluate
from orchestration.core.decisioning.policy import parse_policy
from orchestration.core.delivery.releases import decisions_digest, sendable
from tests.support.policy_candidates import open_candidates

DECIDED_AT = datetime(2026, 11, 23, 9, 30, tzinfo=UTC)
POLICY = "global_control: {share: 0.0}\nfrequency_caps: []\nquiet_hours: {}\n"
REF = "uplift_model@champion"


def _candidates(n: int) -> pd.DataFrame:
    return open_candidates(np.arange(1, n + 1))


def _campaign(**fields) -> Campaign:
    base = {
        "name": "spring_variants",
        "channel": "email",
        "max_sends": 100,
        "holdout_share": 0.0,
        "budget": {"cost_per_send": 0.01, "value_per_conversion": 10.0},
        "variants": [
            {"name": "offer", "template": "spring_offer"},
            {"name": "reminder", "channel": "sms", "cost_per_send": 0.05},
        ],
    }
    return Campaign(**{**base, **fields})


def _scores(offer, reminder) -> CampaignScores:
    offer, reminder = np.asarray(offer, float), np.asarray(reminder, float)
    n = len(offer)
    return CampaignScores(
        np.maximum(offer, reminder),
        np.full(n, "3", dtype=object),
        np.full(n, "champion", dtype=object),
        arms={"offer": offer, "reminder": reminder},
    )


def _decide(candidates, campaign, scores):
    inputs = PolicyInputs(candidates, {campaign.name: scores}, _no_history(), DECIDED_AT)
    return evaluate(inputs, [campaign], parse_policy(POLICY)).to_frame("run-1", None)


def _no_history() -> pd.DataFrame:
    return pd.DataFrame(columns=["campaign", "customer_id", "channel", "send_date"])


def test_each_customer_gets_the_variant_with_the_highest_net_value():
    # offer: 10 x u - 0.01 on email; reminder: 10 x u - 0.05 on sms
    offer = [0.05, 0.02, 0.030, -0.01]
    reminder = [0.01, 0.04, 0.032, -0.02]
    frame = _decide(_candidates(4), _campaign(), _scores(offer, reminder))
    assert frame["variant"].tolist()[:3] == ["offer", "reminder", "offer"]
    # customer 3: reminder has the higher uplift (0.032 vs 0.030) but costs more:
    # 0.32 - 0.05 = 0.27 < 0.30 - 0.01 = 0.29
    assert frame["expected_net_value"].tolist()[:3] == pytest.approx([0.49, 0.35, 0.29])
    assert frame["runner_up_value"].tolist()[:3] == pytest.approx([0.05, 0.19, 0.27])
    assert frame["channel"].tolist()[:3] == ["email", "sms", "email"]
    assert frame["template"].tolist()[:3] == ["spring_offer", "reminder", "spring_offer"]
    assert frame["predicted_uplift"].tolist()[:3] == pytest.approx([0.05, 0.04, 0.030])
    # customer 4: no variant is worth sending
    assert frame.loc[3, "decision"] == "excluded" and frame.loc[3, "reason"] == "not_worth_sending"
    assert frame.loc[:2, "decision"].eq("send").all()


def test_a_variant_whose_channel_is_closed_is_not_chosen():
    c = _candidates(3)
    c.loc[0, "is_sms_opted_in"] = False  # the better variant is on sms: take the email one
    c.loc[1, "is_sms_suppressed"] = True
    c.loc[2, ["is_sms_opted_in", "is_email_opted_in"]] = False  # neither channel is open
    frame = _decide(c, _campaign(), _scores([0.02, 0.02, 0.02], [0.09, 0.09, 0.09]))
    assert frame["variant"].tolist()[:2] == ["offer", "offer"]
    assert frame["decision"].tolist()[:2] == ["send", "send"]
    assert frame["runner_up_value"].isna().tolist()[:2] == [True, True]  # no second open
    # neither open: excluded for the reason of the best-valued variant (reminder, on sms)
    assert frame.loc[2, "decision"] == "excluded"
    assert frame.loc[2, "reason"] == "no_consent_on_channel"
    assert frame.loc[2, "channel"] == "sms"


def test_holdout_and_global_control_are_the_same_customers_as_without_variants():
    n = 5_000
    c = _candidates(n)
    policy = parse_policy(
        "global_control: {share: 0.05, salt: s1}\nfrequency_caps: []\nquiet_hours: {}\n"
    )
    rng = np.random.default_rng(1)
    offer, reminder = rng.uniform(0.01, 0.1, n), rng.uniform(0.01, 0.1, n)
    with_variants = _campaign(max_sends=n, holdout_share=0.1)
    binary = _campaign(max_sends=n, holdout_share=0.1, variants=None)
    frames = []
    for campaign, scores in (
        (with_variants, _scores(offer, reminder)),
        (binary, CampaignScores(offer, np.full(n, "3", object), np.full(n, "champion", object))),
    ):
        inputs = PolicyInputs(c, {campaign.name: scores}, _no_history(), DECIDED_AT)
        frames.append(evaluate(inputs, [campaign], policy).to_frame("r", None))
    for decision in ("control", "holdout"):
        assert (frames[0]["decision"] == decision).equals(frames[1]["decision"] == decision)
    assert frames[1]["variant"].isna().all() and frames[1]["template"].isna().all()


def test_the_release_carries_the_chosen_template_and_channel():
    frame = _decide(_candidates(2), _campaign(), _scores([0.05, 0.02], [0.01, 0.04]))
    messages = sendable(frame, ["spring_variants"])
    assert messages[["channel", "template"]].values.tolist() == [
        ["email", "spring_offer"],
        ["sms", "reminder"],
    ]
    binary = messages.assign(template=None)
    assert decisions_digest(messages) != decisions_digest(binary)  # the template is released


def test_variants_name_arms_of_the_model():
    scores = pd.DataFrame(
        {
            "customer_id": [1, 2],
            score_column(REF): [0.1, 0.2],
            version_column(REF): ["3", "3"],
            arm_score_column(REF, "offer"): [0.1, 0.05],
        }
    )
    with pytest.raises(
        VariantScoreError, match=r"variant\(s\) reminder are not arms .* arms offer"
    ):
        campaign_scores(scores, _campaign(), 0.0)
    run = decide_campaigns(
        _candidates(2),
        scores,
        [_campaign()],
        parse_policy(POLICY),
        _no_history(),
        {},
        DECIDED_AT,
        "run-1",
        None,
    )
    assert run.decisions.empty
    assert "reminder" in run.errors["spring_variants"]


@pytest.mark.parametrize(
    ("variants", "message"),
    [
        ([{"name": "control"}], "not a variant"),
        ([{"name": "offer"}, {"name": "offer"}], "declared more than once"),
        ([{"name": "Offer Email"}], "arm's name"),
        ([{"name": "offer", "channel": "fax"}], "channel"),
        ([], "at least 1"),
    ],
)
def test_bad_variants_are_rejected_with_the_field(variants, message):
    with pytest.raises(ValidationError, match=message):
        _campaign(variants=variants)


def test_the_example_variants_campaign_loads():
    from pathlib import Path

    from orchestration.core.decisioning.campaigns import load_campaigns

    loaded = load_campaigns(Path(__file__).parents[2] / "campaigns" / "variants")
    assert loaded.errors == {}
    campaign = loaded.campaigns["spring_variants_email_sms"]
    assert [v.name for v in campaign.variants] == ["offer", "reminder"]
    assert campaign.channels == ("email", "sms")
