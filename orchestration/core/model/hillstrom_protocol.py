"""The Hillstrom evaluation protocol: the learners and metrics on real data this project did not
generate (scikit-uplift's Hillstrom tutorial, made reproducible).

* keep ``segment`` in {"Womens E-Mail", "No E-Mail"} (42,693 rows); treatment = Womens E-Mail;
* target = ``visit`` (conversion is too rare, 0.6-0.9 %, for a stable ranking metric);
* features: recency, history, mens, womens, newbie, history_segment (ordinal 1..7) and one-hot
  zip_code and channel (fixed category lists, so train, test and any later scoring frame have the
  same columns whatever values they happen to contain);
* a 50/50 split with ``random_state=42``, stratified on treatment x visit;
* metrics on the test half: Qini coefficient, AUUC and uplift@30% with percentile bootstrap 95 %
  intervals (:func:`~orchestration.core.model.metrics.evaluate_uplift`).

The data, its validation and its mapping into the raw contract live in
:mod:`orchestration.core.world.datasets.hillstrom`; this module only evaluates.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from orchestration.core.model.learners import make_learner
from orchestration.core.model.metrics import bootstrap_interval, evaluate_uplift, uplift_at_k
from orchestration.core.world.datasets.hillstrom import (
    CONTROL_SEGMENT,
    HISTORY_SEGMENTS,
    PROTOCOL_SEED,
    PURCHASE_CHANNELS,
    TREATED_SEGMENT,
    ZIP_CODE_NAMES,
    ZIP_CODES,
    validate_hillstrom,
)

NUMERIC_FEATURES: tuple[str, ...] = ("recency", "history", "mens", "womens", "newbie")
FEATURES: tuple[str, ...] = (
    *NUMERIC_FEATURES,
    "history_segment",
    *(f"zip_code_{ZIP_CODE_NAMES[v]}" for v in ZIP_CODES),
    *(f"channel_{v.lower()}" for v in PURCHASE_CHANNELS),
)
TARGET = "visit"

# --- protocol -------------------------------------------------------------------------------
TEST_SIZE = 0.5
UPLIFT_K = 0.3
DEFAULT_N_BOOT = 200


# --------------------------------------------------------------------------------------------
# the protocol


def protocol_frame(df: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """``(X, treatment, y)`` of the protocol: Womens E-Mail (1) vs No E-Mail (0), target visit.

    ``X`` keeps ``df``'s index (so rows can be traced back to the file) and has the columns
    :data:`FEATURES`, all numeric: history_segment as its ordinal 1..7 (the bands are ordered)
    and zip_code / channel one-hot over fixed category lists.
    """
    validate_hillstrom(df)
    kept = df.loc[df["segment"].isin((TREATED_SEGMENT, CONTROL_SEGMENT))]
    treatment = (kept["segment"] == TREATED_SEGMENT).to_numpy(dtype=np.int8)
    y = kept[TARGET].to_numpy(dtype=np.int8)
    return _features(kept), treatment, y


def _features(kept: pd.DataFrame) -> pd.DataFrame:
    """:data:`FEATURES` of the rows, all numeric (see :func:`protocol_frame`)."""
    X = pd.DataFrame(index=kept.index)
    for column in NUMERIC_FEATURES:
        X[column] = kept[column].astype(np.float64 if column == "history" else np.int64)
    X["history_segment"] = kept["history_segment"].map(
        {label: i + 1 for i, label in enumerate(HISTORY_SEGMENTS)}
    )
    for value in ZIP_CODES:
        X[f"zip_code_{ZIP_CODE_NAMES[value]}"] = (kept["zip_code"] == value).astype(np.int8)
    for value in PURCHASE_CHANNELS:
        X[f"channel_{value.lower()}"] = (kept["channel"] == value).astype(np.int8)
    return X[list(FEATURES)]


def evaluate_three_arms(
    df: pd.DataFrame,
    learner: str = "two_model",
    seed: int = PROTOCOL_SEED,
    n_boot: int = DEFAULT_N_BOOT,
    params: dict[str, Any] | None = None,
) -> dict[str, float]:
    """All three groups as a multi-arm experiment with every Hillstrom feature (the reference
    for what the pipeline can reach): arms ``womens_email`` and ``mens_email`` against
    ``control``, a 50/50 split stratified on arm x visit (``seed``), one ``learner`` per arm
    (``core.model.arms``). Keys as :func:`~orchestration.core.model.arms.evaluate_arms`:
    ``arm__<arm>__<metric>`` per arm and the best-arm policy's unprefixed ones."""
    from sklearn.model_selection import train_test_split

    from orchestration.core.model.arms import MultiArmLearner, evaluate_arms
    from orchestration.core.world.datasets.hillstrom import ARM_NAMES

    validate_hillstrom(df)
    X = _features(df)
    arms = df["segment"].map(ARM_NAMES).to_numpy(dtype=object)
    y = df[TARGET].to_numpy(dtype=np.int8)
    strata = pd.Series(arms).astype(str) + ":" + pd.Series(y).astype(str)
    train, test = train_test_split(
        np.arange(len(y)), test_size=TEST_SIZE, random_state=seed, stratify=strata
    )
    model = MultiArmLearner(learner, params, seed=seed).fit(X.iloc[train], arms[train], y[train])
    per_arm = model.predict_arm_uplift(X.iloc[test])
    figures = evaluate_arms(y[test], arms[test], per_arm, ks=(UPLIFT_K,), n_boot=n_boot, seed=seed)
    return {**figures, "n_train": float(len(train)), "n_test": float(len(test))}


def protocol_split(
    treatment: np.ndarray, y: np.ndarray, seed: int = PROTOCOL_SEED
) -> tuple[np.ndarray, np.ndarray]:
    """Positions ``(train, test)`` of a 50/50 split stratified on treatment x target, sorted.

    Stratifying on both keeps the arm sizes and each arm's visit rate equal in the two halves,
    so the holdout's ATE is not an accident of the split; the same seed gives the same rows.
    """
    from sklearn.model_selection import train_test_split

    treatment = np.asarray(treatment).astype(np.int64)
    y = np.asarray(y).astype(np.int64)
    positions = np.arange(len(y))
    train, test = train_test_split(
        positions, test_size=TEST_SIZE, random_state=seed, stratify=treatment * 2 + y
    )
    return np.sort(train), np.sort(test)


@dataclass(frozen=True)
class ProtocolScores:
    """One learner's scores on the test half, with what is needed to evaluate and plot them."""

    learner: str
    y: np.ndarray
    treatment: np.ndarray
    uplift: np.ndarray
    test_index: pd.Index  # rows of the input frame
    n_train: int
    fit_seconds: float

    @property
    def n_test(self) -> int:
        return len(self.y)


def score_protocol(
    df: pd.DataFrame,
    learner: str = "two_model",
    seed: int = PROTOCOL_SEED,
    params: dict[str, Any] | None = None,
) -> ProtocolScores:
    """Split (``seed``), fit ``learner`` (seeded with ``seed``) on the train half, score the test.

    ``params`` override the learner's LightGBM defaults (``DEFAULT_LGBM_PARAMS``).
    """
    X, treatment, y = protocol_frame(df)
    train, test = protocol_split(treatment, y, seed)
    model = make_learner(learner, params=params, seed=seed)
    started = time.perf_counter()
    model.fit(X.iloc[train], treatment[train], y[train])
    fit_seconds = time.perf_counter() - started
    return ProtocolScores(
        learner=learner,
        y=y[test],
        treatment=treatment[test],
        uplift=model.predict_uplift(X.iloc[test]),
        test_index=X.index[test],
        n_train=len(train),
        fit_seconds=fit_seconds,
    )


def evaluate_scores(
    scores: ProtocolScores, n_boot: int = DEFAULT_N_BOOT, seed: int = PROTOCOL_SEED
) -> dict[str, Any]:
    """The protocol figures of scored test rows.

    Keys: ``learner``; ``qini``, ``auuc``, ``uplift_at_30`` (strategy "overall") and
    ``uplift_at_30_by_group`` (strategy "by_group"), each with ``<key>_ci_low`` /
    ``<key>_ci_high`` (percentile bootstrap 95 %, ``n_boot`` resamples within each arm, seeded;
    omitted when ``n_boot=0``); ``n_treated``, ``n_control``, ``treated_rate``, ``control_rate``,
    ``ate`` of the test half; ``n_train``, ``n_test``, ``fit_seconds``.
    """
    y, t, u = scores.y, scores.treatment, scores.uplift
    figures = evaluate_uplift(y, t, u, ks=(UPLIFT_K,), n_boot=n_boot, seed=seed)
    by_group = "uplift_at_30_by_group"
    figures[by_group] = uplift_at_k(y, t, u, k=UPLIFT_K, strategy="by_group")
    if n_boot:
        low, high = bootstrap_interval(
            uplift_at_k, y, t, u, n_boot=n_boot, seed=seed, k=UPLIFT_K, strategy="by_group"
        )
        figures[f"{by_group}_ci_low"], figures[f"{by_group}_ci_high"] = low, high
    return {
        "learner": scores.learner,
        **figures,
        "n_train": scores.n_train,
        "n_test": scores.n_test,
        "fit_seconds": scores.fit_seconds,
    }


def evaluate_protocol(
    df: pd.DataFrame,
    learner: str = "two_model",
    seed: int = PROTOCOL_SEED,
    n_boot: int = DEFAULT_N_BOOT,
    params: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Run the Hillstrom protocol for one learner: split, fit, score, evaluate.

    ``df`` is the full data (:func:`load_hillstrom`); the split, the learner and the bootstrap
    are all seeded with ``seed`` (42 is the protocol). See :func:`evaluate_scores` for the keys;
    ``uplift_at_30`` is the "overall" strategy (the one scikit-uplift's tutorial reports, 0.066
    there) and ``uplift_at_30_by_group`` the "by_group" one.
    """
    return evaluate_scores(score_protocol(df, learner, seed, params), n_boot=n_boot, seed=seed)


def format_interval(figures: dict[str, Any], key: str, digits: int = 4) -> str:
    """``value [low, high]`` of one figure (``value`` alone when there is no interval)."""
    value = figures[key]
    low, high = figures.get(f"{key}_ci_low"), figures.get(f"{key}_ci_high")
    text = "nan" if value is None or math.isnan(value) else f"{value:.{digits}f}"
    if low is None or high is None:
        return text
    return f"{text} [{low:.{digits}f}, {high:.{digits}f}]"
