"""Online features read through Feast in-process, and the model versions that score them."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pandas as pd

from orchestration.core.decisioning.decide import (
    arm_score_column,
    model_ref,
    score_column,
    version_column,
)
from orchestration.core.decisioning.scoring import arm_learner, best_offered


class FeatureReader(Protocol):
    columns: list[str]

    def read(self, customer_ids: Sequence[int]) -> pd.DataFrame:
        """customer_id, the feature columns and ``feature_timestamp`` (the oldest of the row's
        feature timestamps, NaT when any feature is missing), in the order asked."""
        ...


class FeastFeatureReader:
    """Online reads from the Feast store held in-process (one per service)."""

    def __init__(self, store: Any, service: str):
        self.store = store
        self._lock = threading.Lock()  # the requests' worker and the health check share it
        self.service = store.get_feature_service(service)
        self.columns = [
            f.name
            for projection in self.service.feature_view_projections
            for f in projection.features
        ]

    def read(self, customer_ids: Sequence[int]) -> pd.DataFrame:
        with self._lock:
            response = self.store.get_online_features(
                features=self.service, entity_rows=[{"customer_id": int(c)} for c in customer_ids]
            ).to_dict(include_event_timestamps=True)
        ids = np.asarray(customer_ids, dtype=np.int64)
        shape = (len(self.columns), len(ids))
        try:  # numbers (None: missing) straight into one float64 block, as feature_matrix reads them
            values = np.array([response[c] for c in self.columns], dtype=np.float64).reshape(shape)
            frame = pd.DataFrame(values.T, columns=self.columns)
        except (TypeError, ValueError):  # not all numbers: keep the values as they are
            frame = pd.DataFrame({c: response[c] for c in self.columns})
        seconds = np.array([response[f"{c}__ts"] for c in self.columns], dtype=float).reshape(shape)
        seconds[~(seconds > 0)] = np.nan  # 0 (or none): no value for this feature
        oldest = seconds.min(axis=0) if len(self.columns) else np.full(len(ids), np.nan)
        frame["customer_id"] = ids
        frame["feature_timestamp"] = pd.to_datetime(oldest, unit="s", utc=True)
        return frame


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
    MLflow's schema enforcement: ~5 ms of conversions per request for the same numbers (the
    parity test compares the scores with the batch's). Any other model: its ``predict``."""
    try:
        inner = model.unwrap_python_model()
        learner, columns = inner.learner, list(inner.feature_columns)
    except Exception:  # noqa: BLE001 - not our python model: use its own predict
        return lambda x: np.asarray(model.predict(x), dtype=float)

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
