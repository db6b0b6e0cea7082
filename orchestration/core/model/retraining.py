"""When to retrain the uplift model (plain Python; ``retraining_sensor`` is a thin shell over it).

Two triggers:

* the latest evaluation of the feature drift gate (``drift_share_below_threshold``) failed;
* the latest ``campaign_results`` materialization measured a lift below ``CAMPAIGN_MIN_LIFT``.

Each observation carries an id (the event's storage id); the cursor remembers the ids already
handled, so one failed evaluation or one low-lift result requests exactly one retrain.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Observation:
    """One event the sensor read: its storage id and what it says."""

    event_id: int
    failed: bool = False  # a check evaluation that did not pass
    lift: float | None = None  # campaign_results' latest_lift


@dataclass(frozen=True)
class RetrainDecision:
    retrain: bool
    reasons: tuple[str, ...]
    cursor: str  # the new cursor (JSON), whatever the decision
    run_key: str | None = None
    handled: dict[str, int] = field(default_factory=dict)


def parse_cursor(cursor: str | None) -> dict[str, int]:
    if not cursor:
        return {}
    try:
        raw = json.loads(cursor)
    except json.JSONDecodeError:
        return {}
    return {str(k): int(v) for k, v in raw.items()} if isinstance(raw, dict) else {}


def should_retrain(
    drift: Observation | None,
    results: Observation | None,
    min_lift: float,
    cursor: str | None = None,
) -> RetrainDecision:
    """Retrain when an event not seen before shows failed drift or a lift below ``min_lift``."""
    seen = parse_cursor(cursor)
    reasons: list[str] = []
    keys: list[str] = []
    if drift is not None and drift.event_id > seen.get("drift", -1):
        seen["drift"] = drift.event_id
        if drift.failed:
            reasons.append("the feature drift gate (drift_share_below_threshold) failed")
            keys.append(f"drift-{drift.event_id}")
    if results is not None and results.event_id > seen.get("results", -1):
        seen["results"] = results.event_id
        lift = results.lift
        if lift is not None and math.isfinite(lift) and lift < min_lift:
            reasons.append(f"measured lift {lift:.4f} is below CAMPAIGN_MIN_LIFT {min_lift:.4f}")
            keys.append(f"lift-{results.event_id}")
    return RetrainDecision(
        retrain=bool(reasons),
        reasons=tuple(reasons),
        cursor=json.dumps(seen, sort_keys=True),
        run_key="retrain:" + "+".join(keys) if keys else None,
        handled=dict(seen),
    )
