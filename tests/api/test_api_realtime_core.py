"""The plain-Python core of the real-time path: candidates as of a time from raw data, the
released cut-offs, and per-customer decisions that reproduce the batch engine's."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from orchestration.core.decisioning.campaigns import Budget, Campaign
from orchestration.core.decisioning.decide import decide_campaigns
from orchestration.core.decisioning.policy import parse_policy
from orchestration.core.decisioning.realtime import (
    CustomerRecords,
    StandingRelease,
    decide_customers,
    send_cutoffs,
    standing_release,
)

T = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
POLICY = parse_policy(
    """
global_control: {share: 0.05, salt: global-control-v1}
frequency_caps: [{scope: all, max_messages: 3, window_days: 7}]
quiet_hours: {}
max_messages_per_customer_per_day: 1
""",
    None,
)


def _ts(hours: float) -> pd.Timestamp:
    return pd.Timestamp(T + timedelta(hours=hours))


def _raw(tmp_path, consent, suppressions, customers=None):
    raw = tmp_path / "raw"
    raw.mkdir()
    customers = customers if customers is not None else [1, 2, 3, 4]
    pd.DataFrame(
        {
            "customer_id": customers,
            "signed_up_at": [_ts(-1000)] * (len(customers) - 1) + [_ts(+1)],
            "region": "north",
            "time_zone": "UTC",
            "updated_at": _ts(-1),
        }
    ).to_parquet(raw / "customers.parquet")
    pd.DataFrame(
        consent,
        columns=["consent_event_id", "customer_id", "channel", "is_opted_in", "consented_at"],
    ).assign(source="x").to_parquet(raw / "consent_events.parquet")
    frame = pd.DataFrame(suppressions, columns=["customer_id", "channel", "suppressed_at"])
    frame["channel"] = frame["channel"].astype("string")
    frame["suppressed_at"] = pd.to_datetime(frame["suppressed_at"], utc=True)
    frame.insert(0, "suppression_id", range(1, len(frame) + 1))
    frame.assign(reason="complaint").to_parquet(raw / "suppressions.parquet")
    pd.DataFrame(
        {
            "customer_id": customers,
            "channel": "email",
            "address": "x@example.com",
            "is_verified": True,
            "updated_at": _ts(-1),
        }
    ).to_parquet(raw / "contact_points.parquet")
    return CustomerRecords.load(raw)


def test_consent_is_the_latest_event_at_or_before_the_time_as_dim_customers_reads_it(tmp_path):
    records = _raw(
        tmp_path,
        consent=[
            (1, 1, "email", True, _ts(-10)),
            (2, 1, "email", False, _ts(-5)),
            (3, 1, "email", True, _ts(+5)),  # after the decision time: not known yet
            (4, 2, "email", True, _ts(-3)),
            (6, 2, "email", False, _ts(-3)),  # same stamp: the later event id wins
            (5, 3, "sms", True, _ts(-3)),
            (7, 3, "Email ", True, _ts(-3)),  # not a channel dim_customers knows
            (8, 4, "email", True, _ts(-3)),
        ],
        suppressions=[],
    )
    frame = records.candidates(np.array([3, 1, 2, 1]), T)
    assert frame["customer_id"].tolist() == [1, 2, 3]  # sorted, unique, 4 signs up later
    assert frame["is_email_opted_in"].tolist() == [False, False, False]
    assert frame["is_sms_opted_in"].tolist() == [False, False, True]
    later = records.candidates(np.array([1]), T + timedelta(hours=6))
    assert later["is_email_opted_in"].tolist() == [True]
    assert records.known(np.array([1, 4, 99]), T).tolist() == [True, False, False]
    assert records.known(np.array([4]), T + timedelta(hours=2)).tolist() == [True]


def test_a_suppression_without_channel_holds_on_every_channel_from_its_time(tmp_path):
    records = _raw(
        tmp_path,
        consent=[(1, c, "email", True, _ts(-10)) for c in (1, 2, 3)],
        suppressions=[(1, None, _ts(-1)), (2, "sms", _ts(-1)), (3, "email", _ts(+1))],
    )
    frame = records.candidates(np.array([1, 2, 3]), T).set_index("customer_id")
    assert frame["is_email_suppressed"].to_dict() == {1: True, 2: False, 3: False}
    assert frame["is_sms_suppressed"].to_dict() == {1: True, 2: True, 3: False}
    assert frame["is_push_suppressed"].to_dict() == {1: True, 2: False, 3: False}
    assert frame["is_email_reachable"].all() and not frame["is_sms_reachable"].any()


def test_the_standing_release_is_the_newest_one_not_revoked():
    releases = pd.DataFrame(
        {
            "run_id": ["a", "b", "c"],
            "status": ["released", "released", "revoked"],
            "released_at": ["2026-03-01", "2026-03-02", "2026-03-03"],
            "send_date": ["2026-03-01", "2026-03-02", "2026-03-03"],
            "model_versions": ["1", "2, 3", "4"],
            "policy_version": "p",
            "feature_version": "f",
            "campaign_files": '{"x.yaml": "h"}',
        }
    )
    release = standing_release(releases)
    assert release == StandingRelease(
        "b", "2026-03-02", "2026-03-02", frozenset({"2", "3"}), "p", "f", {"x.yaml": "h"}
    )
    assert standing_release(releases.assign(status="revoked")) is None
    assert standing_release(releases.iloc[0:0]) is None


def test_the_cutoff_is_the_lowest_accepted_value_when_the_cap_bound():
    decisions = pd.DataFrame(
        {
            "campaign": ["a", "a", "a", "a", "b", "b", "c"],
            "reason": ["selected_top_uplift", "campaign_holdout", "outside_send_cap", "suppressed"]
            + ["selected_top_uplift", "not_worth_sending", "outside_send_cap"],
            "value_rank": [1, 2, np.nan, np.nan, 1, np.nan, np.nan],
            "expected_net_value": [3.0, 2.5, 2.0, 9.0, 1.0, -1.0, 5.0],
            "dry_run": False,
        }
    )
    assert send_cutoffs(decisions) == {"a": 2.5, "b": None, "c": float("inf")}


# --- per-customer decisions against the batch engine ---------------------------------------------


def _campaign(name: str, max_sends: int, value: float, priority: int = 0) -> Campaign:
    return Campaign(
        name=name,
        channel="email",
        max_sends=max_sends,
        holdout_share=0.1,
        priority=priority,
        budget=Budget(cost_per_send=0.01, value_per_conversion=value),
    )


def _audience(n: int, seed: int = 3):
    rng = np.random.default_rng(seed)
    ids = np.arange(1, n + 1)
    candidates = pd.DataFrame(
        {
            "customer_id": ids,
            "region": "north",
            "time_zone": "UTC",
            "signed_up_at": pd.Timestamp(T - timedelta(days=400)),
            "is_email_opted_in": rng.random(n) > 0.1,
            "is_email_suppressed": rng.random(n) < 0.05,
            "is_email_reachable": rng.random(n) > 0.05,
        }
    )
    for channel in ("sms", "push"):
        for flag in ("opted_in", "suppressed", "reachable"):
            candidates[f"is_{channel}_{flag}"] = False
    scores = pd.DataFrame(
        {
            "customer_id": ids,
            "uplift__uplift_model@champion": rng.normal(0.02, 0.03, n),
            "version__uplift_model@champion": "7",
        }
    )
    history = pd.DataFrame(
        {
            "campaign": "old",
            "customer_id": rng.choice(ids, 200),
            "channel": "email",
            "send_date": (T - timedelta(days=1)).date().isoformat(),
        }
    )
    return candidates, scores, history


COMPARED = ["decision", "reason", "predicted_uplift", "expected_net_value", "model_version"]


def _compare(batch: pd.DataFrame, online: pd.DataFrame) -> pd.DataFrame:
    both = batch.merge(online, on=["campaign", "customer_id"], suffixes=("_b", "_o"))
    assert len(both) == len(batch) == len(online)
    differs = np.zeros(len(both), dtype=bool)
    for column in COMPARED:
        a, b = both[f"{column}_b"], both[f"{column}_o"]
        differs |= ~((a == b) | (a.isna() & b.isna()))
    return both[differs]


@pytest.mark.parametrize(
    "campaigns",
    [
        [_campaign("camp_a", 100_000, 40.0)],  # the cap does not bind
        [_campaign("camp_a", 300, 40.0)],  # it binds: the released cut-off ranks each customer
        [
            _campaign("camp_a", 300, 40.0),
            _campaign("camp_b", 100_000, 30.0, priority=5),
        ],  # falls to b
    ],
    ids=["no cap", "cap binds", "cap binds, next campaign"],
)
def test_customers_decided_one_at_a_time_get_the_batch_decision(campaigns):
    versioned = POLICY
    candidates, scores, history = _audience(3000)
    batch = decide_campaigns(
        candidates, scores, campaigns, versioned, history, {}, T, "run", None
    ).decisions
    cutoffs = send_cutoffs(batch)
    assert (cutoffs["camp_a"] is None) == (campaigns[0].max_sends > 10_000)
    together = decide_customers(
        candidates, scores, campaigns, versioned, history, {}, T, cutoffs
    ).frame()
    assert _compare(batch, together).empty
    # one customer at a time, the way a request is decided
    sample = candidates.sample(150, random_state=1).sort_values("customer_id")
    alone = pd.concat(
        [
            decide_customers(
                candidates[candidates["customer_id"] == c],
                scores[scores["customer_id"] == c],
                campaigns,
                versioned,
                history[history["customer_id"] == c],
                {},
                T,
                cutoffs,
            ).frame()
            for c in sample["customer_id"]
        ],
        ignore_index=True,
    )
    assert _compare(batch[batch["customer_id"].isin(sample["customer_id"])], alone).empty
    assert alone["value_rank"].isna().all()  # no ranking against unseen customers


def test_a_campaign_whose_cap_is_used_up_today_sends_to_nobody():
    candidates, scores, history = _audience(200)
    campaign = _campaign("camp_a", 50, 40.0)
    out = decide_customers(
        candidates, scores, [campaign], POLICY, history, {"camp_a": 50}, T, {"camp_a": None}
    ).frame()
    assert not out["decision"].isin(["send", "deferred", "holdout"]).any()
    assert (out["reason"] == "outside_send_cap").sum() > 0
    room = decide_customers(
        candidates, scores, [campaign], POLICY, history, {"camp_a": 49}, T, {"camp_a": None}
    ).frame()
    assert (room["decision"] == "send").sum() > 1  # no cut-off: room for each customer alone


def test_the_api_rows_are_the_batch_schema_exactly():
    from orchestration.core.decisioning.decide import campaign_scores
    from orchestration.core.decisioning.engine import PolicyInputs, evaluate
    from orchestration.core.decisioning.realtime.customer_decisions import (
        DecisionColumns,
        _columns,
    )

    candidates, scores, history = _audience(500)
    frame = candidates.merge(scores, on="customer_id")
    campaign = _campaign("camp_a", 100, 40.0)
    inputs = PolicyInputs(frame, {"camp_a": campaign_scores(frame, campaign, 0.0)}, history, T)
    result = evaluate(inputs, [campaign], POLICY, {})
    api = DecisionColumns.concat(
        [_columns(result, False)], result.policy_version, result.decided_at
    ).frame()
    pd.testing.assert_frame_equal(api, result.to_frame("api", None, trace_id=None))


def test_a_requests_rows_are_the_frames_rows_as_python_values():
    """What an answer reads (``DecisionColumns.records``, no frame built) is the batch-schema
    frame's ``to_dict("records")``: the same keys, types and values, NaN and NaT included."""
    candidates, scores, history = _audience(300)
    campaign = _campaign("camp_a", 100, 40.0)
    decided = decide_customers(
        candidates, scores, [campaign], POLICY, history, {"camp_a": 10}, T, {"camp_a": None}
    )
    expected = decided.frame().to_dict("records")
    records = decided.records()
    assert len(records) == len(expected) == 300
    assert {r["decision"] for r in records} >= {"send", "excluded"}
    for got, want in zip(records, expected, strict=True):
        assert list(got) == list(want) or set(got) == set(want)
        for key, value in want.items():
            if pd.isna(value):
                assert pd.isna(got[key]), key
            else:
                assert got[key] == value and type(got[key]) is type(value), key
