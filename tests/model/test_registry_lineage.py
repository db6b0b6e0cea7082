"""The registered model's run names the training set it was fitted on (MLflow dataset lineage):
its row count, its columns and types, and a digest that changes with the data."""

from __future__ import annotations

import json

from orchestration.core.model.training import train_and_evaluate
from tests.model.conftest import FAST, FEATURES, simulate


def _register(settings, frame):
    from orchestration.core.model.registry import log_and_register

    result = train_and_evaluate(frame, FEATURES, params=FAST, n_boot=0)
    registered = log_and_register(
        settings, result, frame, reference_features=frame[FEATURES], tags={"test": "lineage"}
    )
    from orchestration.core.model.registry import configure

    (dataset_input,) = configure(settings).get_run(registered.run_id).inputs.dataset_inputs
    return dataset_input.dataset


def test_the_run_records_the_whole_training_set(mlflow_settings):
    frame = simulate(3_000, seed=1)
    dataset = _register(mlflow_settings, frame)
    assert dataset.name == "training_set"
    assert json.loads(dataset.profile)["num_rows"] == 3_000
    columns = {c["name"]: c["type"] for c in json.loads(dataset.schema)["mlflow_colspec"]}
    assert list(columns) == ["event_timestamp", "is_treated", "label", *FEATURES]
    assert columns["x_effect"] == "double"
    assert columns["event_timestamp"] == "datetime"


def test_the_digest_changes_with_the_data_and_only_with_it(mlflow_settings):
    frame = simulate(3_000, seed=1)
    first = _register(mlflow_settings, frame).digest
    again = _register(mlflow_settings, frame.copy()).digest
    changed = frame.copy()
    changed.loc[2_999, "noise"] += 1.0  # one cell of the last row
    assert first == again
    assert _register(mlflow_settings, changed).digest != first
