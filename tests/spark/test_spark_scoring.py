"""Batch scoring with mlflow's spark_udf gives the same scores as pandas scoring.

The oracle is the fitted learner itself (``predict_uplift`` on the float feature matrix), not
either scoring path; both paths must agree with it within 1e-9, rows without features stay NaN,
and the scores the policy step reads are the Parquet output Spark wrote.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tests.registered_models import register_champion

pytest.importorskip("pyspark", reason="the spark extra is not installed (make setup-spark)")

pytestmark = [pytest.mark.spark, pytest.mark.slow]

FEATURES = ["recency", "frequency", "monetary", "opens", "is_opted_in"]
ROWS = 4_000


def _world(seed: int = 5) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(rng.normal(size=(ROWS, len(FEATURES))), columns=FEATURES)
    X["is_opted_in"] = (X["is_opted_in"] > 0).astype(float)
    treated = rng.integers(0, 2, ROWS)
    y = ((X["recency"] + treated * X["frequency"] + rng.normal(size=ROWS)) > 0).astype(int)
    return X, treated, y.to_numpy()


@pytest.fixture
def spark_settings(data_dir, monkeypatch):
    from orchestration.settings import Settings

    monkeypatch.setenv("CAMPAIGN_PROFILE", "spark")
    return Settings.from_env()


def test_spark_udf_scores_equal_pandas_scores(spark_settings, data_dir):
    from orchestration.core.decisioning.scoring import score_with_aliases
    from orchestration.core.decisioning.spark_scoring import score_on_spark
    from orchestration.core.model.learners import make_learner

    X, treated, y = _world()
    learner = make_learner("two_model", params={"n_estimators": 30}).fit(X, treated, y)
    version = register_champion(spark_settings, learner, FEATURES)
    features = X.assign(customer_id=np.arange(1, ROWS + 1))
    features.loc[:9, FEATURES] = np.nan  # ten customers without features: never scored
    refs = [(spark_settings.model_name, "champion")]
    score = f"uplift__{spark_settings.model_name}@champion"

    on_pandas = score_with_aliases(spark_settings, features, FEATURES, refs)
    path = data_dir / "pipeline" / "customer_scores.parquet"
    on_spark = score_on_spark(spark_settings, features, FEATURES, refs, path)

    oracle = learner.predict_uplift(X.iloc[10:].astype("float64"))
    spark_scores = on_spark.scores.set_index("customer_id")[score]
    pandas_scores = on_pandas.scores.set_index("customer_id")[score]
    assert spark_scores.index.tolist() == list(range(1, ROWS + 1))
    assert spark_scores.iloc[:10].isna().all() and pandas_scores.iloc[:10].isna().all()
    assert np.abs(spark_scores.iloc[10:].to_numpy() - oracle).max() < 1e-9
    assert np.abs(spark_scores.to_numpy()[10:] - pandas_scores.to_numpy()[10:]).max() < 1e-9
    assert (
        on_spark.versions
        == on_pandas.versions
        == {f"{spark_settings.model_name}@champion": version}
    )
    assert on_spark.scored == on_pandas.scored
    # what the policy step reads is Spark's own output: a Parquet directory written by Spark
    assert path.is_dir() and (path / "_SUCCESS").exists()
    read_back = pd.read_parquet(path).sort_values("customer_id", ignore_index=True)
    pd.testing.assert_frame_equal(read_back, on_spark.scores)


def test_a_missing_alias_is_reported_not_scored(spark_settings, data_dir):
    from orchestration.core.decisioning.spark_scoring import score_on_spark

    X, _, _ = _world()
    features = X.assign(customer_id=np.arange(1, ROWS + 1))
    result = score_on_spark(
        spark_settings,
        features,
        FEATURES,
        [(spark_settings.model_name, "champion")],
        data_dir / "pipeline" / "customer_scores.parquet",
    )
    assert list(result.unavailable) == [f"{spark_settings.model_name}@champion"]
    assert result.versions == {}
    assert result.scores.columns.tolist() == ["customer_id"]
