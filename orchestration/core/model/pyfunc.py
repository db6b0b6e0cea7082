"""The MLflow pyfunc wrapper that scores uplift from a feature frame.

Kept apart because subclassing ``mlflow.pyfunc.PythonModel`` imports mlflow (~6 s): only the
training and scoring code imports this module, inside their functions.
"""

from __future__ import annotations

from typing import Any

import mlflow.pyfunc
import pandas as pd

from orchestration.core.model.training import feature_matrix


class UpliftPyfuncModel(mlflow.pyfunc.PythonModel):
    """Predicts the uplift (P(convert | message) - P(convert | no message)) per row."""

    def __init__(self, learner: Any, feature_columns: list[str]):
        self.learner = learner
        self.feature_columns = list(feature_columns)

    def predict(self, context, model_input: pd.DataFrame, params=None):  # noqa: ARG002
        return self.learner.predict_uplift(feature_matrix(model_input, self.feature_columns))
