"""Uplift learners on LightGBM behind one small interface.

* ``two_model`` (T-learner): one classifier per arm, uplift = ``P(y | x, treated) - P(y | x,
  control)``.
* ``class_transformation`` (Jaskowski & Jaroszewicz 2012; Athey & Imbens): one classifier on
  ``z = y*t + (1-y)*(1-t)``, uplift = ``2 * P(z=1 | x) - 1``. That identity needs
  ``P(t=1) = 1/2``; with unbalanced arms the rows are weighted ``0.5 / P(t=1)`` (treated) and
  ``0.5 / P(t=0)`` (control), which restores it for a randomised experiment (constant propensity).
* ``x_learner`` (Kunzel, Sekhon, Bickel & Yu 2019): the T-learner's two classifiers, then the
  imputed effects ``y - mu0(x)`` on the treated and ``mu1(x) - y`` on the control rows, each
  regressed on the features; uplift = ``g * tau0(x) + (1 - g) * tau1(x)`` with ``g`` the share
  treated (the constant propensity of a randomised experiment). It borrows strength across
  arms where one arm's outcome model is noisy.
* ``response``: the baseline uplift must beat, a plain response model on the treated only,
  score = ``P(y | x, treated)``. It ranks "sure things" first.

Every column of ``X`` passed to ``fit`` is a feature (``feature_names_``); ``predict_uplift``
selects those columns by name, so extra columns (ids) and column order do not matter. Missing
values are left to LightGBM. Fitting is deterministic for a seed and does not depend on the order
of the training rows: rows are put into a canonical order (by a hash of their content) first, so
LightGBM's row bagging sees the same data whatever order the warehouse returned it in.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import numpy as np
import pandas as pd
from pandas.api.types import is_bool_dtype, is_numeric_dtype

from orchestration.settings import prefer_sleeping_openmp_threads

prefer_sleeping_openmp_threads()  # before LightGBM loads libgomp

from lightgbm import LGBMClassifier, LGBMRegressor  # noqa: E402

LEARNERS: tuple[str, ...] = ("two_model", "class_transformation", "response", "x_learner")

DEFAULT_LGBM_PARAMS: dict[str, Any] = {
    "n_estimators": 200,
    "learning_rate": 0.05,
    "num_leaves": 31,
    "min_child_samples": 100,
    "subsample": 0.8,
    "subsample_freq": 1,
    "colsample_bytree": 0.8,
    "reg_lambda": 1.0,
    "n_jobs": 2,
    "deterministic": True,
    # LightGBM recommends fixing the histogram layout when deterministic=True
    "force_row_wise": True,
    "verbose": -1,
}


class UpliftLearner(Protocol):
    name: str
    feature_names_: list[str]
    params_: dict[str, Any]

    def fit(self, X: pd.DataFrame, treatment: np.ndarray, y: np.ndarray) -> UpliftLearner: ...

    def predict_uplift(self, X: pd.DataFrame) -> np.ndarray: ...


def lgbm_params(params: dict[str, Any] | None = None, seed: int = 42) -> dict[str, Any]:
    """The LightGBM parameters a learner uses: defaults, overridden by ``params``, seeded."""
    params = dict(params or {})
    clash = sorted({"random_state", "seed", "random_seed"} & params.keys())
    if clash:
        raise ValueError(f"set the seed with seed=..., not in params (got {clash})")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ValueError(f"seed must be an integer, got {seed!r}")
    return {**DEFAULT_LGBM_PARAMS, **params, "random_state": int(seed)}


# --------------------------------------------------------------------------------------------
# input checks


def _check_X(X: object) -> pd.DataFrame:
    if not isinstance(X, pd.DataFrame):
        raise TypeError(f"X must be a pandas DataFrame, got {type(X).__name__}")
    if X.shape[1] == 0:
        raise ValueError("X has no feature columns")
    if X.columns.has_duplicates:
        dups = sorted({str(c) for c in X.columns[X.columns.duplicated()]})
        raise ValueError(f"X has duplicate column names: {dups}")
    bad = [
        f"{c} ({X[c].dtype})"
        for c in X.columns
        if not (
            is_numeric_dtype(X[c])
            or is_bool_dtype(X[c])
            or isinstance(X[c].dtype, pd.CategoricalDtype)
        )
    ]
    if bad:
        raise ValueError(f"feature columns must be numeric, bool or pandas categorical; not: {bad}")
    return X


def _check_binary(name: str, values: object, n_rows: int) -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {arr.shape}")
    if len(arr) != n_rows:
        raise ValueError(f"length mismatch: X has {n_rows} rows, {name} has {len(arr)}")
    try:
        arr = arr.astype(np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be numeric 0/1, got dtype {arr.dtype}") from exc
    bad = ~np.isin(arr, (0.0, 1.0))
    if bad.any():
        found = np.unique(arr[bad])[:5].tolist()
        raise ValueError(f"{name} must contain only 0 and 1, found {found}")
    return arr.astype(np.int8)


def _check_fit_inputs(
    X: object, treatment: object, y: object
) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    X = _check_X(X)
    if len(X) == 0:
        raise ValueError("X has no rows")
    t = _check_binary("treatment", treatment, len(X))
    y_arr = _check_binary("y", y, len(X))
    n_t = int(t.sum())
    if n_t == 0 or n_t == len(t):
        arm = "control (treatment == 0)" if n_t == 0 else "treated (treatment == 1)"
        raise ValueError(f"only one treatment arm present: all {len(t)} rows are {arm}")
    return X, t, y_arr


def _check_both_classes(target: np.ndarray, what: str) -> None:
    if target.min() == target.max():
        raise ValueError(f"{what} has only one outcome class ({int(target[0])}); cannot fit")


def _canonical_order(X: pd.DataFrame, t: np.ndarray, y: np.ndarray) -> np.ndarray:
    """A row order that depends only on the rows' content, not on their input order.

    Rows are ordered by a 64-bit hash of their feature values, then treatment and outcome;
    rows that tie on all three are identical, so their relative order is immaterial.
    """
    row_hash = pd.util.hash_pandas_object(X, index=False).to_numpy()
    return np.lexsort((y, t, row_hash))


# --------------------------------------------------------------------------------------------
# learners


class _LGBMUpliftLearner:
    """Shared fitting machinery; subclasses implement ``_fit`` and ``_predict``."""

    name = ""

    def __init__(self, params: dict[str, Any] | None = None, seed: int = 42) -> None:
        self.seed = int(seed)
        self.params_: dict[str, Any] = lgbm_params(params, seed)
        self.feature_names_: list[str] = []
        self._fitted = False

    def __repr__(self) -> str:
        state = "fitted" if self._fitted else "unfitted"
        return f"{type(self).__name__}(name={self.name!r}, seed={self.seed}, {state})"

    def _classifier(self) -> LGBMClassifier:
        return LGBMClassifier(**self.params_)

    def fit(self, X: pd.DataFrame, treatment: np.ndarray, y: np.ndarray) -> _LGBMUpliftLearner:
        X, t, y_arr = _check_fit_inputs(X, treatment, y)
        order = _canonical_order(X, t, y_arr)
        X = X.iloc[order].reset_index(drop=True)
        t, y_arr = t[order], y_arr[order]
        self.feature_names_ = list(X.columns)
        self._fit(X, t, y_arr)
        self._fitted = True
        return self

    def _features(self, X: object) -> pd.DataFrame:
        if not self._fitted:
            raise RuntimeError(f"{self!r} is not fitted; call fit() first")
        if not isinstance(X, pd.DataFrame):
            raise TypeError(f"X must be a pandas DataFrame, got {type(X).__name__}")
        missing = [c for c in self.feature_names_ if c not in X.columns]
        if missing:
            raise ValueError(f"X lacks feature columns the learner was fitted on: {missing}")
        return X[self.feature_names_]

    def predict_uplift(self, X: pd.DataFrame) -> np.ndarray:
        """Predicted uplift (or, for ``response``, the response score) per row of ``X``."""
        features = self._features(X)
        if len(features) == 0:
            return np.empty(0)
        return np.asarray(self._predict(features), dtype=np.float64)

    def matrix_predictor(self) -> Callable[[np.ndarray], np.ndarray] | None:
        """``predict_uplift`` on a float64 matrix whose columns are ``feature_names_`` in order,
        straight through the fitted boosters: the same numbers (the sklearn wrapper hands the
        same matrix to the same ``Booster.predict``) without the wrapper's pandas conversion and
        checks, ~1 ms of the few a real-time decision costs. The boosters' own thread setting is
        kept: ``num_threads=1`` per call was faster alone but left the decisions around it ~2x
        slower in wall time (measured on the API). None when a booster was fitted on pandas
        categoricals (its input needs them)."""
        if not self._fitted:
            raise RuntimeError(f"{self!r} is not fitted; call fit() first")
        boosters = [model.booster_ for model in self._classifiers()]
        if any(getattr(b, "pandas_categorical", None) for b in boosters):
            return None
        combine = self._combine

        def predict(values: np.ndarray) -> np.ndarray:
            if len(values) == 0:
                return np.empty(0)
            return np.asarray(combine(*(b.predict(values) for b in boosters)), dtype=np.float64)

        return predict

    def _classifiers(self) -> list[LGBMClassifier]:
        raise NotImplementedError

    @staticmethod
    def _combine(*p1: np.ndarray) -> np.ndarray:
        """The uplift from each classifier's P(class 1), as ``_predict`` combines them."""
        raise NotImplementedError

    def _fit(self, X: pd.DataFrame, t: np.ndarray, y: np.ndarray) -> None:
        raise NotImplementedError

    def _predict(self, X: pd.DataFrame) -> np.ndarray:
        raise NotImplementedError


def _p1(model: LGBMClassifier, X: pd.DataFrame) -> np.ndarray:
    return model.predict_proba(X)[:, 1]


class TwoModelLearner(_LGBMUpliftLearner):
    """T-learner: a classifier per arm, uplift = ``p_treated - p_control``."""

    name = "two_model"

    def _fit(self, X: pd.DataFrame, t: np.ndarray, y: np.ndarray) -> None:
        treated = t == 1
        _check_both_classes(y[treated], "the treated arm")
        _check_both_classes(y[~treated], "the control arm")
        self.model_treated_ = self._classifier().fit(X[treated], y[treated])
        self.model_control_ = self._classifier().fit(X[~treated], y[~treated])

    def _predict(self, X: pd.DataFrame) -> np.ndarray:
        return _p1(self.model_treated_, X) - _p1(self.model_control_, X)

    def _classifiers(self) -> list[LGBMClassifier]:
        return [self.model_treated_, self.model_control_]

    @staticmethod
    def _combine(*p1: np.ndarray) -> np.ndarray:
        treated, control = p1
        return treated - control


class ClassTransformationLearner(_LGBMUpliftLearner):
    """Transformed target ``z = y*t + (1-y)*(1-t)``, uplift = ``2 * P(z=1) - 1``.

    The arms are reweighted to equal total weight (``propensity_`` = share treated), which makes
    the identity hold for unbalanced randomised experiments too.
    """

    name = "class_transformation"

    def _fit(self, X: pd.DataFrame, t: np.ndarray, y: np.ndarray) -> None:
        z = (y * t + (1 - y) * (1 - t)).astype(np.int8)
        _check_both_classes(z, "the transformed target z = y*t + (1-y)*(1-t)")
        self.propensity_ = float(t.mean())
        weight = np.where(t == 1, 0.5 / self.propensity_, 0.5 / (1.0 - self.propensity_))
        self.model_ = self._classifier().fit(X, z, sample_weight=weight)

    def _predict(self, X: pd.DataFrame) -> np.ndarray:
        return 2.0 * _p1(self.model_, X) - 1.0

    def _classifiers(self) -> list[LGBMClassifier]:
        return [self.model_]

    @staticmethod
    def _combine(*p1: np.ndarray) -> np.ndarray:
        return 2.0 * p1[0] - 1.0


class ResponseLearner(_LGBMUpliftLearner):
    """Baseline: ``P(y=1 | x, treated)`` from the treated only (not an uplift estimate)."""

    name = "response"

    def _fit(self, X: pd.DataFrame, t: np.ndarray, y: np.ndarray) -> None:
        treated = t == 1
        _check_both_classes(y[treated], "the treated arm")
        self.model_ = self._classifier().fit(X[treated], y[treated])

    def _predict(self, X: pd.DataFrame) -> np.ndarray:
        return _p1(self.model_, X)

    def _classifiers(self) -> list[LGBMClassifier]:
        return [self.model_]

    @staticmethod
    def _combine(*p1: np.ndarray) -> np.ndarray:
        return p1[0]


class XLearner(_LGBMUpliftLearner):
    """X-learner: outcome models per arm, then effect models on the imputed effects."""

    name = "x_learner"

    def _regressor(self) -> LGBMRegressor:
        return LGBMRegressor(**self.params_)

    def _fit(self, X: pd.DataFrame, t: np.ndarray, y: np.ndarray) -> None:
        treated = t == 1
        _check_both_classes(y[treated], "the treated arm")
        _check_both_classes(y[~treated], "the control arm")
        mu1 = self._classifier().fit(X[treated], y[treated])
        mu0 = self._classifier().fit(X[~treated], y[~treated])
        imputed_treated = y[treated] - _p1(mu0, X[treated])
        imputed_control = _p1(mu1, X[~treated]) - y[~treated]
        self.tau_treated_ = self._regressor().fit(X[treated], imputed_treated)
        self.tau_control_ = self._regressor().fit(X[~treated], imputed_control)
        self.propensity_ = float(treated.mean())

    def _predict(self, X: pd.DataFrame) -> np.ndarray:
        return self._combine(self.tau_control_.predict(X), self.tau_treated_.predict(X))

    def _classifiers(self) -> list:
        # the effect regressors: their boosters' predict is the regression value itself
        return [self.tau_control_, self.tau_treated_]

    def _combine(self, tau_control: np.ndarray, tau_treated: np.ndarray) -> np.ndarray:
        g = self.propensity_
        return g * tau_control + (1 - g) * tau_treated


_REGISTRY: dict[str, type[_LGBMUpliftLearner]] = {
    "two_model": TwoModelLearner,
    "class_transformation": ClassTransformationLearner,
    "response": ResponseLearner,
    "x_learner": XLearner,
}


def make_learner(name: str, params: dict[str, Any] | None = None, seed: int = 42) -> UpliftLearner:
    """A new, unfitted learner; ``params`` override ``DEFAULT_LGBM_PARAMS`` (LightGBM names)."""
    if name not in _REGISTRY:
        raise ValueError(f"unknown uplift learner {name!r}; choose one of {LEARNERS}")
    return _REGISTRY[name](params=params, seed=seed)
