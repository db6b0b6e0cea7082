"""Audience selection: a decision with a reason code for every candidate of a campaign.

Vectorised over the candidate frame (no Python loop per customer). The order of the rules is the
order of the reasons: a customer who is both opted out and suppressed is reported as opted out.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd

from orchestration.core.campaigns import Campaign
from orchestration.core.hashing import in_share

# Decisions
SEND = "send"
HOLDOUT = "holdout"
EXCLUDED = "excluded"

# Reason codes (stable strings: reports and the "why" command read them)
REASON_SELECTED = "selected_top_uplift"
REASON_HOLDOUT = "campaign_holdout"
REASON_NO_CONSENT = "no_consent_on_channel"
REASON_SUPPRESSED = "suppressed"
REASON_UNREACHABLE = "no_verified_contact_point"
REASON_NOT_ELIGIBLE = "not_eligible"
REASON_MISSING_FEATURES = "missing_features"
REASON_ALREADY_SENT = "already_sent_today"
REASON_LOW_UPLIFT = "uplift_below_minimum"
REASON_OVER_CAP = "outside_send_cap"

DECISION_COLUMNS = [
    "run_id",
    "campaign",
    "channel",
    "customer_id",
    "decision",
    "reason",
    "predicted_uplift",
    "uplift_rank",
    "model_version",
    "feature_timestamp",
    "decided_at",
]


@dataclass(frozen=True)
class DecisionContext:
    run_id: str
    decided_at: datetime
    model_version: str


def holdout_salt(campaign: Campaign) -> str:
    return f"holdout:{campaign.name}"


def decide(
    candidates: pd.DataFrame,
    scores: pd.DataFrame,
    campaign: Campaign,
    context: DecisionContext,
    already_sent_today: set[int] | frozenset[int] = frozenset(),
) -> pd.DataFrame:
    """One row per candidate with its decision and reason.

    ``candidates``: dim_customers (customer_id, region, signed_up_at, is_<channel>_opted_in,
    is_<channel>_suppressed) plus the gateway's ``is_<channel>_reachable``. ``scores``: customer_id, predicted_uplift, feature_timestamp.
    """
    channel = campaign.channel
    frame = candidates.merge(scores, on="customer_id", how="left", validate="one_to_one")
    n = len(frame)
    reason = np.full(n, "", dtype=object)

    def mark(mask: np.ndarray, code: str) -> None:
        reason[(reason == "") & mask] = code

    mark(~frame[f"is_{channel}_opted_in"].fillna(False).astype(bool).to_numpy(), REASON_NO_CONSENT)
    mark(frame[f"is_{channel}_suppressed"].fillna(False).astype(bool).to_numpy(), REASON_SUPPRESSED)
    mark(
        ~frame[f"is_{channel}_reachable"].fillna(False).astype(bool).to_numpy(), REASON_UNREACHABLE
    )
    mark(~_eligible(frame, campaign, context.decided_at), REASON_NOT_ELIGIBLE)
    mark(frame["predicted_uplift"].isna().to_numpy(), REASON_MISSING_FEATURES)
    mark(frame["customer_id"].isin(list(already_sent_today)).to_numpy(), REASON_ALREADY_SENT)
    mark((frame["predicted_uplift"] <= campaign.min_predicted_uplift).to_numpy(), REASON_LOW_UPLIFT)

    # Rank the remaining candidates by predicted uplift (ties by id, so the result is stable).
    open_ = reason == ""
    ranked = frame.loc[open_, ["customer_id", "predicted_uplift"]].sort_values(
        ["predicted_uplift", "customer_id"], ascending=[False, True], kind="mergesort"
    )
    is_holdout = in_share(
        ranked["customer_id"].to_numpy(), campaign.holdout_share, holdout_salt(campaign)
    )
    remaining = max(campaign.send_cap - len(already_sent_today), 0)
    send_positions = np.flatnonzero(~is_holdout)
    if remaining == 0:
        cutoff = -1
    elif len(send_positions) > remaining:
        cutoff = int(send_positions[remaining - 1])  # holdouts ranked after the last send are out
    else:
        cutoff = len(ranked) - 1
    within = np.arange(len(ranked)) <= cutoff
    reason[ranked.index.to_numpy()] = np.where(
        within, np.where(is_holdout, REASON_HOLDOUT, REASON_SELECTED), REASON_OVER_CAP
    )

    rank = pd.Series(np.nan, index=frame.index)
    rank.loc[ranked.index] = np.arange(1, len(ranked) + 1)
    decision = np.where(
        reason == REASON_SELECTED, SEND, np.where(reason == REASON_HOLDOUT, HOLDOUT, EXCLUDED)
    )
    return pd.DataFrame(
        {
            "run_id": context.run_id,
            "campaign": campaign.name,
            "channel": channel,
            "customer_id": frame["customer_id"].astype("int64").to_numpy(),
            "decision": decision,
            "reason": reason,
            "predicted_uplift": frame["predicted_uplift"].to_numpy(),
            "uplift_rank": rank.to_numpy(),
            "model_version": context.model_version,
            "feature_timestamp": frame.get("feature_timestamp"),
            "decided_at": pd.Timestamp(context.decided_at),
        }
    )[DECISION_COLUMNS]


def _eligible(frame: pd.DataFrame, campaign: Campaign, decided_at: datetime) -> np.ndarray:
    ok = np.ones(len(frame), dtype=bool)
    rules = campaign.eligibility
    if rules.regions is not None:
        ok &= frame["region"].isin(rules.regions).to_numpy()
    if rules.min_tenure_days is not None:
        signed_up = pd.to_datetime(frame["signed_up_at"], utc=True)
        tenure = (pd.Timestamp(decided_at) - signed_up).dt.days
        ok &= (tenure >= rules.min_tenure_days).to_numpy()
    return ok


def summarize(decisions: pd.DataFrame) -> dict[str, int]:
    """Counts per decision and per reason, for metadata and the run summary."""
    out = {f"decision_{k}": int(v) for k, v in decisions["decision"].value_counts().items()}
    out.update({f"reason_{k}": int(v) for k, v in decisions["reason"].value_counts().items()})
    out["candidates"] = len(decisions)
    return out
