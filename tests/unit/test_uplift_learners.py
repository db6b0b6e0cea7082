import pickle

import numpy as np
import pandas as pd
import pytest

from orchestration.core.model.learners import (
    DEFAULT_LGBM_PARAMS,
    LEARNERS,
    ClassTransformationLearner,
    make_learner,
)
from orchestration.core.model.metrics import qini_coefficient

SMALL = {"n_estimators": 40, "min_child_samples": 50}
# half the default trees at twice the learning rate: same picture, half the test time
QUICK = {"n_estimators": 100, "learning_rate": 0.1}


def _simulate(n: int, seed: int, treated_share: float = 0.5):
    """A randomised campaign with a known effect.

    ``x_effect`` drives the treatment effect only, ``x_base`` the baseline response only
    (high ``x_base`` = "sure things" who buy anyway), ``noise`` nothing (and has gaps).
    """
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(
        {
            "x_effect": rng.normal(size=n),
            "x_base": rng.normal(size=n),
            "noise": rng.normal(size=n),
        }
    )
    X.loc[rng.random(n) < 0.1, "noise"] = np.nan
    t = (rng.random(n) < treated_share).astype(int)
    p_control = 0.05 + 0.6 / (1 + np.exp(-2.5 * X["x_base"].to_numpy()))
    tau = 0.04 + 0.12 * np.tanh(2 * X["x_effect"].to_numpy())
    y = (rng.random(n) < p_control + t * tau).astype(int)
    return X, t, y, tau


@pytest.fixture(scope="module")
def world():
    train = _simulate(20_000, seed=1)
    test = _simulate(20_000, seed=2)
    fitted = {name: make_learner(name, QUICK, seed=7).fit(*train[:3]) for name in LEARNERS}
    return train, test, fitted


@pytest.fixture(scope="module")
def small_data():
    return _simulate(4_000, seed=11)


def _spearman(a, b) -> float:
    return float(pd.Series(a).corr(pd.Series(b), method="spearman"))


# --------------------------------------------------------------------------------------------
# does it find the effect?


@pytest.mark.parametrize("name", ["two_model", "class_transformation", "x_learner"])
def test_uplift_learners_rank_by_the_effect(world, name):
    _, (X, t, y, tau), fitted = world
    uplift = fitted[name].predict_uplift(X)
    oracle = qini_coefficient(y, t, tau)
    assert qini_coefficient(y, t, uplift) > 0.5 * oracle > 0.02
    assert _spearman(uplift, X["x_effect"]) > 0.5
    assert abs(_spearman(uplift, X["x_base"])) < 0.15


def test_response_baseline_targets_sure_things_and_loses_to_uplift(world):
    _, (X, t, y, _), fitted = world
    score = fitted["response"].predict_uplift(X)
    assert _spearman(score, X["x_base"]) > 0.7
    assert _spearman(score, X["x_base"]) > _spearman(score, X["x_effect"])
    q_response = qini_coefficient(y, t, score)
    for name in ("two_model", "class_transformation", "x_learner"):
        assert q_response < 0.75 * qini_coefficient(y, t, fitted[name].predict_uplift(X))


def test_class_transformation_corrects_for_unbalanced_arms():
    # 20 % treated, constant effect +0.10 on a 0.30 base rate. Without the reweighting,
    # 2 * P(z=1) - 1 would average 2 * (0.2 * 0.4 + 0.8 * 0.7) - 1 = 0.28.
    rng = np.random.default_rng(5)
    n = 20_000
    X = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n)})
    t = (rng.random(n) < 0.2).astype(int)
    y = (rng.random(n) < 0.3 + 0.1 * t).astype(int)
    learner = make_learner("class_transformation", SMALL).fit(X, t, y)
    ate = y[t == 1].mean() - y[t == 0].mean()
    assert isinstance(learner, ClassTransformationLearner)
    assert learner.propensity_ == pytest.approx(t.mean())
    assert learner.predict_uplift(X).mean() == pytest.approx(ate, abs=0.03)


def test_two_model_uplift_is_difference_of_arm_models(world):
    _, (X, *_), fitted = world
    X = X.head(2000)
    learner = fitted["two_model"]
    p_t = learner.model_treated_.predict_proba(X)[:, 1]
    p_c = learner.model_control_.predict_proba(X)[:, 1]
    np.testing.assert_allclose(learner.predict_uplift(X), p_t - p_c)


# --------------------------------------------------------------------------------------------
# invariances and reproducibility


@pytest.mark.parametrize("name", LEARNERS)
def test_fit_does_not_depend_on_training_row_order_or_index(small_data, name):
    X, t, y, _ = small_data
    reference = make_learner(name, SMALL).fit(X, t, y).predict_uplift(X)
    perm = np.random.default_rng(0).permutation(len(X))
    X_shuffled = X.iloc[perm].set_index(pd.Index(perm * 10 + 3))  # a different index too
    shuffled = make_learner(name, SMALL).fit(X_shuffled, t[perm], pd.Series(y[perm]))
    np.testing.assert_array_equal(shuffled.predict_uplift(X), reference)


@pytest.mark.parametrize("name", LEARNERS)
def test_predictions_follow_rows_and_ignore_non_feature_columns(small_data, name):
    X, t, y, _ = small_data
    learner = make_learner(name, SMALL).fit(X, t, y)
    reference = learner.predict_uplift(X)
    perm = np.random.default_rng(1).permutation(len(X))
    np.testing.assert_array_equal(learner.predict_uplift(X.iloc[perm]), reference[perm])
    # an id column that was not a feature: its values and position do not matter
    with_ids = X.assign(customer_id=np.arange(len(X))[::-1])
    with_ids = with_ids[["customer_id", *X.columns[::-1]]]
    np.testing.assert_array_equal(learner.predict_uplift(with_ids), reference)
    other_ids = with_ids.assign(customer_id=np.random.default_rng(2).integers(0, 10**9, len(X)))
    np.testing.assert_array_equal(learner.predict_uplift(other_ids), reference)


@pytest.mark.parametrize("name", LEARNERS)
def test_same_seed_same_predictions_other_seed_differs(small_data, name):
    X, t, y, _ = small_data
    a = make_learner(name, SMALL, seed=3).fit(X, t, y).predict_uplift(X)
    b = make_learner(name, SMALL, seed=3).fit(X, t, y).predict_uplift(X)
    c = make_learner(name, SMALL, seed=4).fit(X, t, y).predict_uplift(X)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


@pytest.mark.parametrize("name", LEARNERS)
def test_fitted_learner_pickles(small_data, name):
    X, t, y, _ = small_data
    learner = make_learner(name, SMALL).fit(X, t, y)
    expected = learner.predict_uplift(X)
    restored = pickle.loads(pickle.dumps(learner))
    np.testing.assert_array_equal(restored.predict_uplift(X), expected)
    cloudpickle = pytest.importorskip("cloudpickle")
    restored = cloudpickle.loads(cloudpickle.dumps(learner))
    np.testing.assert_array_equal(restored.predict_uplift(X), expected)
    assert restored.feature_names_ == ["x_effect", "x_base", "noise"]


def test_missing_values_are_handled(world):
    _, (X, *_), fitted = world
    gaps = X.head(5).copy()
    gaps.loc[:, :] = np.nan
    for learner in fitted.values():
        assert np.isfinite(learner.predict_uplift(gaps)).all()
    assert X["noise"].isna().any()  # and training saw gaps as well


def test_categorical_features_are_supported(small_data):
    X, t, y, _ = small_data
    X = X.assign(segment=pd.Categorical(np.where(X["x_base"] > 0, "loyal", "new")))
    learner = make_learner("two_model", SMALL).fit(X, t, y)
    assert np.isfinite(learner.predict_uplift(X)).all()


# --------------------------------------------------------------------------------------------
# interface


def test_make_learner_names_params_and_features(small_data):
    X, t, y, _ = small_data
    for name in LEARNERS:
        learner = make_learner(name, {"n_estimators": 10, "num_leaves": 7}, seed=9)
        assert learner.name == name
        assert learner.params_["n_estimators"] == 10
        assert learner.params_["num_leaves"] == 7
        assert learner.params_["random_state"] == 9
        assert learner.params_["deterministic"] is True
        assert learner.params_["learning_rate"] == DEFAULT_LGBM_PARAMS["learning_rate"]
        assert learner.fit(X, t, y) is learner
        assert learner.feature_names_ == ["x_effect", "x_base", "noise"]
    assert make_learner("two_model").params_["n_estimators"] == 200


def test_make_learner_rejects_unknown_names_and_seed_in_params():
    with pytest.raises(ValueError, match="unknown uplift learner 's_learner'"):
        make_learner("s_learner")
    with pytest.raises(ValueError, match="seed=..."):
        make_learner("two_model", {"random_state": 1})


def test_predict_input_errors(small_data):
    X, t, y, _ = small_data
    learner = make_learner("response", SMALL)
    with pytest.raises(RuntimeError, match="not fitted"):
        learner.predict_uplift(X)
    learner.fit(X, t, y)
    with pytest.raises(ValueError, match=r"lacks feature columns .*'x_base'"):
        learner.predict_uplift(X.drop(columns=["x_base"]))
    with pytest.raises(TypeError, match="pandas DataFrame"):
        learner.predict_uplift(X.to_numpy())
    assert learner.predict_uplift(X.head(0)).shape == (0,)


def test_fit_input_errors(small_data):
    X, t, y, _ = small_data
    learner = make_learner("two_model", SMALL)
    with pytest.raises(ValueError, match="length mismatch"):
        learner.fit(X, t[:-1], y)
    with pytest.raises(ValueError, match=r"treatment must contain only 0 and 1, found \[2.0\]"):
        learner.fit(X, np.where(t == 1, 2, 0), y)
    with pytest.raises(ValueError, match="only one treatment arm present"):
        learner.fit(X, np.ones_like(t), y)
    with pytest.raises(ValueError, match="y must contain only 0 and 1"):
        learner.fit(X, t, y * 3)
    with pytest.raises(ValueError, match="the control arm has only one outcome class"):
        learner.fit(X, t, np.where(t == 1, y, 0))
    with pytest.raises(ValueError, match=r"must be numeric.*name \(object\)"):
        learner.fit(X.assign(name="a"), t, y)
    with pytest.raises(TypeError, match="pandas DataFrame"):
        learner.fit(X.to_numpy(), t, y)


# --------------------------------------------------------------------------------------------
# the real-time path: the boosters on a numpy matrix


@pytest.mark.parametrize("name", LEARNERS)
def test_matrix_predictor_gives_the_learners_own_scores(world, name):
    _, (X, *_), fitted = world
    learner = fitted[name]
    rows = X.head(500).copy()
    rows.iloc[:3] = np.nan  # all missing, as a customer without features
    expected = learner.predict_uplift(rows)
    predict = learner.matrix_predictor()
    matrix = rows[learner.feature_names_].to_numpy(dtype=np.float64)
    np.testing.assert_allclose(predict(matrix), expected, rtol=0, atol=1e-12)
    for i in (0, 5, 499):  # one row at a time, as one request
        np.testing.assert_allclose(predict(matrix[i : i + 1]), expected[i : i + 1], atol=1e-12)
    assert predict(matrix[:0]).shape == (0,)


def test_matrix_predictor_declines_a_learner_fitted_on_categoricals(small_data):
    X, t, y, _ = small_data
    X = X.assign(segment=pd.Categorical(np.where(X["x_base"] > 0, "loyal", "new")))
    assert make_learner("two_model", SMALL).fit(X, t, y).matrix_predictor() is None
