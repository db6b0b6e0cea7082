"""Batch scoring on Spark (the spark profile): the champion (and any challenger) as
``mlflow.pyfunc.spark_udf`` over a Spark frame of the scoring features, written by Spark.

The same models and the same inputs as :func:`scoring.score_with_aliases` (the float feature
matrix of the rows that have features; rows without get NaN), so the scores are the same: a
test holds the two within 1e-9. Each alias is resolved to its version number first and the UDF
loads ``models:/<name>/<version>``, so every executor scores with the same version even if the
alias moves meanwhile. ``env_manager="local"``: the executors' Python is this environment
(``spark.pyspark.python``), no per-model virtualenv is built.

Spark writes the scores as a Parquet directory at ``path`` (the file the local profile writes
has the same name); the policy step reads that output.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd

from orchestration.core.decisioning.decide import model_ref, score_column, version_column
from orchestration.core.decisioning.scoring import ScoringResult
from orchestration.settings import Settings

HAS_FEATURES = "_has_features"


def _resolve_versions(settings: Settings, refs: list[tuple[str, str]], result: ScoringResult):
    """``{ref: (model uri pinned to its version, version)}``; unavailable refs are recorded."""
    from orchestration.core.model.registry import configure

    client = configure(settings)
    resolved: dict[str, tuple[str, str]] = {}
    for name, alias in refs:
        ref = model_ref(name, alias)
        try:
            version = str(client.get_model_version_by_alias(name, alias).version)
        except Exception as exc:  # noqa: BLE001 - a missing alias or model is reported, not fatal
            result.unavailable[ref] = str(exc).splitlines()[0][:300]
            continue
        resolved[ref] = (f"models:/{name}/{version}", version)
    return resolved


def _spark_inputs(spark, features: pd.DataFrame, feature_columns: list[str]):
    from orchestration.core.model.training import feature_matrix

    inputs = feature_matrix(features, feature_columns)
    inputs.insert(0, "customer_id", features["customer_id"].astype("int64").to_numpy())
    inputs[HAS_FEATURES] = features[feature_columns].notna().any(axis=1).to_numpy()
    return spark.createDataFrame(inputs)


def score_on_spark(
    settings: Settings,
    features: pd.DataFrame,
    feature_columns: list[str],
    refs: list[tuple[str, str]],
    path: Path,
) -> ScoringResult:
    """Score every ``models:/<name>@<alias>`` of ``refs`` with Spark; write the scores to
    ``path`` (Parquet, written by Spark) and return them read back from there."""
    import mlflow.pyfunc
    from pyspark.sql import functions as F

    from orchestration.core.common.spark import spark_session
    from orchestration.core.model.registry import configure

    started = time.perf_counter()
    result = ScoringResult(scores=pd.DataFrame({"customer_id": pd.Series(dtype="int64")}))
    spark = spark_session(settings)
    configure(settings)
    frame = _spark_inputs(spark, features, feature_columns)
    has_features = F.col(HAS_FEATURES)
    outputs = [F.col("customer_id")]
    for ref, (uri, version) in _resolve_versions(settings, refs, result).items():
        udf = mlflow.pyfunc.spark_udf(spark, uri, result_type="double", env_manager="local")
        score = F.when(has_features, udf(*[F.col(c) for c in feature_columns]))
        outputs += [
            F.coalesce(score, F.lit(float("nan"))).alias(score_column(ref)),
            F.lit(version).alias(version_column(ref)),
        ]
        result.versions[ref] = version
    frame.select(*outputs).write.mode("overwrite").parquet(str(path))
    scores = pd.read_parquet(path).sort_values("customer_id", ignore_index=True)
    rows_with_features = int(features[feature_columns].notna().any(axis=1).sum())
    for ref in result.versions:
        scored = scores[score_column(ref)].to_numpy(dtype=float)
        scored = scored[~np.isnan(scored)]
        result.scored[ref] = rows_with_features
        result.mean_uplift[ref] = float(scored.mean()) if len(scored) else 0.0
        result.share_positive[ref] = float((scored > 0).mean()) if len(scored) else 0.0
    result.scores = scores
    result.path = Path(path)
    result.seconds = time.perf_counter() - started
    return result
