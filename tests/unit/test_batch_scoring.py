"""Scoring the scoring features batch by batch (``scoring.score_parquet``, what the pipeline's
customer_scores runs) gives every customer, in file order, the score the fitted learner gives
its row; rows without features stay NaN. The oracle is the learner itself on the whole frame."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from orchestration.core.decisioning import scoring
from orchestration.core.decisioning.decide import arm_score_column, score_column, version_column
from orchestration.core.model.arms import MultiArmLearner
from tests.registered_models import register_champion

FEATURES = ["recency", "frequency", "opens"]
ROWS = 2_500
BATCH = 700  # four batches, the last one short
WITHOUT_FEATURES = [0, 701, 2_499]  # in the first, second and last batch


def _features(seed: int = 4) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(rng.normal(size=(ROWS, len(FEATURES))), columns=FEATURES)
    frame = X.assign(customer_id=np.arange(10_001, 10_001 + ROWS)[::-1])  # not sorted
    frame.loc[WITHOUT_FEATURES, FEATURES] = np.nan
    frame["opens"] = frame["opens"].round().astype("Int64")  # Feast hands back nullable ints
    return X, frame


def test_batches_of_a_parquet_file_score_like_the_learner_on_every_row(data_dir, tmp_path):
    from orchestration.core.model.learners import make_learner
    from orchestration.settings import Settings

    settings = Settings.from_env()
    X, frame = _features()
    rng = np.random.default_rng(1)
    treated = rng.integers(0, 2, ROWS)
    y = ((X["recency"] + treated * X["frequency"] + rng.normal(size=ROWS)) > 0).astype(int)
    learner = make_learner("two_model", params={"n_estimators": 20}).fit(X, treated, y)
    version = register_champion(settings, learner, FEATURES)
    path = tmp_path / "scoring_features.parquet"
    frame.assign(extra="not read").to_parquet(path, index=False)
    champion = (settings.model_name, "champion")
    missing = ("no_such_model", "champion")

    result = scoring.score_parquet(settings, path, FEATURES, [champion, missing], batch_rows=BATCH)

    ref = f"{settings.model_name}@champion"
    scores = result.scores
    assert scores["customer_id"].tolist() == frame["customer_id"].tolist()
    has = frame[FEATURES].notna().any(axis=1).to_numpy()
    oracle = learner.predict_uplift(frame.loc[has, FEATURES].astype("float64"))
    np.testing.assert_allclose(scores.loc[has, score_column(ref)], oracle, rtol=0, atol=1e-12)
    assert scores.loc[~has, score_column(ref)].isna().all()
    assert set(scores[version_column(ref)]) == {version}
    assert result.scored[ref] == ROWS - len(WITHOUT_FEATURES)
    assert result.mean_uplift[ref] == pytest.approx(float(np.mean(oracle)))
    assert list(result.unavailable) == ["no_such_model@champion"]
    assert not any("no_such_model" in c for c in scores.columns)


class _Pyfunc:
    """What ``load_alias`` returns for our python model: ``unwrap_python_model()``."""

    def __init__(self, learner):
        self.learner = learner

    def unwrap_python_model(self):
        return self


def test_a_multi_arm_model_scores_each_arm_and_the_best_offered_one_across_batches(
    monkeypatch, tmp_path
):
    X, frame = _features(seed=8)
    rng = np.random.default_rng(2)
    arms = rng.choice(np.array(["control", "offer", "reminder"], dtype=object), size=ROWS)
    y = (rng.random(ROWS) < 0.2 + 0.2 * (arms == "offer") * (X["recency"] > 0)).astype(int)
    learner = MultiArmLearner("two_model", {"n_estimators": 20}, seed=1).fit(X, arms, y)
    ref = "uplift_model@champion"
    loaded = scoring._LoadedModel(ref, "3", _Pyfunc(learner), ("offer", "reminder"), ("offer",))
    monkeypatch.setattr(scoring, "_load_models", lambda settings, refs, result: [loaded])
    path = tmp_path / "scoring_features.parquet"
    frame.to_parquet(path, index=False)

    scores = scoring.score_parquet(None, path, FEATURES, [], batch_rows=BATCH).scores

    has = frame[FEATURES].notna().any(axis=1).to_numpy()
    per_arm = learner.predict_arm_uplift(frame.loc[has, FEATURES].astype("float64"))
    offer = scores[arm_score_column(ref, "offer")]
    np.testing.assert_allclose(offer[has], per_arm["offer"], rtol=0, atol=1e-12)
    assert offer[~has].isna().all()
    assert scores[arm_score_column(ref, "reminder")].isna().all()  # not offered by the gate
    np.testing.assert_allclose(scores.loc[has, score_column(ref)], per_arm["offer"], atol=1e-12)


def test_batches_that_do_not_add_up_to_the_announced_rows_are_refused(monkeypatch):
    monkeypatch.setattr(scoring, "_load_models", lambda settings, refs, result: [])
    frame = pd.DataFrame({"customer_id": [1, 2], "recency": [1.0, 2.0]})
    with pytest.raises(ValueError, match="held 2 rows, 3 were announced"):
        scoring.score_batches(None, [frame], 3, ["recency"], [])
    with pytest.raises(ValueError, match="more than the 1 rows"):
        scoring.score_batches(None, [frame], 1, ["recency"], [])
