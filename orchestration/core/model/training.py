"""Training sets from past randomized campaigns, and training + evaluation of uplift learners.

The training set has one row per past exposure whose outcome window is complete: the features as
Feast returned them at the exposure's timestamp (point-in-time), the arm, and the outcome.
Evaluation is on a held-out split by customer (a customer exposed twice never sits on both sides).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from orchestration.core.common.hashing import in_share

EXPOSURE_COLUMNS = (
    "exposure_id",
    "campaign_id",
    "customer_id",
    "channel",
    "arm",
    "is_treated",
    "exposed_at",
)


def training_entities(exposures: pd.DataFrame, target: str) -> pd.DataFrame:
    """Entity rows for Feast: past exposures with a complete outcome window and their label."""
    needed = set(EXPOSURE_COLUMNS) | {target, "is_outcome_complete"}
    if "arm" not in exposures.columns:  # a binary experiment written without arm names
        exposures = exposures.assign(
            arm=np.where(exposures["is_treated"].astype(bool), "treatment", "control")
        )
    missing = sorted(needed - set(exposures.columns))
    if missing:
        raise ValueError(f"fct_campaign_exposures lacks columns {missing}")
    complete = exposures[exposures["is_outcome_complete"].astype(bool)]
    entities = complete[list(EXPOSURE_COLUMNS)].copy()
    entities["label"] = complete[target].astype("int8").to_numpy()
    entities["is_treated"] = entities["is_treated"].astype("int8")
    entities["event_timestamp"] = pd.to_datetime(entities["exposed_at"], utc=True)
    return entities.reset_index(drop=True)


# Why a sample of this size is enough (stated in the training set's and the model's metadata).
TRAINING_SAMPLE_REASON = (
    "the sample is drawn by a stable hash of the customer (all of a customer's exposures or "
    "none), so it is a random sample of the randomized campaigns: both arms keep their 50/50 "
    "split and every campaign its share. At the 600,000-row default each arm of the T-learner "
    "sees about 210,000 training rows, about 700 per leaf of its 200 trees of 31 leaves "
    "(min_child_samples 100), and the holdout about 180,000 rows"
)
TRAINING_SAMPLE_SALT = "training-sample"


@dataclass(frozen=True)
class TrainingSample:
    """How many past exposures the training set keeps of those with a complete outcome."""

    rows: int
    available: int
    max_rows: int | None

    @property
    def is_sampled(self) -> bool:
        return self.rows < self.available

    def describe(self) -> str:
        if not self.is_sampled:
            return f"all {self.available:,} exposures"
        return (
            f"{self.rows:,} of {self.available:,} exposures (a stable hash sample of customers; "
            f"CAMPAIGN_TRAINING_MAX_ROWS={self.max_rows:,})"
        )


def sample_training_entities(
    entities: pd.DataFrame, max_rows: int | None
) -> tuple[pd.DataFrame, TrainingSample]:
    """At most about ``max_rows`` entity rows: all of them when there are no more, else the
    exposures of a stable hash sample of the customers (the same customers on every run, a
    customer's exposures together), so the sample does not depend on the row order."""
    available = len(entities)
    if max_rows is None or available <= max_rows:
        return entities, TrainingSample(available, available, max_rows)
    keep = in_share(
        entities["customer_id"].to_numpy(), max_rows / available, salt=TRAINING_SAMPLE_SALT
    )
    sample = entities[keep].reset_index(drop=True)
    return sample, TrainingSample(len(sample), available, max_rows)


def feature_matrix(frame: pd.DataFrame, feature_columns: list[str]) -> pd.DataFrame:
    """Model input: the feature columns as floats (booleans 0/1, missing stays NaN)."""
    missing = [c for c in feature_columns if c not in frame.columns]
    if missing:
        raise ValueError(f"feature columns missing from the frame: {missing}")
    return frame[feature_columns].apply(pd.to_numeric, errors="coerce").astype("float64")


def holdout_mask(customer_ids: pd.Series, holdout_share: float, salt: str) -> np.ndarray:
    """Stable customer-level split: the same customer always falls on the same side."""
    if not 0 < holdout_share < 1:
        raise ValueError(f"holdout share must be in (0, 1), got {holdout_share}")
    return in_share(customer_ids.to_numpy(), holdout_share, salt)


@dataclass
class TrainingResult:
    learner: Any
    learner_name: str
    feature_columns: list[str]
    metrics: dict[str, float]
    holdout: pd.DataFrame  # customer_id, is_treated, label, predicted_uplift (+ true_uplift)
    params: dict[str, Any] = field(default_factory=dict)
    curve_path: Path | None = None
    # the treatment arms of a multi-arm model (one learner each vs control); () when binary
    arms: tuple[str, ...] = ()


def train_and_evaluate(
    training_set: pd.DataFrame,
    feature_columns: list[str],
    learner_name: str = "two_model",
    params: dict[str, Any] | None = None,
    holdout_share: float = 0.3,
    seed: int = 42,
    ground_truth: pd.DataFrame | None = None,
    n_boot: int = 200,
    curve_path: Path | None = None,
) -> TrainingResult:
    """Fit ``learner_name`` on the training part and evaluate uplift on the held-out customers."""
    from orchestration.core.model.arms import is_multi_arm
    from orchestration.core.model.learners import make_learner
    from orchestration.core.model.metrics import (
        evaluate_uplift,
        oracle_ratio,
        plot_qini_curve,
        qini_curve,
    )

    if training_set.empty:
        raise ValueError(
            "the training set is empty: no past exposure has a complete outcome window"
        )
    is_holdout = holdout_mask(training_set["customer_id"], holdout_share, salt=f"split:{seed}")
    train, holdout = training_set[~is_holdout], training_set[is_holdout]
    for name, part in (("training", train), ("holdout", holdout)):
        arms = set(part["is_treated"].unique())
        if arms != {0, 1}:
            raise ValueError(
                f"the {name} split needs treated and control rows, has arms {sorted(arms)}"
            )

    if is_multi_arm(training_set):
        return _train_multi_arm(
            train, holdout, feature_columns, learner_name, params, seed, n_boot, curve_path
        )
    learner = make_learner(learner_name, params, seed=seed)
    learner.fit(
        feature_matrix(train, feature_columns),
        train["is_treated"].to_numpy(),
        train["label"].to_numpy(),
    )
    predicted = learner.predict_uplift(feature_matrix(holdout, feature_columns))
    y = holdout["label"].to_numpy()
    t = holdout["is_treated"].to_numpy()
    metrics = evaluate_uplift(y, t, predicted, ks=(0.1, 0.3), n_boot=n_boot, seed=seed)
    metrics["train_rows"] = float(len(train))
    metrics["holdout_rows"] = float(len(holdout))
    # The evidence behind the ``<metric>_ci_low``/``_ci_high`` intervals (the champion gate states it).
    metrics["bootstrap_resamples"] = float(n_boot)

    evaluated = holdout[["customer_id", "is_treated", "label"]].copy()
    evaluated["predicted_uplift"] = predicted
    curves = {learner_name: qini_curve(y, t, predicted)}
    if ground_truth is not None and "true_uplift" in ground_truth.columns:
        truth = (
            evaluated[["customer_id"]]
            .merge(ground_truth[["customer_id", "true_uplift"]], on="customer_id", how="left")[
                "true_uplift"
            ]
            .to_numpy()
        )
        if not np.isnan(truth).any():
            evaluated["true_uplift"] = truth
            metrics["oracle_ratio_qini"] = float(oracle_ratio(metrics["qini"], y, t, truth))
            metrics["spearman_true_uplift"] = float(
                pd.Series(predicted).rank().corr(pd.Series(truth).rank())
            )
            curves["oracle (true uplift)"] = qini_curve(y, t, truth)
    if curve_path is not None:
        plot_qini_curve(curves, curve_path)
    return TrainingResult(
        learner=learner,
        learner_name=learner_name,
        feature_columns=list(feature_columns),
        metrics={k: float(v) for k, v in metrics.items()},
        holdout=evaluated,
        params=dict(getattr(learner, "params_", params or {})),
        curve_path=curve_path,
    )


def _train_multi_arm(
    train: pd.DataFrame,
    holdout: pd.DataFrame,
    feature_columns: list[str],
    learner_name: str,
    params: dict[str, Any] | None,
    seed: int,
    n_boot: int,
    curve_path: Path | None,
) -> TrainingResult:
    """One ``learner_name`` per treatment arm vs control (``core.model.arms``); per-arm and
    best-arm-policy metrics on the held-out customers."""
    from orchestration.core.model.arms import (
        MultiArmLearner,
        evaluate_arms,
        treatment_arms,
    )
    from orchestration.core.model.metrics import plot_qini_curve, qini_curve

    arms = treatment_arms(train["arm"])
    missing = sorted(set(arms) - set(holdout["arm"].unique()))
    if missing:
        raise ValueError(f"the holdout split has no rows of the treatment arm(s) {missing}")
    learner = MultiArmLearner(learner_name, params, seed=seed)
    learner.fit(feature_matrix(train, feature_columns), train["arm"].to_numpy(), train["label"])
    per_arm = learner.predict_arm_uplift(feature_matrix(holdout, feature_columns))
    y, arm = holdout["label"].to_numpy(), holdout["arm"].to_numpy(dtype=object)
    metrics = evaluate_arms(y, arm, per_arm, ks=(0.1, 0.3), n_boot=n_boot, seed=seed)
    metrics.update(
        train_rows=float(len(train)),
        holdout_rows=float(len(holdout)),
        bootstrap_resamples=float(n_boot),
        arm_count=float(len(arms)),
    )
    evaluated = holdout[["customer_id", "arm", "is_treated", "label"]].copy()
    evaluated["predicted_uplift"] = per_arm.to_numpy().max(axis=1)
    for name in arms:
        evaluated[f"predicted_uplift__{name}"] = per_arm[name].to_numpy()
    if curve_path is not None:
        control = arm == "control"
        curves = {
            name: qini_curve(
                y[control | (arm == name)],
                (arm[control | (arm == name)] == name).astype(np.int8),
                per_arm[name].to_numpy()[control | (arm == name)],
            )
            for name in arms
        }
        plot_qini_curve(curves, curve_path)
    return TrainingResult(
        learner=learner,
        learner_name=learner.name,
        feature_columns=list(feature_columns),
        metrics={k: float(v) for k, v in metrics.items()},
        holdout=evaluated,
        params=dict(learner.params_),
        curve_path=curve_path,
        arms=arms,
    )
