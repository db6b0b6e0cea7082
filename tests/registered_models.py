"""Register a fitted uplift learner as a model's champion in the test's MLflow registry (the
pyfunc the pipeline logs), for tests that score through ``load_alias``."""

from __future__ import annotations

import numpy as np
import pandas as pd


def register_champion(settings, learner, feature_columns: list[str]) -> str:
    """``learner`` logged as our pyfunc and aliased ``champion`` of ``settings.model_name``;
    the new version."""
    import mlflow
    from mlflow.models import infer_signature

    from orchestration.core.model.pyfunc import UpliftPyfuncModel
    from orchestration.core.model.registry import MODEL_REQUIREMENTS, configure

    client = configure(settings)
    example = pd.DataFrame(np.zeros((3, len(feature_columns))), columns=feature_columns)
    with mlflow.start_run():
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=UpliftPyfuncModel(learner, feature_columns),
            signature=infer_signature(example, learner.predict_uplift(example)),
            pip_requirements=MODEL_REQUIREMENTS,
        )
    version = mlflow.register_model(info.model_uri, settings.model_name).version
    client.set_registered_model_alias(settings.model_name, "champion", version)
    return str(version)
