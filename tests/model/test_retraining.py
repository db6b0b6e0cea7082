"""The retraining trigger: should_retrain (plain) and retraining_sensor (thin shell)."""

from __future__ import annotations

import pytest
from dagster import (
    AssetCheckEvaluation,
    AssetKey,
    AssetMaterialization,
    RunRequest,
    SkipReason,
    build_sensor_context,
)

from orchestration.core.model.retraining import Observation, should_retrain
from tests.conftest import local_instance


def test_a_failed_drift_evaluation_requests_one_retrain():
    first = should_retrain(Observation(5, failed=True), None, min_lift=0.0)
    assert first.retrain and first.run_key == "retrain:drift-5"
    again = should_retrain(Observation(5, failed=True), None, 0.0, cursor=first.cursor)
    assert not again.retrain
    passed = should_retrain(Observation(6, failed=False), None, 0.0, cursor=again.cursor)
    assert not passed.retrain
    failed_again = should_retrain(Observation(7, failed=True), None, 0.0, cursor=passed.cursor)
    assert failed_again.retrain and failed_again.run_key == "retrain:drift-7"


def test_a_low_lift_requests_one_retrain():
    low = should_retrain(None, Observation(3, lift=-0.01), min_lift=0.0)
    assert low.retrain and "below CAMPAIGN_MIN_LIFT" in low.reasons[0]
    assert not should_retrain(None, Observation(3, lift=-0.01), 0.0, cursor=low.cursor).retrain
    assert not should_retrain(None, Observation(4, lift=0.02), 0.0, cursor=low.cursor).retrain
    assert should_retrain(None, Observation(4, lift=0.02), min_lift=0.05).retrain
    assert not should_retrain(None, Observation(4, lift=None), min_lift=0.05).retrain


def test_both_triggers_make_one_request_and_garbage_cursors_are_ignored():
    both = should_retrain(Observation(2, True), Observation(9, lift=-1.0), 0.0, cursor="{oops")
    assert both.retrain and len(both.reasons) == 2
    assert both.run_key == "retrain:drift-2+lift-9"


def test_nothing_observed_yet_means_no_retrain():
    assert not should_retrain(None, None, 0.0).retrain


@pytest.fixture
def instance(tmp_path, monkeypatch):
    monkeypatch.delenv("CAMPAIGN_MIN_LIFT", raising=False)
    with local_instance(tmp_path) as instance:
        yield instance


def _tick(instance, cursor=None):
    from orchestration.definitions import defs
    from orchestration.defs.model_sensors import retraining_sensor

    context = build_sensor_context(instance=instance, cursor=cursor, definitions=defs)
    return retraining_sensor(context), context.cursor


def _drift(instance, passed: bool):
    instance.report_runless_asset_event(
        AssetCheckEvaluation(
            asset_key=AssetKey("feature_snapshot"),
            check_name="drift_share_below_threshold",
            passed=passed,
        )
    )


def test_the_sensor_requests_a_retrain_once_per_failed_drift_gate(instance):
    result, cursor = _tick(instance)
    assert isinstance(result, SkipReason)
    _drift(instance, passed=True)
    result, cursor = _tick(instance, cursor)
    assert isinstance(result, SkipReason)

    _drift(instance, passed=False)
    result, cursor = _tick(instance, cursor)
    assert isinstance(result, RunRequest)
    assert "drift" in result.tags["retrain_reason"]
    result, cursor = _tick(instance, cursor)
    assert isinstance(result, SkipReason)


def test_the_sensor_requests_a_retrain_when_the_measured_lift_is_low(instance, monkeypatch):
    instance.report_runless_asset_event(
        AssetMaterialization(asset_key="campaign_results", metadata={"latest_lift": 0.01})
    )
    result, cursor = _tick(instance)
    assert isinstance(result, SkipReason)
    instance.report_runless_asset_event(
        AssetMaterialization(asset_key="campaign_results", metadata={"latest_lift": -0.02})
    )
    result, cursor = _tick(instance, cursor)
    assert isinstance(result, RunRequest)
    assert "-0.0200" in result.tags["retrain_reason"]
    result, cursor = _tick(instance, cursor)
    assert isinstance(result, SkipReason)

    monkeypatch.setenv("CAMPAIGN_MIN_LIFT", "0.05")
    instance.report_runless_asset_event(
        AssetMaterialization(asset_key="campaign_results", metadata={"latest_lift": 0.03})
    )
    result, _ = _tick(instance, cursor)
    assert isinstance(result, RunRequest)


def test_the_retrain_job_selects_training_and_model_with_their_checks():
    from orchestration.definitions import defs

    job = defs.resolve_job_def("retrain_model")
    graph = job.asset_layer.asset_graph
    assert {k.to_user_string() for k in graph.executable_asset_keys} == {
        "training_set",
        "uplift_model",
        "model_promotion",
    }
    checks = {c.name for c in graph.asset_check_keys}
    assert {"champion_beats_random", "challenger_promotion_gate"} <= checks
