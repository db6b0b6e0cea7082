"""The freshness sensor: stale data alerts without any pipeline run, once per incident, and a
recovery notice when the data is fresh again (the shared incident book deduplicates)."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from dagster import (
    AssetKey,
    AssetMaterialization,
    SkipReason,
    build_sensor_context,
)

from orchestration.core.world.contract import RAW_TABLES_BY_NAME, raw_path
from tests.conftest import local_instance


@pytest.fixture
def instance(tmp_path, data_dir, monkeypatch):
    for name in list(os.environ):
        if name.upper().startswith("CAMPAIGN_ALERT_"):
            monkeypatch.delenv(name)
    monkeypatch.delenv("CAMPAIGN_WORLD_NOW", raising=False)
    home = tmp_path / "dagster_home"
    home.mkdir()
    with local_instance(home) as instance:
        yield instance


def _write_raw(data_dir, table: str, newest: datetime, rows: int = 3) -> None:
    """A minimal file of the raw contract's schema whose newest row is ``newest``."""
    spec = RAW_TABLES_BY_NAME[table]
    values = {
        "order_id": list(range(rows)),
        "event_id": list(range(rows)),
        "customer_id": list(range(1, rows + 1)),
        "amount": [10.0] * rows,
        "category": ["mens"] * rows,
        "sales_channel": ["web"] * rows,
        "channel": ["email"] * rows,
        "event_type": ["open"] * rows,
        spec.time_column: [newest - timedelta(hours=i) for i in range(rows)],
    }
    columns = {name: values[name] for name in spec.schema.names}
    path = raw_path(data_dir / "raw", spec)
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pydict(columns, schema=spec.schema), path)


def _tick(instance):
    from orchestration.defs.freshness_sensors import freshness_watch

    result = freshness_watch(build_sensor_context(instance=instance))
    assert isinstance(result, SkipReason)  # the sensor never requests a run
    return result.skip_message


def _alerts(data_dir) -> list[dict]:
    path = data_dir / "alerts" / "alerts.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_no_raw_data_yet_skips_without_an_alert(instance, data_dir):
    message = _tick(instance)
    assert message.startswith("nothing to measure yet")
    assert "raw orders: no file yet" in message
    assert _alerts(data_dir) == []


def test_stale_raw_data_alerts_once_and_resolves_without_a_run(instance, data_dir):
    now = datetime.now(UTC)
    _write_raw(data_dir, "orders", now - timedelta(days=3))
    _write_raw(data_dir, "engagement_events", now - timedelta(hours=1))

    first = _tick(instance)
    assert "stale: orders" in first and "1 alert(s) sent" in first
    opened = _alerts(data_dir)
    assert [(a["incident_key"], a["status"]) for a in opened] == [
        ("sensor:freshness/raw/orders", "open")
    ]
    alert = opened[0]
    assert alert["kind"] == "freshness" and alert["severity"] == "critical"
    assert alert["evidence"]["threshold_hours"] == 24.0
    assert 71.5 < alert["evidence"]["lag_hours"] < 72.5

    second = _tick(instance)  # still stale: the book remembers it already paged
    assert "0 alert(s) sent" in second
    assert len(_alerts(data_dir)) == 1

    _write_raw(data_dir, "orders", datetime.now(UTC) - timedelta(minutes=5))
    third = _tick(instance)
    assert "stale: none" in third and "1 alert(s) sent" in third
    lines = _alerts(data_dir)
    assert [(a["incident_key"], a["status"]) for a in lines] == [
        ("sensor:freshness/raw/orders", "open"),
        ("sensor:freshness/raw/orders", "resolved"),
    ]
    for line in lines:
        print(json.dumps({k: line[k] for k in ("incident_key", "status", "severity", "title")}))
    assert instance.get_runs() == []  # all of it without a pipeline run


def test_a_stale_online_store_alerts_under_its_own_key(instance, data_dir, monkeypatch):
    from orchestration.core.features import online_freshness
    from orchestration.core.features.online_freshness import OnlineFreshness

    now = datetime.now(UTC)
    for table in ("orders", "engagement_events"):
        _write_raw(data_dir, table, now - timedelta(hours=1))
    assert "online store: never materialized" in _tick(instance)

    instance.report_runless_asset_event(AssetMaterialization(AssetKey("online_features")))
    exports = data_dir / "warehouse" / "exports"
    exports.mkdir(parents=True)
    pq.write_table(pa.table({"customer_id": [1, 2, 3, 4]}), exports / "dim_customers.parquet")
    measured = {"stale": 3}

    def fake_measure(settings, customer_ids, window_hours, **_):
        return OnlineFreshness(len(customer_ids), measured["stale"], 0, 60.0, window_hours)

    monkeypatch.setattr(online_freshness, "measure_online_freshness", fake_measure)
    assert "stale: online store" in _tick(instance)
    assert "0 alert(s) sent" in _tick(instance)
    measured["stale"] = 0
    assert "1 alert(s) sent" in _tick(instance)
    assert [(a["incident_key"], a["status"]) for a in _alerts(data_dir)] == [
        ("sensor:freshness/online", "open"),
        ("sensor:freshness/online", "resolved"),
    ]
    assert _alerts(data_dir)[0]["evidence"]["stale_share"] == 0.75


def test_the_sensor_is_registered_with_its_interval():
    from orchestration.definitions import defs
    from orchestration.settings import Settings

    sensor = next(s for s in defs.sensors if s.name == "freshness_watch")
    assert sensor.minimum_interval_seconds == Settings.from_env().freshness_sensor_minutes * 60
    names = {s.name for s in defs.sensors}
    assert {
        "campaign_alerts_on_success",
        "campaign_alerts_on_failure",
        "dispatch_due_messages_alerts_on_success",
        "dispatch_due_messages_alerts_on_failure",
        # a retraining run that fails its model gates alerts as well
        "retrain_model_alerts_on_success",
        "retrain_model_alerts_on_failure",
        "retrain_on_candidate_features_alerts_on_failure",
    } <= names


def test_a_retraining_run_whose_model_gate_fails_raises_an_alert():
    from orchestration.core.observability.alerting.evaluate import (
        CheckFact,
        RunFacts,
        alerts_from_run,
    )

    gate = CheckFact("uplift_model", "champion_beats_random", passed=False, description="weak")
    failing, watched = alerts_from_run(
        RunFacts(run_id="r1", status="SUCCESS", checks=[gate], job_name="retrain_model")
    )
    assert set(failing) == {"check:uplift_model/champion_beats_random"}
    assert "retrain_model run r1" in failing["check:uplift_model/champion_beats_random"].detail
    assert "run:retrain_model" in watched and "run:campaign_pipeline" not in watched


def test_each_job_that_dispatches_has_its_own_run_incident():
    from orchestration.core.observability.alerting.evaluate import RunFacts, alerts_from_run

    failing, watched = alerts_from_run(
        RunFacts(
            run_id="d1",
            status="FAILURE",
            breakers={"sms": "open"},
            job_name="dispatch_due_messages",
        )
    )
    assert set(failing) == {"run:dispatch_due_messages", "breaker:sms"}
    assert "run:campaign_pipeline" not in watched  # a good dispatch run never resolves a pipeline
