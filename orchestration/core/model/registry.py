"""MLflow: log a trained uplift model with its evidence, register it, and resolve aliases.

Stages are deprecated in MLflow 3; aliases name the roles: ``champion`` scores the campaigns,
``challenger`` is the newest version waiting for the promotion gate.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from orchestration.core.model.training import TrainingResult
from orchestration.settings import Settings

CHAMPION = "champion"
CHALLENGER = "challenger"
EXPERIMENT = "uplift_targeting"
# Passing requirements skips MLflow's 9-12 s dependency inference subprocess.
MODEL_REQUIREMENTS = ["lightgbm==4.7.0", "scikit-learn==1.9.1", "pandas==2.3.3", "numpy>=2"]


@dataclass(frozen=True)
class RegisteredModel:
    name: str
    version: str
    run_id: str
    aliases: tuple[str, ...]
    metrics: dict[str, float]

    @property
    def uri(self) -> str:
        return f"models:/{self.name}/{self.version}"


def configure(settings: Settings):
    """Point MLflow at the configured tracking/registry store and return a client."""
    import mlflow
    from mlflow import MlflowClient

    if settings.mlflow_tracking_uri.startswith("sqlite:"):
        settings.mlflow_dir.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(settings.mlflow_tracking_uri)
    mlflow.set_registry_uri(settings.mlflow_tracking_uri)
    if mlflow.get_experiment_by_name(EXPERIMENT) is None:
        artifacts = (settings.mlflow_dir / "artifacts").resolve().as_uri()
        mlflow.create_experiment(EXPERIMENT, artifact_location=artifacts)
    mlflow.set_experiment(EXPERIMENT)
    return MlflowClient(
        tracking_uri=settings.mlflow_tracking_uri, registry_uri=settings.mlflow_tracking_uri
    )


def log_and_register(
    settings: Settings,
    result: TrainingResult,
    training_set: pd.DataFrame,
    reference_features: pd.DataFrame,
    tags: dict[str, str],
) -> RegisteredModel:
    """Log params, metrics, curve, signature, lineage and the model; register a new version.

    The first version becomes ``champion``; later versions become ``challenger`` (the promotion
    gate decides whether one replaces the champion). Nothing logged carries personal data: the
    input example and the drift reference are feature columns only, without ids.
    """
    import mlflow
    from mlflow.models import infer_signature

    from orchestration.core.model.pyfunc import UpliftPyfuncModel
    from orchestration.core.model.training import feature_matrix

    client = configure(settings)
    features = feature_matrix(training_set, result.feature_columns)
    example = features.head(5)
    signature = infer_signature(example, result.learner.predict_uplift(example))
    with mlflow.start_run(run_name=f"{result.learner_name}") as run:
        mlflow.set_tags(tags)
        mlflow.log_params({"learner": result.learner_name, **_flat(result.params)})
        mlflow.log_params({"feature_count": len(result.feature_columns)})
        mlflow.log_metrics(result.metrics)
        mlflow.log_input(
            _training_dataset(training_set, result.feature_columns), context="training"
        )
        if result.curve_path is not None and Path(result.curve_path).exists():
            mlflow.log_artifact(str(result.curve_path), artifact_path="evaluation")
        with tempfile.TemporaryDirectory() as tmp:
            reference_path = Path(tmp) / "reference_features.parquet"
            reference_features[result.feature_columns].to_parquet(reference_path, index=False)
            mlflow.log_artifact(str(reference_path), artifact_path="drift")
            columns_path = Path(tmp) / "feature_columns.json"
            columns_path.write_text(json.dumps(result.feature_columns))
            mlflow.log_artifact(str(columns_path), artifact_path="model_meta")
        model_info = mlflow.pyfunc.log_model(
            name="model",
            python_model=UpliftPyfuncModel(result.learner, result.feature_columns),
            signature=signature,
            input_example=example,
            pip_requirements=MODEL_REQUIREMENTS,
        )
    version = mlflow.register_model(model_info.model_uri, settings.model_name, tags=tags)
    aliases = set_initial_alias(client, settings.model_name, version.version)
    return RegisteredModel(
        name=settings.model_name,
        version=str(version.version),
        run_id=run.info.run_id,
        aliases=aliases,
        metrics=result.metrics,
    )


SCHEMA_SAMPLE_ROWS = 1_000


def _training_dataset(training_set: pd.DataFrame, feature_columns: list[str]):
    """The training set as an MLflow dataset (its lineage on the run), described without a
    Python call per cell: mlflow types every cell of every row for the schema and, for the
    digest, every cell of the frame (not only the rows it hashes): about 3 s at 100k rows, 20 s
    at 600k. The columns are typed, so the schema comes from the first rows and the digest
    from pandas' vectorised row hashes of the whole frame."""
    import hashlib
    import warnings

    import mlflow
    from mlflow.models import infer_signature

    frame = training_set[["event_timestamp", "is_treated", "label", *feature_columns]]
    rows = pd.util.hash_pandas_object(frame, index=False).to_numpy()
    digest = hashlib.md5(rows.tobytes() + ",".join(frame.columns).encode()).hexdigest()[:8]
    dataset = mlflow.data.from_pandas(frame, name="training_set", targets="label", digest=digest)
    with warnings.catch_warnings():
        # mlflow's hint that integer columns cannot hold missing values is about a model's
        # input schema, which it enforces; this one only describes the data (the treatment
        # and label columns are integers by design)
        warnings.filterwarnings(
            "ignore", "Hint: Inferred schema contains integer", UserWarning, "mlflow.types.utils"
        )
        schema = infer_signature(frame.head(SCHEMA_SAMPLE_ROWS)).inputs
    # PandasDataset.schema is a cached property: given here, mlflow does not infer it
    dataset.__dict__["schema"] = schema
    return dataset


def set_initial_alias(client, model_name: str, version: str) -> tuple[str, ...]:
    """``champion`` on the first version; ``challenger`` on every later one."""
    if alias_version(client, model_name, CHAMPION) is None:
        client.set_registered_model_alias(model_name, CHAMPION, version)
        return (CHAMPION,)
    client.set_registered_model_alias(model_name, CHALLENGER, version)
    return (CHALLENGER,)


def alias_version(client, model_name: str, alias: str) -> str | None:
    from mlflow.exceptions import MlflowException

    try:
        return str(client.get_model_version_by_alias(model_name, alias).version)
    except MlflowException:
        return None


def describe_alias(settings: Settings, alias: str = CHAMPION) -> RegisteredModel | None:
    """The version behind an alias with the metrics of the run that trained it."""
    client = configure(settings)
    version = alias_version(client, settings.model_name, alias)
    if version is None:
        return None
    model_version = client.get_model_version(settings.model_name, version)
    run = client.get_run(model_version.run_id)
    return RegisteredModel(
        name=settings.model_name,
        version=version,
        run_id=model_version.run_id,
        aliases=tuple(model_version.aliases),
        metrics=dict(run.data.metrics),
    )


def model_version_hash(settings: Settings, version: str, name: str | None = None) -> str:
    """The hash a four-eyes approval of a model version names: SHA-256 over the registered
    name, the version, the run that trained it and its artifact source (MLflow never reuses
    them for another model). Raises if the version does not exist."""
    import hashlib

    name = name or settings.model_name
    model_version = configure(settings).get_model_version(name, str(version).strip())
    body = f"{name}|{model_version.version}|{model_version.run_id}|{model_version.source}"
    return hashlib.sha256(body.encode()).hexdigest()


def load_alias(settings: Settings, alias: str = CHAMPION):
    """Load ``models:/<name>@<alias>`` as a pyfunc."""
    import mlflow

    configure(settings)
    return mlflow.pyfunc.load_model(f"models:/{settings.model_name}@{alias}")


def load_reference_features(settings: Settings, run_id: str) -> pd.DataFrame | None:
    """The drift reference logged with a model's training run (None if it has none)."""
    import mlflow

    configure(settings)
    try:
        local = mlflow.artifacts.download_artifacts(
            run_id=run_id, artifact_path="drift/reference_features.parquet"
        )
    except Exception:  # noqa: BLE001 - an older run without the artifact simply has no reference
        return None
    return pd.read_parquet(local)


def _flat(params: dict[str, Any]) -> dict[str, Any]:
    return {k: (json.dumps(v) if isinstance(v, dict | list) else v) for k, v in params.items()}
