"""Seed metrics from a run's events, and the metrics table they land in."""

from orchestration.core.observability.metrics_table import read_run_metrics, record_run_metrics
from orchestration.run_summary import RunSummary, StageSummary, seed_metrics


def _summary(status="SUCCESS", sends=True):
    summary = RunSummary(run_id="r1", status=status, seconds=100.0)
    summary.stages = [
        StageSummary("raw_data", 3.0, "success"),
        StageSummary("warehouse_models", 30.0, "success"),
    ]
    summary.materializations = {
        "customer_scores": {"inference_success_rate": 0.99},
        "scoring_features": {"feature_availability": 0.98},
    }
    if sends:
        summary.materializations["campaign_sends"] = {"attempted": 100, "delivered": 95}
    summary.checks = [
        {
            "asset": "raw/orders",
            "check": "fresh_within_window",
            "passed": True,
            "severity": "ERROR",
            "description": "",
            "metadata": {"lag_hours": 2.5},
            "step": "x",
        },
        {
            "asset": "raw/engagement_events",
            "check": "fresh_within_window",
            "passed": True,
            "severity": "ERROR",
            "description": "",
            "metadata": {"lag_hours": 0.5},
            "step": "y",
        },
        {
            "asset": "campaign_decisions",
            "check": "audience_compliant",
            "passed": False,
            "severity": "ERROR",
            "description": "",
            "metadata": {"compliance_rate": 0.9},
            "step": "z",
        },
    ]
    return summary


def test_seed_metrics_cover_the_signals():
    metrics = seed_metrics(_summary())
    assert metrics["latency_seconds__warehouse_models"] == 30.0
    assert metrics["inference_success_rate"] == 0.99
    assert metrics["feature_availability"] == 0.98
    assert metrics["data_freshness_lag_hours"] == 2.5
    assert metrics["policy_compliance_rate"] == 0.9
    assert metrics["send_delivery_rate"] == 0.95
    assert metrics["checks_failed"] == 1


def test_a_run_stopped_before_the_sends_has_no_delivery_rate():
    assert "send_delivery_rate" not in seed_metrics(_summary(status="FAILURE", sends=False))


def test_metrics_table_keeps_one_row_per_run_with_its_final_status(tmp_path):
    path = tmp_path / "metrics.db"
    record_run_metrics(path, "r1", "IN_PROGRESS", {"a": 1.0})
    record_run_metrics(path, "r1", "SUCCESS", {"a": 2.0, "b": 3.0})
    record_run_metrics(path, "r2", "FAILURE", {"a": 5.0})
    table = read_run_metrics(path)
    assert list(table["run_id"]) == ["r1", "r2"]
    r1 = table[table["run_id"] == "r1"].iloc[0]
    assert r1["a"] == 2.0 and r1["b"] == 3.0
