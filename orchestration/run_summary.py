"""A short, printable summary of a pipeline run from its Dagster events.

Reads the run's materializations, check evaluations and step timings; knows nothing about how
the assets compute what they report.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from dagster import DagsterEventType, DagsterInstance

from orchestration.settings import Settings

ROW_KEYS = ("rows", "candidates", "rows_with_features")


@dataclass
class StageSummary:
    step: str
    seconds: float | None
    status: str
    # epoch seconds of the step's start and end events (the run trace's span times)
    started_at: float | None = None
    ended_at: float | None = None
    rows: int | None = None  # the rows its materializations report (summed), if any


@dataclass
class RunSummary:
    run_id: str
    status: str
    seconds: float | None
    stages: list[StageSummary] = field(default_factory=list)
    materializations: dict[str, dict[str, Any]] = field(default_factory=dict)
    checks: list[dict[str, Any]] = field(default_factory=list)

    @property
    def failed_checks(self) -> list[dict[str, Any]]:
        return [c for c in self.checks if not c["passed"]]

    def checks_from(self, step: str, inside: bool) -> list[dict[str, Any]]:
        """Checks evaluated in ``step`` (e.g. the dbt tests of the dbt step), or all others."""
        return [c for c in self.checks if (c["step"] == step) == inside]

    def metadata(self, asset: str) -> dict[str, Any]:
        return self.materializations.get(asset, {})


def _value(entry: Any) -> Any:
    return getattr(entry, "value", entry)


def summarize_run(instance: DagsterInstance, run_id: str) -> RunSummary:
    run = instance.get_run_by_id(run_id)
    stats = instance.get_run_stats(run_id)
    seconds = stats.end_time - stats.start_time if stats.end_time and stats.start_time else None
    summary = RunSummary(
        run_id=run_id, status=run.status.value if run else "UNKNOWN", seconds=seconds
    )
    starts: dict[str, float] = {}
    rows: dict[str, int] = {}
    for record in instance.all_logs(run_id):
        event = record.dagster_event
        if event is None:
            continue
        step = event.step_key
        if event.event_type == DagsterEventType.STEP_START:
            starts[step] = record.timestamp
        elif event.event_type in (
            DagsterEventType.STEP_SUCCESS,
            DagsterEventType.STEP_FAILURE,
            DagsterEventType.STEP_SKIPPED,
        ):
            began = starts.get(step)
            summary.stages.append(
                StageSummary(
                    step=step,
                    seconds=record.timestamp - began if began else None,
                    status=event.event_type.value.replace("STEP_", "").lower(),
                    started_at=began,
                    ended_at=record.timestamp,
                )
            )
        elif event.event_type == DagsterEventType.ASSET_MATERIALIZATION:
            materialization = event.event_specific_data.materialization
            key = materialization.asset_key.to_user_string()
            summary.materializations[key] = {
                k: _value(v) for k, v in materialization.metadata.items()
            }
            counted = row_count(summary.materializations[key])
            if counted is not None:
                rows[step] = rows.get(step, 0) + counted
        elif event.event_type == DagsterEventType.ASSET_CHECK_EVALUATION:
            evaluation = event.event_specific_data
            summary.checks.append(
                {
                    "asset": evaluation.asset_key.to_user_string(),
                    "step": step,
                    "check": evaluation.check_name,
                    "passed": evaluation.passed,
                    "severity": evaluation.severity.value,
                    "description": evaluation.description or "",
                    "metadata": {k: _value(v) for k, v in evaluation.metadata.items()},
                }
            )
    for stage in summary.stages:
        stage.rows = rows.get(stage.step)
    return summary


def row_count(metadata: dict[str, Any]) -> int | None:
    for key in ROW_KEYS:
        if key in metadata:
            return int(metadata[key])
    return None


def online_metrics(settings: Settings) -> dict[str, float]:
    """The decision API's seed metrics over the day up to now (``realtime.online_metrics``):
    online latency p50/p99, inference success rate, online feature availability."""
    from orchestration.core.decisioning.realtime.decision_store import store_path
    from orchestration.core.decisioning.realtime.online_metrics import online_seed_metrics

    return online_seed_metrics(
        store_path(settings), settings.now(), settings.thresholds.online_freshness_hours
    )


def seed_metrics(summary: RunSummary, online: dict[str, float] | None = None) -> dict[str, float]:
    """The signals operators watch, from one run's events (absent stages give absent metrics):
    per-stage latency, inference success rate, data freshness lag, feature availability, policy
    compliance rate, send delivery rate; and the decision API's (``online``, from
    ``online_metrics``: its latency, inference success rate and online feature availability)."""
    metrics: dict[str, float] = dict(online or {})
    for stage in summary.stages:
        if stage.seconds is not None:
            metrics[f"latency_seconds__{stage.step}"] = round(stage.seconds, 3)
    scores = summary.metadata("customer_scores")
    if "inference_success_rate" in scores:
        metrics["inference_success_rate"] = float(scores["inference_success_rate"])
    features = summary.metadata("scoring_features")
    if "feature_availability" in features:
        metrics["feature_availability"] = float(features["feature_availability"])
    lags = [
        c["metadata"].get("lag_hours")
        for c in summary.checks
        if c["check"] == "fresh_within_window"
    ]
    lags = [float(v) for v in lags if v is not None and v >= 0]
    if lags:
        metrics["data_freshness_lag_hours"] = max(lags)
    for check in summary.checks:
        meta = check["metadata"]
        if check["check"] == "audience_compliant" and "compliance_rate" in meta:
            metrics["policy_compliance_rate"] = float(meta["compliance_rate"])
        if check["check"] == "drift_share_below_threshold" and "drift_share" in meta:
            metrics["feature_drift_share"] = float(meta["drift_share"])
        if check["check"] == "online_store_fresh" and "stale_share" in meta:
            metrics["online_stale_share"] = float(meta["stale_share"])
    sends = summary.metadata("campaign_sends")
    attempted = sends.get("attempted")
    if sends and attempted:
        metrics["send_delivery_rate"] = float(sends.get("delivered", 0)) / float(attempted)
    if sends:
        metrics["messages_delivered"] = float(sends.get("delivered", 0))
    metrics["checks_failed"] = float(len(summary.failed_checks))
    return metrics
