"""Behavioural tests of the learners: invariance, direction, and the learner setting."""

from __future__ import annotations

import numpy as np
import pytest

from orchestration.core.model.learners import make_learner
from orchestration.core.model.training import feature_matrix
from orchestration.settings import LEARNERS, Settings
from tests.model.conftest import FAST, FEATURES, simulate


@pytest.fixture(scope="module", params=["two_model", "class_transformation"])
def fitted(request):
    train = simulate(12_000, seed=3)
    learner = make_learner(request.param, FAST, seed=5).fit(
        feature_matrix(train, FEATURES), train["is_treated"].to_numpy(), train["label"].to_numpy()
    )
    return learner, simulate(3_000, seed=4)


def test_scores_do_not_depend_on_the_customer_id(fitted):
    learner, score = fitted
    relabelled = score.assign(
        customer_id=np.random.default_rng(0).permutation(score["customer_id"])
    )
    assert not (relabelled["customer_id"] == score["customer_id"]).all()
    np.testing.assert_array_equal(learner.predict_uplift(score), learner.predict_uplift(relabelled))


def test_shuffling_the_scoring_rows_only_reorders_the_scores(fitted):
    learner, score = fitted
    order = np.random.default_rng(1).permutation(len(score))
    shuffled = score.iloc[order].reset_index(drop=True)
    np.testing.assert_array_equal(
        learner.predict_uplift(shuffled), learner.predict_uplift(score)[order]
    )
    # the column order does not matter either
    np.testing.assert_array_equal(
        learner.predict_uplift(score[FEATURES[::-1]]), learner.predict_uplift(score)
    )


def test_more_of_the_effect_driver_means_more_predicted_uplift(fitted):
    learner, score = fitted
    before = learner.predict_uplift(score)
    after = learner.predict_uplift(score.assign(x_effect=score["x_effect"] + 1.0))
    assert after.mean() - before.mean() > 0.03  # the generator's effect rises ~0.1 on average
    assert (after > before).mean() > 0.6


def test_the_predicted_uplift_follows_the_true_effect(fitted):
    from tests.model.conftest import true_uplift

    learner, score = fitted
    predicted = learner.predict_uplift(score)
    truth = true_uplift(score["x_effect"].to_numpy())
    assert np.corrcoef(predicted, truth)[0, 1] > 0.5


def test_the_learner_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("CAMPAIGN_LEARNER", "class_transformation")
    monkeypatch.setenv("CAMPAIGN_PROMOTION_MARGIN", "0.01")
    s = Settings.from_env()
    assert s.learner == "class_transformation"
    assert s.promotion_margin == 0.01
    monkeypatch.delenv("CAMPAIGN_LEARNER")
    monkeypatch.delenv("CAMPAIGN_PROMOTION_MARGIN")
    s = Settings.from_env()
    assert (s.learner, s.promotion_margin, s.min_lift, s.promote_override) == (
        "two_model",
        0.0,
        0.0,
        None,
    )


def test_an_unknown_learner_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("CAMPAIGN_LEARNER", "xgboost")
    with pytest.raises(ValueError, match="CAMPAIGN_LEARNER") as error:
        Settings.from_env()
    for name in LEARNERS:
        assert name in str(error.value)


def test_a_non_numeric_margin_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("CAMPAIGN_PROMOTION_MARGIN", "a lot")
    with pytest.raises(ValueError, match="CAMPAIGN_PROMOTION_MARGIN"):
        Settings.from_env()


def test_the_settings_know_every_learner():
    from orchestration.core.model.learners import LEARNERS as IMPLEMENTED

    assert LEARNERS == IMPLEMENTED
