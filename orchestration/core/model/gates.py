"""The champion gate: does the model that scores the campaigns rank better than random?

Plain Python (never dagster): the ``champion_beats_random`` asset check calls
:func:`champion_gate` on the metrics MLflow stored with the champion's training run, and the
tests call the same function on freshly evaluated models.

Rule: ``qini_ci_low > floor``. The point estimate is not evidence on its own: a model whose
features carry no signal can reach a positive Qini on its holdout by chance (a real campaign:
Qini 0.0438, 95 % interval [-0.0087, 0.0937]). The gate passes only when the *lower* bound of
the Qini's 95 % bootstrap interval (stratified by arm, on the held-out customers;
``metrics.evaluate_uplift``) is above the floor. A champion without a stored interval fails.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, NamedTuple

RULE = "qini_ci_low > floor"
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
    sample = f"{rows if rows is not None else '?'} holdout rows, " + (
        f"{resamples} bootstrap resamples" if resamples is not None else "resamples unknown"
    )
    verdict = "above" if passed else "not above"
    return GateDecision(
        passed,
        f"{who}: qini {qini:.4f}, 95% interval [{low:.4f}, {high:.4f}] ({sample}); the lower "
        f"bound is {verdict} the floor {floor:g}"
        + ("" if passed else ": the ranking is not shown to beat random"),
        evidence,
    )
