"""The promotion gate: does the challenger rank better than the champion on the same customers?

Plain Python (never dagster). Both models score the SAME held-out rows of the current training
set (the customers ``train_and_evaluate`` holds out: the split is a stable hash of the customer,
so neither model was fitted on them), and the Qini difference is bootstrapped *paired*: every
resample draws one set of row indices (``metrics.stratified_bootstrap_indices``, the sampler of
the metrics' intervals) and evaluates both models on it, so the noise the two scores share
cancels out of the interval.

Rule: ``promote = diff > margin and ci_low > 0`` with ``diff = qini(challenger) - qini(champion)``
and a 95 % percentile interval. Promotion moves the ``champion`` alias to the challenger version
(and removes ``challenger``); a manual override forces ``champion`` onto a named version and tags
it ``promoted_by=manual_override``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from orchestration.core.model.metrics import (
    qini_coefficient,
    stratified_bootstrap_indices,
    uplift_at_k,
)
from orchestration.core.model.registry import CHALLENGER, CHAMPION, alias_version, configure
from orchestration.core.model.training import feature_matrix, holdout_mask
from orchestration.settings import Settings

# train_and_evaluate's defaults: the comparison must use the rows the models were evaluated on.
HOLDOUT_SHARE = 0.3
SPLIT_SEED = 42
PROMOTED_BY_TAG = "promoted_by"
MANUAL_OVERRIDE = "manual_override"
PROMOTION_GATE = "promotion_gate"


def holdout_rows(
    training_set: pd.DataFrame, holdout_share: float = HOLDOUT_SHARE, seed: int = SPLIT_SEED
) -> pd.DataFrame:
    """The held-out rows of a training set, exactly as ``train_and_evaluate`` splits it."""
    mask = holdout_mask(training_set["customer_id"], holdout_share, salt=f"split:{seed}")
    return training_set[mask].reset_index(drop=True)


@dataclass(frozen=True)
class PromotionDecision:
    champion_version: str | None
    challenger_version: str | None
    champion_qini: float
    challenger_qini: float
    champion_uplift_at_30: float
    challenger_uplift_at_30: float
    qini_diff: float
    qini_diff_ci_low: float
    qini_diff_ci_high: float
    margin: float
    holdout_rows: int
    n_boot: int
    promote: bool
    reason: str

    def metrics(self) -> dict[str, float]:
        """The figures, flat and numeric (for MLflow ``promotion_*`` metrics and check metadata)."""
        return {
            k: float(v)
            for k, v in asdict(self).items()
            if isinstance(v, int | float) and not isinstance(v, bool)
        } | {"promote": float(self.promote)}


def _predict(model: Any, X: pd.DataFrame) -> np.ndarray:
    """Uplift scores from a learner (``predict_uplift``) or an MLflow pyfunc (``predict``)."""
    scores = model.predict_uplift(X) if hasattr(model, "predict_uplift") else model.predict(X)
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    if len(scores) != len(X):
        raise ValueError(f"model returned {len(scores)} scores for {len(X)} rows")
    if not np.isfinite(scores).all():
        raise ValueError(f"model returned {int((~np.isfinite(scores)).sum())} non-finite scores")
    return scores


def paired_bootstrap_indices(treatment: np.ndarray, n_boot: int, seed: int) -> np.ndarray:
    """``n_boot`` x ``n`` row indices, resampled with replacement within each arm: the rows of
    ``metrics.stratified_bootstrap_indices`` (the same stream ``compare_on_holdout`` uses)."""
    rows = list(stratified_bootstrap_indices(treatment, n_boot, seed))
    return np.vstack(rows) if rows else np.empty((0, len(treatment)), dtype=np.int64)


def compare_on_holdout(
    champion_model: Any,
    challenger_model: Any,
    holdout_frame: pd.DataFrame,
    features: list[str],
    n_boot: int = 200,
    seed: int = 42,
    margin: float = 0.0,
    champion_version: str | None = None,
    challenger_version: str | None = None,
    alpha: float = 0.05,
) -> PromotionDecision:
    """Score both models on the same rows; paired bootstrap of the Qini difference."""
    if n_boot < 10:
        raise ValueError(f"n_boot must be at least 10, got {n_boot}")
    missing = {"is_treated", "label"} - set(holdout_frame.columns)
    if missing:
        raise ValueError(f"the holdout frame lacks {sorted(missing)}")
    y = holdout_frame["label"].to_numpy(dtype=np.float64)
    t = holdout_frame["is_treated"].to_numpy(dtype=np.float64)
    if len(y) == 0 or t.min() == t.max():
        raise ValueError("the holdout needs treated and control rows to compare uplift models")
    X = feature_matrix(holdout_frame, features)
    u_champion = _predict(champion_model, X)
    u_challenger = _predict(challenger_model, X)

    q_champion = float(qini_coefficient(y, t, u_champion))
    q_challenger = float(qini_coefficient(y, t, u_challenger))
    diff = q_challenger - q_champion
    diffs = np.empty(n_boot)
    for b, idx in enumerate(stratified_bootstrap_indices(t, n_boot, seed)):
        diffs[b] = qini_coefficient(y[idx], t[idx], u_challenger[idx]) - qini_coefficient(
            y[idx], t[idx], u_champion[idx]
        )
    diffs = diffs[np.isfinite(diffs)]
    if len(diffs) == 0:
        low = high = math.nan
    else:
        low, high = (float(v) for v in np.quantile(diffs, [alpha / 2, 1 - alpha / 2]))
    promote = bool(diff > margin and low > 0)
    if promote:
        reason = f"challenger beats champion by {diff:.4f} Qini (95% CI [{low:.4f}, {high:.4f}])"
    elif diff <= margin:
        reason = f"Qini difference {diff:.4f} does not exceed the margin {margin:.4f}"
    else:
        reason = f"the 95% interval of the Qini difference [{low:.4f}, {high:.4f}] includes 0"
    return PromotionDecision(
        champion_version=champion_version,
        challenger_version=challenger_version,
        champion_qini=q_champion,
        challenger_qini=q_challenger,
        champion_uplift_at_30=float(uplift_at_k(y, t, u_champion, k=0.3)),
        challenger_uplift_at_30=float(uplift_at_k(y, t, u_challenger, k=0.3)),
        qini_diff=diff,
        qini_diff_ci_low=low,
        qini_diff_ci_high=high,
        margin=float(margin),
        holdout_rows=len(y),
        n_boot=int(n_boot),
        promote=promote,
        reason=reason,
    )


@dataclass(frozen=True)
class PromotionOutcome:
    champion_version: str | None  # the version carrying ``champion`` afterwards
    changed: bool
    promoted_by: str | None  # promotion_gate | manual_override | None


def apply_promotion(
    settings: Settings, decision: PromotionDecision | None, override: str | None = None
) -> PromotionOutcome:
    """Move ``champion`` when the gate says so, or onto ``override`` (a version number).

    The override wins over the decision and is recorded as the tag ``promoted_by=manual_override``
    on the version; a gate promotion is tagged ``promoted_by=promotion_gate``. The promoted version
    loses the ``challenger`` alias (it is not waiting any more).
    """
    client = configure(settings)
    name = settings.model_name
    current = alias_version(client, name, CHAMPION)
    if override is not None:
        target, promoted_by = str(override).strip(), MANUAL_OVERRIDE
        client.get_model_version(name, target)  # raises if the version does not exist
    elif decision is not None and decision.promote and decision.challenger_version is not None:
        target, promoted_by = str(decision.challenger_version), PROMOTION_GATE
    else:
        return PromotionOutcome(champion_version=current, changed=False, promoted_by=None)
    if target == current:
        return PromotionOutcome(champion_version=current, changed=False, promoted_by=None)
    client.set_registered_model_alias(name, CHAMPION, target)
    client.set_model_version_tag(name, target, PROMOTED_BY_TAG, promoted_by)
    if alias_version(client, name, CHALLENGER) == target:
        client.delete_registered_model_alias(name, CHALLENGER)
    return PromotionOutcome(champion_version=target, changed=True, promoted_by=promoted_by)


def log_comparison(settings: Settings, run_id: str, decision: PromotionDecision) -> None:
    """Record the comparison on the challenger's MLflow run (metrics ``promotion_*`` + a tag)."""
    client = configure(settings)
    for key, value in decision.metrics().items():
        if math.isfinite(value):
            client.log_metric(run_id, f"promotion_{key}", value)
    client.set_tag(run_id, "promotion_champion_version", str(decision.champion_version))
    client.set_tag(run_id, "promotion_decision", "promoted" if decision.promote else "not_promoted")
    client.set_tag(run_id, "promotion_reason", decision.reason[:500])
