"""A customer twice in the candidates or in the scores stops the batch before any decision: it
would be decided, and sent to, twice (decide_campaigns checks the key itself, not through
pandas' merge validation)."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest

from orchestration.core.decisioning.campaigns import Campaign
from orchestration.core.decisioning.decide import decide_campaigns
from orchestration.core.decisioning.policy import parse_policy
from orchestration.core.decisioning.scoring import score_column, version_column
from tests.support.policy_candidates import open_candidates

DECIDED_AT = datetime(2026, 11, 23, 9, 30, tzinfo=UTC)
POLICY = "global_control: {share: 0.0}\nfrequency_caps: []\nquiet_hours: {}\n"
REF = "uplift_model@champion"


def _scores(ids: list[int]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "customer_id": np.asarray(ids, dtype="int64"),
            score_column(REF): 0.1,
            version_column(REF): "3",
        }
    )


def _decide(candidates: pd.DataFrame, scores: pd.DataFrame):
    campaign = Campaign(
        name="spring",
        channel="email",
        max_sends=100,
        holdout_share=0.0,
        budget={"cost_per_send": 0.01, "value_per_conversion": 10.0},
    )
    history = pd.DataFrame(columns=["campaign", "customer_id", "channel", "send_date"])
    return decide_campaigns(
        candidates, scores, [campaign], parse_policy(POLICY), history, {}, DECIDED_AT, "r", None
    )


def test_distinct_customers_are_decided_once_each_in_customer_order():
    run = _decide(open_candidates([3, 1, 2]), _scores([2, 3, 1]))
    assert run.decisions["customer_id"].tolist() == [1, 2, 3]
    assert (run.decisions["decision"] == "send").all()


@pytest.mark.parametrize(
    ("candidates", "scores", "side"),
    [([1, 2, 2, 3], [1, 2, 3], "candidates"), ([1, 2, 3], [1, 3, 3, 2], "scores")],
)
def test_a_customer_twice_stops_the_batch_and_names_the_customer(candidates, scores, side):
    twice = 2 if side == "candidates" else 3
    with pytest.raises(
        ValueError, match=rf"^{side}: customer_id is not unique \(for example \[{twice}\]\)"
    ):
        _decide(open_candidates(candidates), _scores(scores))
