"""Alerts on finished pipeline runs: a thin shell over ``orchestration.core.observability.alerting``.

``run_facts_from_instance`` reads a run's status, check evaluations and the gateway's breaker
states from the Dagster event log; ``evaluate_run_alerts`` turns them into alerts through the
shared incident book (one alert per incident, a recovery notice when it clears). A pair of run
status sensors per job (every job of the definitions: the pipeline, the retraining jobs and
``dispatch_due_messages``, which also reports its breakers) call it for every finished run under
the daemon;
``campaign run`` calls it at its end. Both may see the same run: the book deduplicates.

A failed blocking gate may leave the run SUCCESS (downstream steps are skipped), so alerts come
from the check evaluations whatever the run status.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from dagster import (
    DagsterEventType,
    DagsterInstance,
    DagsterRunStatus,
    DefaultSensorStatus,
    RunsFilter,
    RunStatusSensorContext,
    SkipReason,
    run_status_sensor,
)

from orchestration.core.observability.alerting.evaluate import (
    DEFAULT_UI_URL,
    JOB_NAME,
    AlertReport,
    CheckFact,
    RunFacts,
    notify_run,
    parse_breaker_state,
)
from orchestration.settings import Settings

SENDS_ASSET = "campaign_sends"
FINISHED = [DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE]


def _plain(value: Any) -> Any:
    value = getattr(value, "value", value)  # MetadataValue -> its raw value
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def run_facts_from_instance(instance: DagsterInstance, run_id: str) -> RunFacts:
    """The run's status, check evaluations, failed steps and breaker states, from its events."""
    run = instance.get_run_by_id(run_id)
    if run is None:
        raise ValueError(f"no run {run_id} in this Dagster instance")
    checks: list[CheckFact] = []
    failed_steps: list[str] = []
    breakers: dict[str, str] = {}
    records = instance.all_logs(
        run_id,
        of_type={
            DagsterEventType.ASSET_CHECK_EVALUATION,
            DagsterEventType.ASSET_MATERIALIZATION,
            DagsterEventType.STEP_FAILURE,
        },
    )
    for record in records:
        event = record.dagster_event
        if event is None:
            continue
        if event.event_type == DagsterEventType.ASSET_CHECK_EVALUATION:
            evaluation = event.event_specific_data
            severity = evaluation.severity.value
            checks.append(
                CheckFact(
                    asset=evaluation.asset_key.to_user_string(),
                    check=evaluation.check_name,
                    passed=bool(evaluation.passed),
                    severity=severity,
                    # Older events carry no blocking flag: an ERROR check is treated as a gate.
                    blocking=evaluation.blocking
                    if evaluation.blocking is not None
                    else severity == "ERROR",
                    description=evaluation.description or "",
                    metadata={k: _plain(v) for k, v in evaluation.metadata.items()},
                )
            )
        elif event.event_type == DagsterEventType.ASSET_MATERIALIZATION:
            materialization = event.event_specific_data.materialization
            if materialization.asset_key.to_user_string() == SENDS_ASSET:
                state = materialization.metadata.get("breaker_state")
                breakers = parse_breaker_state(_plain(state) if state is not None else None)
        elif event.event_type == DagsterEventType.STEP_FAILURE and event.step_key:
            failed_steps.append(event.step_key)
    return RunFacts(
        run_id=run_id,
        status=run.status.value,
        checks=checks,
        breakers=breakers,
        failed_steps=failed_steps,
        job_name=run.job_name,
    )


def evaluate_run_alerts(
    instance: DagsterInstance,
    run_id: str,
    data_dir: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> AlertReport:
    """Evaluate one finished run into the incident book and send what it calls for.

    The function ``campaign run`` and the sensors share. ``data_dir`` defaults to the settings'
    (the book is ``<data_dir>/alerts/incidents.db``, the log ``<data_dir>/alerts/alerts.jsonl``);
    notifiers come from ``env`` (default: the settings' ``CAMPAIGN_ALERT_*``); alerts link to
    ``CAMPAIGN_DAGSTER_UI_URL`` (default ``DEFAULT_UI_URL``).
    """
    settings = Settings.from_env()
    facts = run_facts_from_instance(instance, run_id)
    return notify_run(
        facts,
        data_dir if data_dir is not None else settings.data_dir,
        settings.alert_env if env is None else env,
        ui_url=settings.dagster_ui_url or DEFAULT_UI_URL,
    )


def _newer_run_finished(instance: DagsterInstance, run_id: str, job_name: str) -> bool:
    """A later run already finished: evaluating this one now would re-open what it resolved."""
    latest = instance.get_runs(filters=RunsFilter(job_name=job_name, statuses=FINISHED), limit=1)
    return bool(latest) and latest[0].run_id != run_id


def sensor_name(status: DagsterRunStatus, job_name: str) -> str:
    """``campaign_alerts_on_<status>`` for the pipeline (its historical name),
    ``<job>_alerts_on_<status>`` for any other job: unique per job."""
    prefix = "campaign" if job_name == JOB_NAME else job_name
    return f"{prefix}_alerts_on_{status.value.lower()}"


def _alerts_sensor(status: DagsterRunStatus, job):
    @run_status_sensor(
        run_status=status,
        name=sensor_name(status, job.name),
        monitored_jobs=[job],
        default_status=DefaultSensorStatus.RUNNING,
        description=(
            f"campaign_alerts: evaluates every {status.value} {job.name} run (failed "
            "gates, run failure, open breakers) into the incident book data/alerts/incidents.db "
            "and notifies once per incident (CAMPAIGN_ALERT_NOTIFIERS: log, webhook, smtp)."
        ),
    )
    def campaign_alerts(context: RunStatusSensorContext):
        run_id = context.dagster_run.run_id
        if _newer_run_finished(context.instance, run_id, job.name):
            return SkipReason(f"run {run_id} is no longer the latest finished run")
        report = evaluate_run_alerts(context.instance, run_id)
        for alert in report.sent:
            context.log.info(f"alert -> {report.sink}: {alert.summary()}")
        if report.undelivered:
            # Fail the tick: the book keeps them un-notified and the next evaluation retries.
            raise RuntimeError(
                f"{len(report.undelivered)} alert(s) not delivered: "
                + "; ".join(f"{k}: {e}" for k, e in report.undelivered.items())
            )
        return SkipReason(f"run {run_id}: {len(report.sent)} alert(s) sent via {report.sink}")

    return campaign_alerts


def campaign_alerts_sensors(jobs: Sequence | object) -> list:
    """Two run status sensors (success, failure) per job, alerting on every finished run of it.

    ``definitions.py`` hands the jobs in (one job or a list), so this module never imports
    another defs module.
    """
    listed = list(jobs) if isinstance(jobs, list | tuple) else [jobs]
    names = [job.name for job in listed]
    if len(set(names)) != len(names):
        raise ValueError(f"campaign_alerts_sensors: a job is listed twice in {names}")
    return [
        _alerts_sensor(status, job)
        for job in listed
        for status in (DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE)
    ]
