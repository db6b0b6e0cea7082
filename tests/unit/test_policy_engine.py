"""The policy engine on hand-built cases: each rule produces its reason code."""

from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest

from orchestration.core.decisioning.campaigns import Campaign
from orchestration.core.decisioning.engine import (
    DECISIONS,
    REASON_TEXT,
    REASONS,
    CampaignScores,
    PolicyInputs,
    evaluate,
)
from orchestration.core.decisioning.policy import parse_policy
from tests.support.policy_candidates import open_candidates

# 09:30 UTC: 04:30 in New York (SMS quiet hours), 09:30 in London (allowed).
DECIDED_AT = datetime(2026, 11, 23, 9, 30, tzinfo=UTC)
NO_CONTROL = "global_control: {share: 0.0}\n"
# a policy states its caps and quiet hours, even when there are none
NO_CAPS = "frequency_caps: []\n"
NO_QUIET_HOURS = "quiet_hours: {}\n"
BARE_POLICY = NO_CONTROL + NO_CAPS + NO_QUIET_HOURS


def _candidates(n: int, **overrides) -> pd.DataFrame:
    return open_candidates(np.arange(1, n + 1), **overrides)


def _scores(uplift) -> CampaignScores:
    uplift = np.asarray(uplift, dtype=float)
    return CampaignScores(
        uplift,
        np.full(len(uplift), "1", dtype=object),
        np.full(len(uplift), "champion", dtype=object),
    )


def _history(rows=()) -> pd.DataFrame:
    return pd.DataFrame(list(rows), columns=["campaign", "customer_id", "channel", "send_date"])


def _campaign(name="c_email", channel="email", **fields) -> Campaign:
    return Campaign(
        **{"name": name, "channel": channel, "max_sends": 100, "holdout_share": 0.0, **fields}
    )


def _run(candidates, campaigns, scores, policy_text=BARE_POLICY, history=None, sent_today=None):
    inputs = PolicyInputs(
        candidates, scores, history if history is not None else _history(), DECIDED_AT
    )
    return evaluate(inputs, campaigns, parse_policy(policy_text), sent_today)


def _row(decisions, campaign: str, customer_id: int) -> tuple[str, str]:
    result = next(c for c in decisions.campaigns if c.campaign.name == campaign)
    i = int(np.searchsorted(decisions.customer_ids, customer_id))
    return DECISIONS[result.decision[i]], REASONS[result.reason[i]]


def test_each_exclusion_rule_has_its_reason():
    c = _candidates(6)
    c.loc[1, "is_email_opted_in"] = False
    c.loc[2, "is_email_suppressed"] = True
    c.loc[3, "is_email_reachable"] = False
    c.loc[4, "region"] = "apac"
    campaign = _campaign(eligibility={"regions": ["eu-west"]})
    uplift = [0.1, 0.1, 0.1, 0.1, 0.1, np.nan]
    d = _run(c, [campaign], {"c_email": _scores(uplift)})
    assert [_row(d, "c_email", i) for i in range(1, 7)] == [
        ("send", "selected_top_uplift"),
        ("excluded", "no_consent_on_channel"),
        ("excluded", "suppressed"),
        ("excluded", "no_verified_contact_point"),
        ("excluded", "not_eligible"),
        ("excluded", "missing_score"),
    ]


@pytest.mark.parametrize("unit", ["us", "ns", "text"])
def test_min_tenure_counts_whole_days_since_sign_up(unit):
    # DECIDED_AT is 2026-11-23 09:30 UTC; a 30-day minimum
    signed_up = [
        "2026-10-24 09:30:00+00:00",  # exactly 30 days: eligible
        "2026-10-24 09:30:01+00:00",  # a second short of 30 days: not eligible
        "2026-10-24 11:30:00+02:00",  # the same instant as the first, in another zone
        "2020-01-01 00:00:00+00:00",  # long ago
        None,  # no sign-up time: not eligible
        "2026-11-24 00:00:00+00:00",  # signs up after the decision: not eligible
    ]
    column = pd.to_datetime(pd.Series(signed_up), utc=True, format="ISO8601")
    column = column.dt.as_unit(unit) if unit != "text" else pd.Series(signed_up, dtype=object)
    c = _candidates(len(signed_up), signed_up_at=column)
    campaign = _campaign(eligibility={"min_tenure_days": 30})
    d = _run(c, [campaign], {"c_email": _scores([0.1] * len(signed_up))})
    eligible = [_row(d, "c_email", i)[1] != "not_eligible" for i in range(1, len(signed_up) + 1)]
    assert eligible == [True, False, True, True, False, False]


def test_global_control_is_never_contacted_by_any_campaign():
    c = _candidates(20_000)
    campaigns = [_campaign(max_sends=50_000), _campaign("c_push", "push", max_sends=50_000)]
    scores = {x.name: _scores(np.full(len(c), 0.1)) for x in campaigns}
    policy = "global_control: {share: 0.05, salt: s1}\n" + NO_CAPS + NO_QUIET_HOURS
    d = _run(c, campaigns, scores, policy_text=policy)
    for result in d.campaigns:
        control = result.reason == REASONS.index("global_control")
        assert control.mean() == pytest.approx(0.05, abs=0.01)
        assert (result.decision[control] == DECISIONS.index("control")).all()
    # the same customers in both campaigns
    assert np.array_equal(d.campaigns[0].reason == 4, d.campaigns[1].reason == 4)


def test_frequency_cap_counts_the_ledger_window_including_today():
    c = _candidates(3)
    history = _history(
        [
            ("x", 1, "email", "2026-11-23"),  # today
            ("x", 1, "sms", "2026-11-20"),
            ("x", 1, "push", "2026-11-18"),  # 3 in the last 7 days -> capped
            ("x", 2, "email", "2026-11-10"),  # outside the window
            ("x", 2, "email", "2026-11-12"),
            ("x", 2, "email", "2026-11-14"),
        ]
    )
    policy = (
        NO_CONTROL
        + NO_QUIET_HOURS
        + "frequency_caps: [{scope: all, max_messages: 3, window_days: 7}]\nmax_messages_per_customer_per_day: 5\n"
    )
    d = _run(c, [_campaign()], {"c_email": _scores([0.1, 0.1, 0.1])}, policy, history)
    assert _row(d, "c_email", 1) == ("excluded", "frequency_cap")
    assert _row(d, "c_email", 2) == ("send", "selected_top_uplift")


def test_one_message_per_day_across_campaigns():
    c = _candidates(2)
    history = _history([("other", 1, "push", "2026-11-23")])
    d = _run(c, [_campaign()], {"c_email": _scores([0.1, 0.1])}, history=history)
    assert _row(d, "c_email", 1) == ("excluded", "daily_message_limit")
    assert _row(d, "c_email", 2) == ("send", "selected_top_uplift")


def test_competing_campaigns_the_higher_net_value_wins():
    c = _candidates(2)
    email = _campaign("c_email", "email", budget={"cost_per_send": 0.0, "value_per_conversion": 10})
    push = _campaign("c_push", "push", budget={"cost_per_send": 0.0, "value_per_conversion": 50})
    scores = {"c_email": _scores([0.10, 0.10]), "c_push": _scores([0.03, 0.01])}
    d = _run(c, [email, push], scores)
    # customer 1: email 1.0 vs push 1.5 -> push; customer 2: email 1.0 vs push 0.5 -> email
    assert _row(d, "c_push", 1) == ("send", "selected_top_uplift")
    assert _row(d, "c_email", 1) == ("excluded", "won_by_other_campaign")
    assert _row(d, "c_email", 2) == ("send", "selected_top_uplift")
    assert _row(d, "c_push", 2) == ("excluded", "won_by_other_campaign")


def test_ties_are_broken_by_priority_then_name():
    c = _candidates(1)
    a = _campaign("a_email", "email", priority=1)
    b = _campaign("b_push", "push", priority=5)
    d = _run(c, [a, b], {"a_email": _scores([0.1]), "b_push": _scores([0.1])})
    assert _row(d, "b_push", 1)[0] == "send"
    same = _campaign("b_push", "push", priority=1)
    d = _run(c, [a, same], {"a_email": _scores([0.1]), "b_push": _scores([0.1])})
    assert _row(d, "a_email", 1)[0] == "send"


def test_customer_over_one_campaigns_cap_falls_to_the_next():
    c = _candidates(3)
    email = _campaign("c_email", "email", max_sends=1)
    push = _campaign("c_push", "push", max_sends=10)
    scores = {"c_email": _scores([0.3, 0.2, 0.1]), "c_push": _scores([0.01, 0.01, 0.01])}
    d = _run(c, [email, push], scores)
    assert _row(d, "c_email", 1) == ("send", "selected_top_uplift")
    assert _row(d, "c_email", 2) == ("excluded", "outside_send_cap")
    assert _row(d, "c_push", 2) == ("send", "selected_top_uplift")
    assert _row(d, "c_push", 1) == ("excluded", "won_by_other_campaign")


def test_budget_and_todays_sends_limit_the_audience():
    c = _candidates(100)
    campaign = _campaign(max_sends=1000, budget={"cost_per_send": 0.5, "max_total_cost": 10})
    d = _run(
        c, [campaign], {"c_email": _scores(np.linspace(0.2, 0.01, 100))}, sent_today={"c_email": 5}
    )
    assert (d.campaigns[0].decision == DECISIONS.index("send")).sum() == 20 - 5


def test_not_worth_sending_when_net_value_is_not_positive():
    c = _candidates(2)
    campaign = _campaign(budget={"cost_per_send": 1.0, "value_per_conversion": 10})
    d = _run(c, [campaign], {"c_email": _scores([0.2, 0.05])})  # 2.0-1 > 0 ; 0.5-1 < 0
    assert _row(d, "c_email", 1)[0] == "send"
    assert _row(d, "c_email", 2) == ("excluded", "not_worth_sending")


def test_quiet_hours_defer_to_the_next_local_window():
    c = _candidates(2, time_zone=["America/New_York", "Europe/London"])
    policy = NO_CONTROL + NO_CAPS + "quiet_hours: {sms: {start: '08:00', end: '21:00'}}\n"
    d = _run(c, [_campaign("c_sms", "sms")], {"c_sms": _scores([0.1, 0.1])}, policy)
    assert _row(d, "c_sms", 1) == ("deferred", "quiet_hours")
    assert _row(d, "c_sms", 2) == ("send", "selected_top_uplift")
    deferred_until = pd.Timestamp(d.campaigns[0].deferred_until[0]).tz_localize("UTC")
    assert deferred_until == pd.Timestamp("2026-11-23 08:00", tz="America/New_York").tz_convert(
        "UTC"
    )


def test_holdout_customers_are_not_sent_and_do_not_use_the_cap():
    c = _candidates(10_000)
    campaign = _campaign(max_sends=2_000, holdout_share=0.2)
    d = _run(c, [campaign], {"c_email": _scores(np.linspace(0.5, 0.01, 10_000))})
    decision = d.campaigns[0].decision
    sends = (decision == DECISIONS.index("send")).sum()
    holdouts = (decision == DECISIONS.index("holdout")).sum()
    assert sends == 2_000
    assert holdouts / (sends + holdouts) == pytest.approx(0.2, abs=0.02)


def test_decisions_frame_carries_versions_and_reasons():
    c = _candidates(3)
    d = _run(c, [_campaign()], {"c_email": _scores([0.1, 0.2, np.nan])})
    frame = d.to_frame("run-1", datetime(2026, 11, 23, tzinfo=UTC))
    assert len(frame) == 3
    assert set(frame.columns) >= {
        "decision",
        "reason",
        "model_version",
        "policy_version",
        "feature_timestamp",
    }
    assert frame["policy_version"].nunique() == 1 and len(frame["policy_version"].iloc[0]) == 12
    assert set(frame["reason"]) <= set(REASON_TEXT)


def test_inputs_must_be_sorted_and_scored():
    c = _candidates(3).iloc[::-1]
    with pytest.raises(ValueError, match="sorted"):
        _run(c, [_campaign()], {"c_email": _scores([0.1, 0.1, 0.1])})
    with pytest.raises(ValueError, match="no scores"):
        _run(_candidates(3), [_campaign()], {})
