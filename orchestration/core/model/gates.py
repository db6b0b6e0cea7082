"""The champion gate: does the model that scores the campaigns rank better than random?

Plain Python (never dagster): the ``champion_beats_random`` asset check calls
:func:`champion_gate` on the metrics MLflow stored with the champion's training run, and the
tests call the same function on freshly evaluated models.

Rule: ``qini_ci_low > floor``. The point estimate is not evidence on its own: a model whose
features carry no signal can reach a positive Qini on its holdout by chance (a real campaign:
Qini 0.0438, 95 % interval [-0.0087, 0.0937]). The gate passes only when the *lower* bound of
the Qini's 95 % bootstrap interval (stratified by arm, on the held-out customers;
``metrics.evaluate_uplift``) is above the floor. A champion without a stored interval fails.

Multi-arm models (``core.model.arms``): the rule applies to **each treatment arm on its own**
(``arm__<arm>__qini_ci_low > floor``: the arm's ranking against control beats random). An arm
that passes is *offered*; one that does not is *not offered*: scoring writes NaN for its uplift
(:func:`usable_arms`, batch and decision API alike), so no variant decision picks it and the
best-arm uplift of a campaign without variants leaves it out. The gate passes when at least one
arm is offered and blocks when none is (the features then carry no usable signal for any
message). Why not block on one weak arm: Hillstrom's Mens E-Mail lifts visits by 7.7 points on
average but almost evenly (its Qini interval straddles 0 even with every feature), so its
predictions would pick it for customers by noise; dropping it keeps the arm that ranks
(Womens E-Mail) in use. The best-arm policy's own figures (the unprefixed keys) are reported,
not gated: when every customer gains from one arm or another the policy's Qini is near 0 although
it sends well (a Qini measures ranking, not effect).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, NamedTuple

RULE = "qini_ci_low > floor"
MULTI_ARM_RULE = (
    "an arm is offered when arm__<arm>__qini_ci_low > floor; the gate passes when one arm is"
)
CI_LEVEL = 0.95  # train_and_evaluate's intervals: evaluate_uplift's default alpha 0.05


class GateDecision(NamedTuple):
    passed: bool
    description: str
    evidence: dict[str, Any]


def _figure(metrics: Mapping[str, float], key: str) -> float:
    value = metrics.get(key)
    try:
        return float(value) if value is not None else math.nan
    except (TypeError, ValueError):
        return math.nan


def _count(value: float) -> int | None:
    return int(value) if math.isfinite(value) else None


def champion_gate(
    metrics: Mapping[str, float], floor: float = 0.0, version: str | None = None
) -> GateDecision:
    """Pass when the lower bound of the champion's Qini 95 % interval is above ``floor``.

    ``metrics`` are the flat metrics of the model's evaluation (``train_and_evaluate``'s, as
    logged to the MLflow run): ``qini``, ``qini_ci_low``, ``qini_ci_high``, ``holdout_rows`` and
    ``bootstrap_resamples``. The evidence holds the rule, the floor, the interval, the point
    estimate and the sample (holdout rows, bootstrap resamples), whatever the outcome.
    """
    floor = float(floor)
    qini = _figure(metrics, "qini")
    low, high = _figure(metrics, "qini_ci_low"), _figure(metrics, "qini_ci_high")
    rows = _count(_figure(metrics, "holdout_rows"))
    resamples = _count(_figure(metrics, "bootstrap_resamples"))
    who = f"champion v{version}" if version is not None else "champion"
    evidence: dict[str, Any] = {
        "rule": RULE,
        "floor": floor,
        "qini": qini,
        "qini_ci_low": low,
        "qini_ci_high": high,
        "qini_ci": f"[{low:.4f}, {high:.4f}]",
        "ci_level": CI_LEVEL,
        "holdout_rows": rows if rows is not None else "unknown",
        "bootstrap_resamples": resamples if resamples is not None else "unknown",
    }
    if not (math.isfinite(low) and math.isfinite(high)):
        return GateDecision(
            False,
            f"{who} has no stored 95% interval of its Qini (metrics qini_ci_low/qini_ci_high of "
            f"its MLflow run; point estimate {qini:.4f}): without evidence it does not score the "
            "campaigns; retrain it (uplift_model evaluates with a bootstrap) or promote another "
            "version",
            evidence,
        )
    passed = bool(low > floor)
    weak_arms = _arm_evidence(metrics, floor, evidence)
    sample = f"{rows if rows is not None else '?'} holdout rows, " + (
        f"{resamples} bootstrap resamples" if resamples is not None else "resamples unknown"
    )
    verdict = "above" if passed else "not above"
    description = (
        f"{who}: qini {qini:.4f}, 95% interval [{low:.4f}, {high:.4f}] ({sample}); the lower "
        f"bound is {verdict} the floor {floor:g}"
        + ("" if passed else ": the ranking is not shown to beat random")
    )
    if weak_arms is None:
        return GateDecision(passed, description, evidence)
    arms = evidence["arms"].split(", ")
    offered = [a for a in arms if a not in weak_arms]
    evidence["arms_offered"] = ", ".join(offered) or "none"
    evidence["arms_not_offered"] = ", ".join(weak_arms) or "none"
    description = (
        f"{who} (arms {', '.join(arms)}; {sample}): "
        + "; ".join(
            f"{a} qini {evidence[f'arm_{a}_qini']:.4f} {evidence[f'arm_{a}_qini_ci']}" for a in arms
        )
        + f". Offered (lower bound above the floor {floor:g}): {', '.join(offered) or 'none'}"
    )
    if weak_arms:
        description += (
            f"; not offered, not shown to beat random: {', '.join(weak_arms)} (no variant "
            "decision picks it)"
        )
    if not offered:
        description += ": no arm's ranking beats random, the model does not score the campaigns"
    description += f". Best-arm policy qini {qini:.4f} [{low:.4f}, {high:.4f}] (reported)"
    return GateDecision(bool(offered), description, evidence)


def _arm_evidence(
    metrics: Mapping[str, float], floor: float, evidence: dict[str, Any]
) -> list[str] | None:
    """Per-arm figures into ``evidence``; the arms whose lower bound is not above ``floor``
    (None for a binary model)."""
    from orchestration.core.model.arms import arm_metric, arms_in_metrics

    arms = arms_in_metrics(dict(metrics))
    if not arms:
        return None
    evidence["rule"] = MULTI_ARM_RULE
    evidence["arms"] = ", ".join(arms)
    weak = []
    for arm in arms:
        low = _figure(metrics, arm_metric(arm, "qini_ci_low"))
        high = _figure(metrics, arm_metric(arm, "qini_ci_high"))
        evidence[f"arm_{arm}_qini"] = _figure(metrics, arm_metric(arm, "qini"))
        evidence[f"arm_{arm}_qini_ci"] = f"[{low:.4f}, {high:.4f}]"
        if not (math.isfinite(low) and low > floor):
            weak.append(arm)
    return weak


def usable_arms(metrics: Mapping[str, float], floor: float = 0.0) -> tuple[str, ...] | None:
    """The arms of a multi-arm model that are offered (their Qini lower bound above ``floor``);
    None for a binary model."""
    from orchestration.core.model.arms import arm_metric, arms_in_metrics

    arms = arms_in_metrics(dict(metrics))
    if not arms:
        return None
    return tuple(
        a
        for a in arms
        if math.isfinite(low := _figure(metrics, arm_metric(a, "qini_ci_low"))) and low > floor
    )
