"""Every run's seed metrics, however it was launched and however it ended.

``run_health`` (an asset of the pipeline) is skipped when a gate fails, so on its own the plot
of drift or freshness over time misses exactly the blocked days, and runs launched from the UI or
the daemon never reached ``metrics.db``. Here, when any watched job's run finishes (success or
failure), its seed metrics (orchestration.run_summary.seed_metrics: stage latencies, drift share,
freshness lag, compliance, delivery) are

- upserted into the metrics table (``<data>/metrics/metrics.db``) with the run's final status;
- reported as a runless materialization of the ``run_health_history`` asset, whose numeric
  metadata the Dagster UI plots over runs (Assets > run_health_history > Plots);
- exported as the run's OpenTelemetry trace (trace id = run id; a span per stage with its real
  times and rows; orchestration.core.observability.tracing).

``campaign run`` records its own run the same way when it ends (the daemon may not be running);
a run recorded twice gives one row and one materialization.
"""

from __future__ import annotations

from collections.abc import Sequence

from dagster import (
    AssetKey,
    AssetMaterialization,
    AssetSpec,
    DagsterInstance,
    DagsterRunStatus,
    DefaultSensorStatus,
    RunStatusSensorContext,
    SkipReason,
    run_status_sensor,
)

from orchestration.settings import Settings

RUN_HEALTH_HISTORY = AssetKey("run_health_history")

run_health_history = AssetSpec(
    key=RUN_HEALTH_HISTORY,
    group_name="observability",
    kinds={"sqlite"},
    owners=["team:data-platform"],
    description=(
        "The seed metrics of every finished run (blocked and failed runs included), reported by "
        "the run_health_recorder sensors and by `campaign run`: plotted over runs in the UI and "
        "kept in the metrics table (data/metrics/metrics.db)."
    ),
)


def record_run_health(instance: DagsterInstance, run_id: str, settings: Settings) -> bool:
    """Record a finished run's seed metrics once; False when it was recorded already."""
    from orchestration.core.observability.metrics_table import (
        record_run_metrics,
        recorded_status,
    )
    from orchestration.run_summary import online_metrics, seed_metrics, summarize_run

    summary = summarize_run(instance, run_id)
    if recorded_status(settings.metrics_db, run_id) == summary.status:
        return False
    metrics = seed_metrics(summary, online_metrics(settings))
    record_run_metrics(settings.metrics_db, run_id, summary.status, metrics)
    run = instance.get_run_by_id(run_id)
    job = run.job_name if run else "unknown job"
    trace_id = _export_trace(settings, summary, job)
    metrics_metadata = {"trace_id": trace_id} if trace_id else {}
    instance.report_runless_asset_event(
        AssetMaterialization(
            asset_key=RUN_HEALTH_HISTORY,
            description=f"{job} run {run_id[:8]}: {summary.status}",
            metadata={
                **metrics,
                **metrics_metadata,
                "run_id": run_id,
                "run_status": summary.status,
            },
        )
    )
    return True


def _export_trace(settings: Settings, summary, job: str) -> str | None:
    from datetime import UTC, datetime

    from orchestration.core.observability.tracing import StageSpan, TraceSettings, export_run_trace
    from orchestration.run_summary import row_count

    stages = [
        StageSpan(
            name=stage.step,
            started_at=datetime.fromtimestamp(stage.started_at, UTC),
            ended_at=datetime.fromtimestamp(stage.ended_at, UTC),
            status=stage.status,
            rows=row_count(summary.metadata(stage.step)),
        )
        for stage in summary.stages
        if stage.started_at is not None and stage.ended_at is not None
    ]
    target = TraceSettings(
        exporter=settings.trace_exporter,
        file=settings.traces_file,
        otlp_endpoint=settings.trace_otlp_endpoint,
    )
    return export_run_trace(target, summary.run_id, job, summary.status, stages)


def _recorder(status: DagsterRunStatus, jobs: Sequence):
    @run_status_sensor(
        run_status=status,
        name=f"run_health_recorder_on_{status.value.lower()}",
        monitored_jobs=list(jobs),
        default_status=DefaultSensorStatus.RUNNING,
        description=(
            f"Records the seed metrics of every {status.value} run of "
            f"{', '.join(job.name for job in jobs)} into the metrics table and as a "
            "run_health_history materialization (plotted over runs)."
        ),
    )
    def run_health_recorder(context: RunStatusSensorContext):
        run_id = context.dagster_run.run_id
        recorded = record_run_health(context.instance, run_id, Settings.from_env())
        return SkipReason(f"run {run_id}: {'recorded' if recorded else 'already recorded'}")

    return run_health_recorder


def run_health_recorders(jobs: Sequence) -> list:
    """Two run status sensors (success, failure) over ``jobs``; definitions.py hands them in."""
    return [
        _recorder(status, jobs) for status in (DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE)
    ]
