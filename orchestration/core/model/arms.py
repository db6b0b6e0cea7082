"""Multi-arm experiments: one uplift learner per treatment arm against the shared control.

A past campaign with several treatment arms (``control`` plus e.g. ``mens_email`` and
``womens_email``) is learned as one learner per arm (``two_model`` by default: a per-arm
T-learner), each fitted on the rows of its arm and the control rows, so every arm's uplift is
estimated against the same randomized control. ``predict_arm_uplift`` gives one column per arm;
``predict_uplift`` the best arm's uplift (what sending the best message adds), so code that
scores one number per customer (the promotion gate, the canary, the pyfunc) keeps working.

Evaluation (:func:`evaluate_arms`), on held-out customers:

* per arm: the arm's predicted uplift on the arm's rows and the control rows (Qini, AUUC,
  uplift@k with bootstrap intervals), keys ``arm__<arm>__<metric>``;
* for the policy "send each customer the arm with the highest predicted uplift": a held-out row
  counts as treated when its randomized arm is the arm the model picks for it, as control when
  it is a control row, and drops out otherwise (it got a message the policy would not send).
  Given the features the picked arm is fixed, and arms were randomized, so the kept treated and
  control rows are comparable; scored by the best uplift (Zhao, Fang & Simchi-Levi 2017, the
  matched-arm estimate). These are the unprefixed keys (``qini``, ``uplift_at_30``, ...), the
  ones the champion gate and the promotion gate read.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from orchestration.core.world.contract import ARM_NAME_PATTERN, CONTROL_ARM

ARM_PREFIX = "arm__"


def arm_metric(arm: str, metric: str) -> str:
    """The flat metric key of one arm's figure: ``arm__<arm>__<metric>``."""
    return f"{ARM_PREFIX}{arm}__{metric}"


def treatment_arms(arms: object) -> tuple[str, ...]:
    """The treatment arms present in ``arms`` (every name but control), sorted."""
    return tuple(
        sorted({str(a) for a in pd.unique(np.asarray(arms, dtype=object))} - {CONTROL_ARM})
    )


def is_multi_arm(frame: pd.DataFrame) -> bool:
    """Whether a training set holds more than one treatment arm (a column ``arm``)."""
    return "arm" in frame.columns and len(treatment_arms(frame["arm"])) > 1


def _check_arms(arms: object, n_rows: int) -> np.ndarray:
    import re

    values = np.asarray(arms, dtype=object)
    if values.ndim != 1 or len(values) != n_rows:
        raise ValueError(
            f"arms must be one value per row of X ({n_rows}), got shape {values.shape}"
        )
    bad = sorted({str(a) for a in values if not re.match(ARM_NAME_PATTERN, str(a))})
    if bad:
        raise ValueError(f"arm names must be identifiers (lower-case, digits, '_'): {bad[:5]}")
    if not (values == CONTROL_ARM).any():
        raise ValueError("no control rows: every arm's uplift is measured against 'control'")
    if len(treatment_arms(values)) == 0:
        raise ValueError("no treatment rows: only the control arm is present")
    return values


class MultiArmLearner:
    """One ``base`` learner per treatment arm, each fitted on that arm vs control."""

    def __init__(
        self, base: str = "two_model", params: dict[str, Any] | None = None, seed: int = 42
    ):
        self.base = base
        self.name = f"multi_arm_{base}"
        self.seed = int(seed)
        self.params = dict(params or {})
        self.arms_: tuple[str, ...] = ()
        self.learners_: dict[str, Any] = {}
        self.feature_names_: list[str] = []
        self.params_: dict[str, Any] = {}

    def fit(self, X: pd.DataFrame, arms: object, y: object) -> MultiArmLearner:
        from orchestration.core.model.learners import make_learner

        values = _check_arms(arms, len(X))
        y_arr = np.asarray(y)
        control = values == CONTROL_ARM
        self.arms_ = treatment_arms(values)
        self.learners_ = {}
        for arm in self.arms_:
            rows = control | (values == arm)
            learner = make_learner(self.base, self.params, seed=self.seed)
            try:
                learner.fit(X[rows], (values[rows] == arm).astype(np.int8), y_arr[rows])
            except ValueError as exc:
                raise ValueError(f"arm {arm!r} (vs control): {exc}") from exc
            self.learners_[arm] = learner
        first = self.learners_[self.arms_[0]]
        self.feature_names_ = list(first.feature_names_)
        self.params_ = {"base_learner": self.base, "arms": ",".join(self.arms_), **first.params_}
        return self

    def predict_arm_uplift(self, X: pd.DataFrame) -> pd.DataFrame:
        """One column per treatment arm: the predicted uplift of that arm against control."""
        if not self.learners_:
            raise RuntimeError(f"{self.name} is not fitted; call fit() first")
        return pd.DataFrame(
            {arm: self.learners_[arm].predict_uplift(X) for arm in self.arms_},
            index=X.index,
        )

    def predict_uplift(self, X: pd.DataFrame) -> np.ndarray:
        """The best arm's predicted uplift per row (what the best message adds)."""
        per_arm = self.predict_arm_uplift(X)
        return per_arm.to_numpy(dtype=np.float64).max(axis=1) if len(per_arm) else np.empty(0)


def best_arm(per_arm: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Per row: the arm with the highest predicted uplift (ties: the first by name) and it."""
    values = per_arm.to_numpy(dtype=np.float64)
    pick = np.argmax(values, axis=1)
    names = np.asarray(per_arm.columns, dtype=object)
    return names[pick], values[np.arange(len(values)), pick]


def evaluate_arms(
    y: np.ndarray,
    arms: np.ndarray,
    per_arm: pd.DataFrame,
    *,
    ks: tuple[float, ...] = (0.1, 0.3),
    n_boot: int = 200,
    seed: int = 42,
) -> dict[str, float]:
    """Per-arm metrics (``arm__<arm>__*``) and the best-arm policy's (unprefixed keys)."""
    from orchestration.core.model.metrics import evaluate_uplift

    y = np.asarray(y)
    arms = np.asarray(arms, dtype=object)
    control = arms == CONTROL_ARM
    metrics: dict[str, float] = {}
    for arm in per_arm.columns:
        rows = control | (arms == arm)
        figures = evaluate_uplift(
            y[rows],
            (arms[rows] == arm).astype(np.int8),
            per_arm[arm].to_numpy()[rows],
            ks=ks,
            n_boot=n_boot,
            seed=seed,
        )
        metrics.update({arm_metric(str(arm), k): v for k, v in figures.items()})
    picked, best = best_arm(per_arm)
    matched = control | (arms == picked)
    policy = evaluate_uplift(
        y[matched],
        (~control[matched]).astype(np.int8),
        best[matched],
        ks=ks,
        n_boot=n_boot,
        seed=seed,
    )
    metrics.update(policy)
    metrics["policy_matched_rows"] = float(matched.sum())
    for arm in per_arm.columns:
        metrics[arm_metric(str(arm), "share_picked")] = float((picked == arm).mean())
    return metrics


def arms_in_metrics(metrics: dict[str, float]) -> tuple[str, ...]:
    """The arms whose figures a flat metrics dict holds (empty for a binary model)."""
    suffix = "__qini"
    return tuple(
        sorted(
            key[len(ARM_PREFIX) : -len(suffix)]
            for key in metrics
            if key.startswith(ARM_PREFIX) and key.endswith(suffix)
        )
    )
