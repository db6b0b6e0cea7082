"""The model versions that score the online features (``online_reads``), and the scores."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from orchestration.core.decisioning.decide import (
    arm_score_column,
    model_ref,
    score_column,
    version_column,
)
from orchestration.core.decisioning.scoring import arm_learner, best_offered


@dataclass(frozen=True)
class Scorer:
    """One model version behind an alias: ``predict`` maps the float64 feature matrix to uplift."""

    name: str
    alias: str
    version: str
    predict: Callable[[pd.DataFrame], np.ndarray]
    # a multi-arm model's uplift per arm (one column each); None for a binary model
    predict_arms: Callable[[pd.DataFrame], pd.DataFrame] | None = None

    arms: tuple[str, ...] = ()
    offered: tuple[str, ...] = ()  # the arms the champion gate offers (gates.usable_arms)

    @property
    def ref(self) -> str:
        return model_ref(self.name, self.alias)


def pyfunc_predictor(model: Any) -> Callable[[pd.DataFrame], np.ndarray]:
    """The loaded pyfunc's learner, called on the float64 feature matrix. The pyfunc's own
    ``predict`` (``UpliftPyfuncModel``) is ``learner.predict_uplift(feature_matrix(x))`` behind
    MLflow's schema enforcement: ~5 ms of conversions per request for the same numbers. Our
    learners go further: their boosters on the numpy matrix (``learner.matrix_predictor``; the
    parity test compares the scores with the batch's). Any other model: its ``predict``."""
    try:
        inner = model.unwrap_python_model()
        learner, columns = inner.learner, list(inner.feature_columns)
    except Exception:  # noqa: BLE001 - not our python model: use its own predict
        return lambda x: np.asarray(model.predict(x), dtype=float)
    matrix = getattr(learner, "matrix_predictor", None)
    direct = matrix() if matrix is not None else None
    if direct is not None:
        order = list(learner.feature_names_)

        def predict_matrix(x: pd.DataFrame) -> np.ndarray:
            x = x if list(x.columns) == order else x[order]
            return direct(x.to_numpy(dtype=np.float64))

        return predict_matrix

    def predict(x: pd.DataFrame) -> np.ndarray:
        x = x if list(x.columns) == columns else x[columns]
        return np.asarray(learner.predict_uplift(x), dtype=float)

    return predict


def pyfunc_arm_predictor(model: Any) -> Callable[[pd.DataFrame], pd.DataFrame] | None:
    """The multi-arm learner's per-arm uplift on the float64 feature matrix, as the batch's
    ``scoring.arm_uplift`` computes it; None for a binary model."""
    learner = arm_learner(model)
    if learner is None:
        return None
    columns = list(model.unwrap_python_model().feature_columns)

    def predict(x: pd.DataFrame) -> pd.DataFrame:
        return learner.predict_arm_uplift(x if list(x.columns) == columns else x[columns])

    return predict


def _float_matrix(features: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """``training.feature_matrix`` (floats, booleans 0/1, missing NaN) without a conversion per
    column when the values are numbers already."""
    from orchestration.core.model.training import feature_matrix

    try:
        values = features[columns].to_numpy(dtype=np.float64, na_value=np.nan)
    except (TypeError, ValueError):
        return feature_matrix(features, columns)
    return pd.DataFrame(values, columns=columns, index=features.index)


def score_frame(
    features: pd.DataFrame, columns: list[str], scorers: Iterable[Scorer]
) -> pd.DataFrame:
    """The batch's customer_scores layout (``uplift__<ref>``, ``version__<ref>``) for these rows:
    rows without any feature value get NaN (``scoring.score_with_aliases``)."""
    out: dict[str, Any] = {"customer_id": features["customer_id"].to_numpy(dtype=np.int64)}
    matrix = _float_matrix(features, columns)
    has_features = ~np.isnan(matrix.to_numpy()).all(axis=1)
    if not has_features.all():
        matrix = matrix[has_features]
    for scorer in scorers:
        uplift = np.full(len(features), np.nan)
        if has_features.any():
            uplift[has_features] = scorer.predict(matrix)
        if scorer.predict_arms is not None:  # as the batch: scoring.arm_uplift, best_offered
            per_arm = scorer.predict_arms(matrix) if has_features.any() else None
            arms = {}
            for arm in scorer.arms:
                values = np.full(len(features), np.nan)
                if per_arm is not None and arm in scorer.offered:
                    values[has_features] = per_arm[arm].to_numpy(dtype=np.float64)
                arms[arm] = values
            uplift = best_offered(arms)
            for arm, values in arms.items():
                out[arm_score_column(scorer.ref, arm)] = values
        out[score_column(scorer.ref)] = uplift
        out[version_column(scorer.ref)] = np.full(len(features), scorer.version, dtype=object)
    return pd.DataFrame(out)
