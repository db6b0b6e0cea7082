"""Per-arm scores: batch (``scoring.arm_uplift``) and the decision API (``online_scoring``)
write the same columns and values, and an arm the champion gate does not offer scores NaN."""

from __future__ import annotations

import numpy as np
import pandas as pd

from orchestration.core.decisioning.decide import arm_score_column, score_column
from orchestration.core.decisioning.realtime.online_scoring import (
    Scorer,
    pyfunc_arm_predictor,
    pyfunc_predictor,
    score_frame,
)
from orchestration.core.decisioning.scoring import arm_uplift, best_offered
from orchestration.core.model.arms import MultiArmLearner

FEATURES = ["x", "z"]


class _Pyfunc:
    """What ``load_alias`` returns for our python model: ``unwrap_python_model()``."""

    def __init__(self, learner):
        self.learner, self.feature_columns = learner, FEATURES

    def unwrap_python_model(self):
        return self

    def predict(self, frame):
        return self.learner.predict_uplift(frame[FEATURES])


def _model() -> _Pyfunc:
    rng = np.random.default_rng(0)
    n = 3_000
    X = pd.DataFrame({"x": rng.normal(size=n), "z": rng.normal(size=n)})
    arms = rng.choice(np.array(["control", "offer", "reminder"], dtype=object), size=n)
    p = (
        0.2
        + np.where(arms == "offer", 0.2 * (X["x"] > 0), 0)
        + np.where(arms == "reminder", 0.1, 0)
    )
    y = (rng.random(n) < p).astype(int)
    learner = MultiArmLearner("two_model", {"n_estimators": 20}, seed=1).fit(X, arms, y)
    return _Pyfunc(learner)


def test_an_arm_not_offered_scores_nan_and_the_best_uplift_leaves_it_out():
    model = _model()
    features = pd.DataFrame({"x": [-1.0, 1.0, np.nan], "z": [0.0, 0.0, np.nan]})
    has = features.notna().any(axis=1).to_numpy()
    inputs = features[has]
    both = arm_uplift(model, inputs, has, ("offer", "reminder"))
    only_offer = arm_uplift(model, inputs, has, ("offer",))
    assert np.isnan(only_offer["reminder"]).all()
    np.testing.assert_array_equal(only_offer["offer"], both["offer"])
    assert np.isnan(both["offer"][2])  # no features: no score
    np.testing.assert_allclose(best_offered(only_offer)[:2], both["offer"][:2])
    np.testing.assert_allclose(
        best_offered(both)[:2], np.maximum(both["offer"], both["reminder"])[:2]
    )


def test_the_api_scores_the_arms_as_the_batch_does():
    model = _model()
    rng = np.random.default_rng(3)
    features = pd.DataFrame({"x": rng.normal(size=50), "z": rng.normal(size=50)})
    features["customer_id"] = np.arange(1, 51)
    has = np.ones(50, dtype=bool)
    batch = arm_uplift(model, features[FEATURES], has, ("offer",))
    scorer = Scorer(
        "uplift_model",
        "champion",
        "3",
        pyfunc_predictor(model),
        predict_arms=pyfunc_arm_predictor(model),
        arms=("offer", "reminder"),
        offered=("offer",),
    )
    api = score_frame(features, FEATURES, [scorer])
    ref = "uplift_model@champion"
    np.testing.assert_array_equal(api[arm_score_column(ref, "offer")], batch["offer"])
    assert api[arm_score_column(ref, "reminder")].isna().all()
    np.testing.assert_array_equal(api[score_column(ref)], best_offered(batch))
