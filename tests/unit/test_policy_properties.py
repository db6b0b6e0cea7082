"""Property-based tests of the policy engine (hypothesis): over random customers, consents,
ledgers, policies and campaigns, no decision ever breaks a rule."""

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orchestration.core.common.hashing import in_share
from orchestration.core.decisioning.campaigns import Campaign
from orchestration.core.decisioning.engine import (
    DECISIONS,
    CampaignScores,
    ContactHistory,
    PolicyInputs,
    evaluate,
)
from orchestration.core.decisioning.policy import Policy, VersionedPolicy

CHANNELS = ("email", "sms", "push")
ZONES = ("America/New_York", "Europe/Berlin", "Asia/Singapore", "America/Los_Angeles", "UTC")
SEND, DEFERRED = DECISIONS.index("send"), DECISIONS.index("deferred")
SENT = (SEND, DEFERRED)


@st.composite
def worlds(draw):
    n = draw(st.integers(1, 150))
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    ids = np.sort(rng.choice(np.arange(1, 10 * n + 10), n, replace=False)).astype("int64")
    candidates = pd.DataFrame(
        {
            "customer_id": ids,
            "region": rng.choice(["eu-west", "us-east"], n),
            "time_zone": rng.choice(ZONES, n),
            "signed_up_at": pd.Timestamp("2025-01-01", tz="UTC")
            + pd.to_timedelta(rng.integers(0, 600, n), "D"),
        }
    )
    for channel in CHANNELS:
        candidates[f"is_{channel}_opted_in"] = rng.random(n) < draw(st.floats(0, 1))
        candidates[f"is_{channel}_suppressed"] = rng.random(n) < draw(st.floats(0, 0.5))
        candidates[f"is_{channel}_reachable"] = rng.random(n) < draw(st.floats(0.5, 1))
    decided_at = datetime(2026, 11, 23, tzinfo=UTC) + timedelta(
        minutes=draw(st.integers(0, 24 * 60 - 1))
    )
    m = draw(st.integers(0, 3 * n))
    history = pd.DataFrame(
        {
            "campaign": "earlier",
            "customer_id": rng.choice(ids, m) if m else np.array([], dtype="int64"),
            "channel": rng.choice(CHANNELS, m),
            "send_date": (
                pd.Timestamp(decided_at.date()) - pd.to_timedelta(rng.integers(0, 10, m), "D")
            ).strftime("%Y-%m-%d"),
        }
    )
    caps = draw(
        st.lists(
            st.fixed_dictionaries(
                {
                    "scope": st.sampled_from(["all", *CHANNELS]),
                    "max_messages": st.integers(0, 4),
                    "window_days": st.integers(1, 10),
                }
            ),
            max_size=3,
        )
    )
    quiet = {}
    for channel in draw(st.lists(st.sampled_from(CHANNELS), unique=True, max_size=3)):
        start = draw(st.integers(0, 22))
        end = draw(st.integers(start + 1, 23))
        quiet[channel] = {"start": f"{start:02d}:00", "end": f"{end:02d}:00"}
    policy = Policy.model_validate(
        {
            "global_control": {
                "share": draw(st.floats(0, 0.5)),
                "salt": draw(st.text("abc", min_size=1, max_size=5)),
            },
            "frequency_caps": caps,
            "quiet_hours": quiet,
            "max_messages_per_customer_per_day": draw(st.integers(1, 2)),
        }
    )
    campaigns = []
    for i in range(draw(st.integers(1, 3))):
        campaigns.append(
            Campaign(
                name=f"c{i}_{draw(st.sampled_from(['a', 'b']))}",
                channel=draw(st.sampled_from(CHANNELS)),
                max_sends=draw(st.integers(1, n + 5)),
                holdout_share=draw(st.floats(0, 0.5)),
                priority=draw(st.integers(0, 2)),
                budget={
                    "cost_per_send": draw(st.floats(0, 1)),
                    "value_per_conversion": draw(st.floats(0, 100)),
                    "max_total_cost": draw(st.one_of(st.none(), st.floats(1, 50))),
                },
                eligibility={"regions": draw(st.one_of(st.none(), st.just(["eu-west"])))},
            )
        )
    names = [c.name for c in campaigns]
    campaigns = [c for i, c in enumerate(campaigns) if c.name not in names[:i]]
    scores = {}
    for c in campaigns:
        uplift = rng.normal(0.02, 0.1, n)
        uplift[rng.random(n) < 0.1] = np.nan
        scores[c.name] = CampaignScores(
            uplift, np.full(n, "1", dtype=object), np.full(n, "champion", dtype=object)
        )
    sent_today = {c.name: draw(st.integers(0, 3)) for c in campaigns}
    inputs = PolicyInputs(candidates, scores, history, decided_at)
    return inputs, campaigns, VersionedPolicy(policy, "test", None), sent_today


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(worlds())
def test_no_decision_ever_breaks_a_rule(world):
    inputs, campaigns, versioned, sent_today = world
    policy = versioned.policy
    decisions = evaluate(inputs, campaigns, versioned, sent_today)
    c = inputs.candidates
    ids = c["customer_id"].to_numpy()
    n = len(ids)
    history = ContactHistory.prepare(inputs.contact_history, ids, inputs.decided_at)
    control = in_share(ids, policy.global_control.share, policy.global_control.salt)
    messaged_today = history.counts(n, 1, None)
    new_messages = np.zeros(n, dtype=int)
    for result in decisions.campaigns:
        campaign = result.campaign
        ch = campaign.channel
        sent = np.isin(result.decision, SENT)
        new_messages += sent
        assert not (sent & ~c[f"is_{ch}_opted_in"].to_numpy()).any(), (
            "sent to an opted-out customer"
        )
        assert not (sent & c[f"is_{ch}_suppressed"].to_numpy()).any(), (
            "sent to a suppressed customer"
        )
        assert not (sent & ~c[f"is_{ch}_reachable"].to_numpy()).any(), (
            "sent without a contact point"
        )
        assert not (sent & control).any(), "sent to the global control group"
        assert not (sent & np.isnan(inputs.scores[campaign.name].uplift)).any(), (
            "sent without a score"
        )
        for cap in policy.frequency_caps:
            if cap.scope in ("all", ch):
                used = history.counts(n, cap.window_days, None if cap.scope == "all" else cap.scope)
                assert not (sent & (used >= cap.max_messages)).any(), f"over the cap {cap}"
        allowed = max(campaign.send_cap - sent_today[campaign.name], 0)
        assert sent.sum() <= allowed, "over the campaign's send cap or budget"
        window = policy.quiet_hours.get(ch)
        for i in np.flatnonzero(sent):
            local = inputs.decided_at.astimezone(ZoneInfo(c["time_zone"].iloc[i]))
            if window is None:
                assert result.decision[i] == SEND
                continue
            start, end = time.fromisoformat(window.start), time.fromisoformat(window.end)
            if result.decision[i] == SEND:
                assert start <= local.time() < end, "sent inside quiet hours"
            else:
                until = pd.Timestamp(result.deferred_until[i]).tz_localize("UTC").to_pydatetime()
                assert until > inputs.decided_at
                assert until.astimezone(ZoneInfo(c["time_zone"].iloc[i])).time() == start
    assert (
        messaged_today + new_messages
        <= np.maximum(policy.max_messages_per_customer_per_day, messaged_today)
    ).all()
    assert (new_messages <= 1).all(), "one customer selected by two campaigns"


@settings(max_examples=40, deadline=None)
@given(worlds())
def test_the_same_input_gives_the_same_decisions(world):
    inputs, campaigns, versioned, sent_today = world
    first = evaluate(inputs, campaigns, versioned, sent_today)
    second = evaluate(inputs, campaigns, versioned, sent_today)
    for a, b in zip(first.campaigns, second.campaigns, strict=True):
        assert np.array_equal(a.decision, b.decision)
        assert np.array_equal(a.reason, b.reason)
        assert np.array_equal(a.deferred_until, b.deferred_until, equal_nan=True)


@pytest.mark.parametrize("share", [0.05, 0.1, 0.3])
def test_control_and_holdout_assignment_stable_and_within_one_point_on_100k(share):
    ids = np.arange(1, 100_001, dtype="int64")
    n = len(ids)
    candidates = pd.DataFrame(
        {
            "customer_id": ids,
            "region": "eu-west",
            "time_zone": "UTC",
            "signed_up_at": pd.Timestamp("2024-01-01", tz="UTC"),
        }
    )
    for channel in CHANNELS:
        candidates[f"is_{channel}_opted_in"] = True
        candidates[f"is_{channel}_suppressed"] = False
        candidates[f"is_{channel}_reachable"] = True
    campaign = Campaign(name="measure", channel="email", max_sends=n, holdout_share=share)
    scores = {
        "measure": CampaignScores(
            np.full(n, 0.1), np.full(n, "1", dtype=object), np.full(n, "c", dtype=object)
        )
    }
    policy = VersionedPolicy(
        Policy.model_validate(
            {
                "global_control": {"share": share, "salt": "g"},
                "frequency_caps": [],
                "quiet_hours": {},
            }
        ),
        "v",
        None,
    )
    inputs = PolicyInputs(
        candidates,
        scores,
        pd.DataFrame(columns=["campaign", "customer_id", "channel", "send_date"]),
        datetime(2026, 11, 23, 12, tzinfo=UTC),
    )
    first = evaluate(inputs, [campaign], policy).campaigns[0]
    second = evaluate(inputs, [campaign], policy).campaigns[0]
    assert np.array_equal(first.decision, second.decision)
    control = (first.decision == DECISIONS.index("control")).mean()
    holdout = (first.decision == DECISIONS.index("holdout")).sum() / (
        ~(first.decision == DECISIONS.index("control"))
    ).sum()
    assert control == pytest.approx(share, abs=0.01)
    assert holdout == pytest.approx(share, abs=0.01)
