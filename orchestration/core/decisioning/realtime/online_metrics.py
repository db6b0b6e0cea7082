"""The decision API's seed metrics, from its decisions store (``decided_via = "api"`` rows).

Recorded with every run's seed metrics (``run_summary.seed_metrics``) over the API's decisions of
the ``ONLINE_WINDOW_HOURS`` up to the run's end (absent when the API decided nothing then):

* ``online_latency_p50_ms`` / ``online_latency_p99_ms``: the server's time per decision, request
  received to answer built (the stored answer's ``latency_ms.total``);
* ``online_inference_success_rate``: of the decisions that needed a score (not cut short by the
  state: not released, campaign disabled, an event-only campaign, an unknown customer, stale
  features, a trigger that did not hold), the share that got one; the others answered the safe
  default ``unavailable`` (the service could not load or run a part of its state);
* ``online_feature_availability``: of the decisions whose customer's features were read (known
  customers; not ``unavailable``), the share whose features were all there and no older than
  the freshness window at the decision time;
* ``online_decisions`` and ``online_unavailable``: how many decisions, how many failed.

Requests that failed after the service's answer (``failed_requests``: the API answered
``unavailable`` but nothing was recorded) count as decisions that needed a score and did not
get one, in every figure above but the latency.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import orjson
import pandas as pd

from orchestration.core.decisioning.realtime.decision_store import ApiDecisionStore
from orchestration.core.decisioning.realtime.failed_requests import failures_between, failures_path
from orchestration.core.decisioning.realtime.reasons import (
    CAMPAIGN_DISABLED,
    EVENT_TRIGGERED,
    NOT_RELEASED,
    STALE_FEATURES,
    TRIGGER_NOT_MET,
    UNAVAILABLE,
    UNKNOWN_CUSTOMER,
)
from orchestration.core.decisioning.realtime.timestamps import utc

ONLINE_WINDOW_HOURS = 24.0
# Answered before any score was needed: these decisions say nothing about inference.
_NOT_SCORED = {
    NOT_RELEASED,
    CAMPAIGN_DISABLED,
    EVENT_TRIGGERED,
    UNKNOWN_CUSTOMER,
    STALE_FEATURES,
    TRIGGER_NOT_MET,
}


def _decisions(path: Path, since: datetime, until: datetime) -> pd.DataFrame:
    if not Path(path).exists():
        return pd.DataFrame()
    store = ApiDecisionStore(path)
    try:
        frame = store.frame()
    finally:
        store.close()
    if frame.empty:
        return frame
    at = frame["decided_at"]
    return frame[(at > utc(since)) & (at <= utc(until))]


def online_seed_metrics(
    path: Path,
    until: datetime,
    freshness_hours: float,
    window_hours: float = ONLINE_WINDOW_HOURS,
) -> dict[str, float]:
    """The API's seed metrics over ``(until - window_hours, until]`` (see the module doc)."""
    since = until - timedelta(hours=window_hours)
    rows = _decisions(path, since, until)
    failed = len(failures_between(failures_path(path), since, until))
    if rows.empty and not failed:
        return {}
    if rows.empty:
        return {
            "online_decisions": float(failed),
            "online_unavailable": float(failed),
            "online_inference_success_rate": 0.0,
        }
    latency = [
        float(orjson.loads(a).get("latency_ms", {}).get("total", np.nan)) for a in rows["answer"]
    ]
    latency = np.array(latency, dtype=float)
    latency = latency[~np.isnan(latency)]
    reason = rows["reason"]
    metrics: dict[str, float] = {
        "online_decisions": float(len(rows) + failed),
        "online_unavailable": float((reason == UNAVAILABLE).sum() + failed),
    }
    if len(latency):
        metrics["online_latency_p50_ms"] = round(float(np.percentile(latency, 50)), 3)
        metrics["online_latency_p99_ms"] = round(float(np.percentile(latency, 99)), 3)
    needed = ~reason.isin(_NOT_SCORED)
    if needed.any() or failed:
        scored = rows["predicted_uplift"].notna() & needed
        metrics["online_inference_success_rate"] = float(scored.sum() / (needed.sum() + failed))
    read = ~reason.isin({UNKNOWN_CUSTOMER, UNAVAILABLE})
    if read.any():
        age = (rows["decided_at"] - rows["feature_timestamp"]).dt.total_seconds() / 3600
        fresh = rows["feature_timestamp"].notna() & (age <= freshness_hours)
        metrics["online_feature_availability"] = float((fresh & read).sum() / read.sum())
    return metrics
