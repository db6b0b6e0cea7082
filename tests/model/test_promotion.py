"""The promotion gate: paired comparison on the same holdout, alias moves, manual override."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from orchestration.core.model.learners import make_learner
from orchestration.core.model.promotion import (
    MANUAL_OVERRIDE,
    PROMOTED_BY_TAG,
    PROMOTION_GATE,
    apply_promotion,
    compare_on_holdout,
    holdout_rows,
    log_comparison,
    paired_bootstrap_indices,
)
from orchestration.core.model.training import feature_matrix, train_and_evaluate
from tests.model.conftest import FAST, FEATURES, simulate


@pytest.fixture(scope="module")
def split():
    frame = simulate(16_000, seed=1)
    holdout = holdout_rows(frame)
    train = frame[~frame["customer_id"].isin(holdout["customer_id"])]
    return frame, train, holdout


def _fit(train: pd.DataFrame, features: list[str], seed: int = 7):
    return make_learner("two_model", FAST, seed=seed).fit(
        feature_matrix(train, features), train["is_treated"].to_numpy(), train["label"].to_numpy()
    )


@pytest.fixture(scope="module")
def learners(split):
    _, train, _ = split
    return {
        "good": _fit(train, FEATURES),
        "good_other_seed": _fit(train, FEATURES, seed=8),
        "blind": _fit(train, ["noise"]),  # sees no feature that drives the effect
    }


def test_the_holdout_is_the_one_train_and_evaluate_uses(split):
    frame, _, holdout = split
    result = train_and_evaluate(frame, FEATURES, params=FAST, n_boot=0)
    assert set(result.holdout["customer_id"]) == set(holdout["customer_id"])
    assert len(result.holdout) == len(holdout)


def test_bootstrap_indices_are_paired_and_keep_the_arm_sizes():
    t = np.array([1, 1, 1, 0, 0, 1, 0, 1])
    idx = paired_bootstrap_indices(t, n_boot=50, seed=3)
    assert idx.shape == (50, len(t))
    assert (t[idx].sum(axis=1) == t.sum()).all()
    assert np.array_equal(idx, paired_bootstrap_indices(t, n_boot=50, seed=3))


def test_a_clearly_better_challenger_is_promoted(split, learners):
    _, _, holdout = split
    decision = compare_on_holdout(learners["blind"], learners["good"], holdout, FEATURES)
    assert decision.challenger_qini > decision.champion_qini
    assert decision.qini_diff_ci_low > 0
    assert decision.qini_diff_ci_low <= decision.qini_diff <= decision.qini_diff_ci_high
    assert decision.promote
    assert decision.holdout_rows == len(holdout)


def test_an_identical_challenger_is_not_promoted(split, learners):
    _, _, holdout = split
    decision = compare_on_holdout(learners["good"], learners["good"], holdout, FEATURES)
    assert decision.qini_diff == 0.0
    assert (decision.qini_diff_ci_low, decision.qini_diff_ci_high) == (0.0, 0.0)
    assert not decision.promote


def test_an_equally_good_challenger_has_an_interval_around_zero(split, learners):
    _, _, holdout = split
    decision = compare_on_holdout(learners["good"], learners["good_other_seed"], holdout, FEATURES)
    assert decision.qini_diff_ci_low < 0 < decision.qini_diff_ci_high
    assert not decision.promote


def test_a_worse_challenger_is_not_promoted(split, learners):
    _, _, holdout = split
    decision = compare_on_holdout(learners["good"], learners["blind"], holdout, FEATURES)
    assert decision.qini_diff < 0
    assert decision.qini_diff_ci_high < 0
    assert not decision.promote


def test_the_margin_holds_back_a_small_win(split, learners):
    _, _, holdout = split
    base = compare_on_holdout(learners["blind"], learners["good"], holdout, FEATURES)
    held = compare_on_holdout(
        learners["blind"], learners["good"], holdout, FEATURES, margin=base.qini_diff + 0.01
    )
    assert base.promote and not held.promote


def test_a_holdout_with_one_arm_cannot_be_compared(split, learners):
    _, _, holdout = split
    with pytest.raises(ValueError, match="treated and control"):
        compare_on_holdout(
            learners["good"], learners["blind"], holdout[holdout["is_treated"] == 1], FEATURES
        )


# --------------------------------------------------------------------------------------------
# in the MLflow registry (temporary sqlite store)


def _register(settings, frame: pd.DataFrame, features: list[str]):
    from orchestration.core.model.registry import log_and_register

    result = train_and_evaluate(frame, features, params=FAST, n_boot=0)
    return log_and_register(
        settings, result, frame, reference_features=frame[features], tags={"test": "promotion"}
    )


def _registry(settings):
    from orchestration.core.model.registry import CHALLENGER, CHAMPION, alias_version, configure

    client = configure(settings)
    name = settings.model_name
    return client, alias_version(client, name, CHAMPION), alias_version(client, name, CHALLENGER)


def _compare_registered(settings, frame):
    from orchestration.core.model.registry import CHALLENGER, describe_alias, load_alias

    return compare_on_holdout(
        load_alias(settings),
        load_alias(settings, CHALLENGER),
        holdout_rows(frame),
        FEATURES,
        champion_version=describe_alias(settings).version,
        challenger_version=describe_alias(settings, CHALLENGER).version,
    )


def test_registry_promotion_moves_the_alias_and_logs_the_comparison(mlflow_settings, split):
    frame, _, _ = split
    first = _register(mlflow_settings, frame, ["noise"])
    second = _register(mlflow_settings, frame, FEATURES)
    assert (first.aliases, second.aliases) == (("champion",), ("challenger",))

    decision = _compare_registered(mlflow_settings, frame)
    assert decision.promote, decision.reason
    log_comparison(mlflow_settings, second.run_id, decision)
    outcome = apply_promotion(mlflow_settings, decision, override=None)

    client, champion, challenger = _registry(mlflow_settings)
    assert outcome.changed and outcome.promoted_by == PROMOTION_GATE
    assert (champion, challenger) == (second.version, None)
    version = client.get_model_version(mlflow_settings.model_name, second.version)
    assert version.tags[PROMOTED_BY_TAG] == PROMOTION_GATE
    run = client.get_run(second.run_id)
    assert run.data.metrics["promotion_qini_diff"] == pytest.approx(decision.qini_diff)
    assert run.data.metrics["promotion_qini_diff_ci_low"] > 0
    assert run.data.tags["promotion_decision"] == "promoted"
    print(
        f"\ncomparison: champion qini {decision.champion_qini:.4f}, challenger qini {decision.challenger_qini:.4f}, diff {decision.qini_diff:.4f} "
        f"95% CI [{decision.qini_diff_ci_low:.4f}, {decision.qini_diff_ci_high:.4f}] on {decision.holdout_rows} holdout rows"
    )


def test_registry_a_worse_challenger_stays_challenger_unless_overridden(mlflow_settings, split):
    frame, _, _ = split
    first = _register(mlflow_settings, frame, FEATURES)
    second = _register(mlflow_settings, frame, ["noise"])

    decision = _compare_registered(mlflow_settings, frame)
    assert not decision.promote
    outcome = apply_promotion(mlflow_settings, decision, override=None)
    client, champion, challenger = _registry(mlflow_settings)
    assert not outcome.changed
    assert (champion, challenger) == (first.version, second.version)
    assert PROMOTED_BY_TAG not in client.get_model_version("uplift_model", second.version).tags

    # the manual override forces the alias whatever the gate said, and says so on the version
    forced = apply_promotion(mlflow_settings, decision, override=second.version)
    client, champion, challenger = _registry(mlflow_settings)
    assert forced.changed and forced.promoted_by == MANUAL_OVERRIDE
    assert (champion, challenger) == (second.version, None)
    tags = client.get_model_version("uplift_model", second.version).tags
    assert tags[PROMOTED_BY_TAG] == MANUAL_OVERRIDE


def test_registry_override_of_an_unknown_version_raises(mlflow_settings, split):
    from mlflow.exceptions import MlflowException

    frame, _, _ = split
    _register(mlflow_settings, frame, FEATURES)
    with pytest.raises(MlflowException):
        apply_promotion(mlflow_settings, None, override="42")
    _, champion, _ = _registry(mlflow_settings)
    assert champion == "1"
