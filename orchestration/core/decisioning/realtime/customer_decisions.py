"""Each customer decided on their own by the batch's policy engine (room for everyone, then the
released cut-offs: see the package doc)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from orchestration.core.decisioning.campaigns import Campaign
from orchestration.core.decisioning.decide import (
    VariantScoreError,
    campaign_scores,
)
from orchestration.core.decisioning.engine import (
    DECISIONS,
    EXCLUDED,
    REASONS,
    CampaignScores,
    PolicyDecisions,
    PolicyInputs,
    R,
    evaluate,
    net_value,
    variant_columns,
)
from orchestration.core.decisioning.policy import VersionedPolicy
from orchestration.core.decisioning.realtime.reasons import API_RUN_ID
from orchestration.core.decisioning.variants import VariantChoice


def decide_customers(
    candidates: pd.DataFrame,
    scores: pd.DataFrame,
    campaigns: Sequence[Campaign],
    policy: VersionedPolicy,
    contact_history: pd.DataFrame,
    sent_today: Mapping[str, int],
    decided_at: datetime,
    cutoffs: Mapping[str, float | None],
    canary_shares: Mapping[str, float] | None = None,
) -> DecisionColumns:
    """Decisions in the batch schema (``decide.decide_campaigns``) for every (enabled campaign,
    candidate), each customer decided on their own (see the module doc: room for everyone, then
    the released cut-offs). Live campaigns compete; a dry-run campaign competes with them and only
    its own rows are kept. Campaigns without a score column are left out. As columns: a request
    reads its few rows with ``records()`` (a frame of the batch schema costs about a millisecond
    for one row); ``frame()`` gives the frame."""
    shares = canary_shares or {}
    ids = candidates["customer_id"].to_numpy(dtype=np.int64)
    if np.array_equal(ids, scores["customer_id"].to_numpy(dtype=np.int64)) and (
        len(ids) < 2 or (np.diff(ids) > 0).all()
    ):  # the same sorted customers (the service's case): no merge, one constructor
        base = candidates.reset_index(drop=True)
        frame = pd.DataFrame(
            {
                **dict(base.items()),
                **{c: scores[c].to_numpy() for c in scores.columns if c != "customer_id"},
            }
        )
    else:
        frame = candidates.merge(scores, on="customer_id", how="left", validate="one_to_one")
        frame = frame.sort_values("customer_id", kind="stable").reset_index(drop=True)
    per: dict[str, CampaignScores] = {}
    for campaign in campaigns:
        if campaign.enabled:
            try:
                s = campaign_scores(frame, campaign, shares.get(campaign.name, 0.0))
            except VariantScoreError:  # the batch reports it; here it is left out like a
                continue  # campaign whose model is not loaded
            if s is not None:
                per[campaign.name] = s
    live = [c for c in campaigns if c.name in per and not c.dry_run]
    dry = [c for c in campaigns if c.name in per and c.dry_run]
    args = (frame, per, policy, contact_history, sent_today, decided_at, cutoffs)
    parts = []
    if live:
        parts.append(_decide_independently(*args, live, {c.name for c in live}, False))
    for campaign in dry:
        parts.append(_decide_independently(*args, [*live, campaign], {campaign.name}, True))
    return DecisionColumns.concat(parts, policy.version, decided_at)


def _decide_independently(
    frame: pd.DataFrame,
    per: Mapping[str, CampaignScores],
    policy: VersionedPolicy,
    history: pd.DataFrame,
    sent_today: Mapping[str, int],
    decided_at: datetime,
    cutoffs: Mapping[str, float | None],
    selected: list[Campaign],
    keep: set[str],
    dry_run: bool,
) -> dict[str, np.ndarray]:
    n = len(frame)
    limit: dict[str, float] = {}
    for c in selected:
        cutoff = cutoffs.get(c.name)
        full = c.send_cap - sent_today.get(c.name, 0) <= 0
        limit[c.name] = math.inf if full else (-math.inf if cutoff is None else float(cutoff))
    # each campaign's remaining room is exactly n (the engine's remaining = cap - sent today):
    # nobody competes with another customer for a place
    room = {c.name: c.send_cap - n for c in selected}
    cut = {c.name: np.zeros(n, dtype=bool) for c in selected}
    uncut: dict[str, Any] = {}  # the first (nobody cut) evaluation's variant choices
    for _ in range(len(selected) + 1):
        scores = {
            name: replace(s, uplift=np.where(cut[name], np.nan, s.uplift))
            for name, s in per.items()
        }
        result = evaluate(PolicyInputs(frame, scores, history, decided_at), selected, policy, room)
        if not uncut:
            uncut = {c.campaign.name: c.choice for c in result.campaigns}
        moved = False
        for c in result.campaigns:
            with np.errstate(invalid="ignore"):
                below = ~np.isnan(c.rank) & (c.net_value < limit[c.campaign.name])
            if below.any():
                cut[c.campaign.name] |= below
                moved = True
        if not moved:
            break
    result.campaigns = [c for c in result.campaigns if c.campaign.name in keep]
    result.scores = {name: per[name] for name in keep}
    for c in result.campaigns:
        below = cut[c.campaign.name]
        c.decision[below] = EXCLUDED
        c.reason[below] = R["outside_send_cap"]
        first = uncut.get(c.campaign.name)
        if first is None:
            c.net_value[below] = net_value(c.campaign, per[c.campaign.name].uplift)[below]
        else:  # the variant it would have had, and its value, as if nobody was cut
            c.choice = _restore(c.choice, first, below)
            c.net_value[below] = first.value[below]
        c.deferred_until[below] = np.datetime64("NaT")
        c.rank[:] = np.nan
    return _columns(result, dry_run)


def _restore(choice: VariantChoice, first: VariantChoice, rows: np.ndarray) -> VariantChoice:
    """``choice`` with ``rows`` taken from ``first``."""
    fields = {}
    for name in ("name", "template", "channel", "uplift", "value", "runner_up_value"):
        values = getattr(choice, name).copy()
        values[rows] = getattr(first, name)[rows]
        fields[name] = values
    return VariantChoice(**fields)


_DECISION_NAMES = np.array(DECISIONS, dtype=object)
_REASON_NAMES = np.array(REASONS, dtype=object)


def _columns(result: PolicyDecisions, dry_run: bool) -> dict[str, np.ndarray]:
    """The per-row columns of ``PolicyDecisions.to_frame`` (the batch schema), every campaign's
    rows one after the other (empty: no campaign)."""
    parts = []
    n = len(result.customer_ids)
    for c in result.campaigns:
        s = result.scores[c.campaign.name]
        parts.append(
            {
                "campaign": np.full(n, c.campaign.name, dtype=object),
                "channel": c.channels(),
                "customer_id": result.customer_ids,
                "decision": _DECISION_NAMES[c.decision],
                "reason": _REASON_NAMES[c.reason],
                "predicted_uplift": s.uplift if c.choice is None else c.choice.uplift,
                "expected_net_value": c.net_value,
                "value_rank": c.rank,
                "model_version": s.model_version,
                "scored_by": s.scored_by,
                "deferred_until": c.deferred_until,
                "dry_run": np.full(n, dry_run or c.campaign.dry_run),
                **variant_columns(c, n),
            }
        )
    if not parts:
        return {}
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


@dataclass(frozen=True)
class DecisionColumns:
    """Decisions in the batch schema as columns (numpy arrays of equal length): :meth:`frame`
    is ``PolicyDecisions.to_frame`` exactly, :meth:`records` its rows as Python values."""

    columns: dict[str, np.ndarray]
    policy_version: str
    decided_at: datetime

    @classmethod
    def concat(
        cls, parts: Sequence[dict[str, np.ndarray]], policy_version: str, decided_at: datetime
    ) -> DecisionColumns:
        parts = [p for p in parts if p]
        columns = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]} if parts else {}
        return cls(columns, policy_version, decided_at)

    def __len__(self) -> int:
        return len(self.columns["customer_id"]) if self.columns else 0

    def frame(self) -> pd.DataFrame:
        if not self.columns:
            return pd.DataFrame()
        c, total = self.columns, len(self)
        return pd.DataFrame(
            {
                "run_id": np.full(total, API_RUN_ID, dtype=object),
                # each request's trace id is set by the service
                "trace_id": np.full(total, None, dtype=object),
                **{k: c[k] for k in ("campaign", "channel", "customer_id", "decision", "reason")},
                **{k: c[k] for k in ("predicted_uplift", "expected_net_value", "value_rank")},
                "model_version": c["model_version"],
                "scored_by": c["scored_by"],
                "policy_version": np.full(total, self.policy_version, dtype=object),
                "feature_timestamp": pd.NaT,
                "decided_at": pd.Timestamp(self.decided_at),
                "deferred_until": pd.DatetimeIndex(c["deferred_until"], tz="UTC"),
                "dry_run": c["dry_run"],
                **{k: c[k] for k in ("variant", "template", "runner_up_value")},
            }
        )

    def records(self) -> list[dict[str, Any]]:
        """``frame().to_dict("records")`` values (floats, Timestamps, NaT), without the frame."""
        if not self.columns:
            return []
        total = len(self)
        values = {k: v.tolist() for k, v in self.columns.items() if k != "deferred_until"}
        values["deferred_until"] = pd.DatetimeIndex(
            self.columns["deferred_until"], tz="UTC"
        ).tolist()
        values["run_id"] = [API_RUN_ID] * total
        values["trace_id"] = [None] * total
        values["policy_version"] = [self.policy_version] * total
        values["feature_timestamp"] = [pd.NaT] * total
        values["decided_at"] = [pd.Timestamp(self.decided_at)] * total
        names = list(values)
        return [dict(zip(names, row, strict=True)) for row in zip(*values.values(), strict=True)]
