"""From one finished pipeline run to the alerts it calls for: the mapping, no Dagster.

The Dagster shell (``orchestration/defs/alerts.py``) reads the run's check evaluations, status and
gateway breaker states from the event log into ``RunFacts``; everything after that is here, so
the sensors, ``campaign run`` and the tests share one mapping.

Incident keys are stable across runs (never a run id): ``check:<asset>/<check>``,
``run:<job>`` (``run:campaign_pipeline``, ``run:dispatch_due_messages``) and
``breaker:<provider>``. ``watched`` is every key this run gave
evidence about (each check it evaluated, the run itself, each breaker it reported), so a later
good run resolves what an earlier bad one opened, while a check the run skipped (downstream of a
failed gate) stays open until a run evaluates it again.

Freshness is also watched without a run: the freshness sensor measures raw and online freshness
itself and hands the plain numbers here as ``FreshnessFacts``; ``notify_freshness`` turns them into
alerts under their own keys, ``sensor:freshness/raw/<table>`` and ``sensor:freshness/online``,
through the same incident book.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from orchestration.core.observability.alerting.incidents import IncidentBook, UndeliveredAlertsError
from orchestration.core.observability.alerting.notifiers import (
    OPEN,
    Alert,
    notifier_from_env,
    utc_iso,
)

JOB_NAME = "campaign_pipeline"
RUN_KEY = f"run:{JOB_NAME}"
SENSOR_FRESHNESS_PREFIX = "sensor:freshness"
ONLINE_FRESHNESS_KEY = f"{SENSOR_FRESHNESS_PREFIX}/online"
DEFAULT_UI_URL = "http://127.0.0.1:3000"

SUCCESS = "SUCCESS"
FAILURE = "FAILURE"

# Check names whose failure means stale data (raw sources, the online store).
FRESHNESS_CHECKS = frozenset({"fresh_within_window", "online_store_fresh"})
DRIFT_CHECKS = frozenset({"drift_share_below_threshold"})
POLICY_CHECKS = frozenset({"audience_compliant", "safety_tables_only_grow"})

BREAKER_OPEN = "open"

_TITLES = {
    "freshness": "Stale data",
    "drift": "Feature drift",
    "policy_violation": "Policy violation",
    "check_failed": "Check failed",
}


@dataclass(frozen=True)
class CheckFact:
    """One asset check evaluation of the run."""

    asset: str  # user string, e.g. "raw/orders"
    check: str
    passed: bool
    severity: str = "ERROR"  # Dagster's AssetCheckSeverity value: ERROR or WARN
    blocking: bool = True
    description: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def incident_key(self) -> str:
        return f"check:{self.asset}/{self.check}"


@dataclass(frozen=True)
class RunFacts:
    """What a finished run tells the alerting: plain values, read from Dagster by the shell."""

    run_id: str
    status: str  # SUCCESS or FAILURE (any other finished status counts as failed)
    checks: list[CheckFact] = field(default_factory=list)
    breakers: dict[str, str] = field(default_factory=dict)  # provider -> closed/open/half-open
    failed_steps: list[str] = field(default_factory=list)
    job_name: str = JOB_NAME

    @property
    def succeeded(self) -> bool:
        return self.status == SUCCESS


def run_key(job_name: str) -> str:
    """The incident key of a job's runs: each job's failure is its own incident."""
    return f"run:{job_name}"


def raw_freshness_key(table: str) -> str:
    return f"{SENSOR_FRESHNESS_PREFIX}/raw/{table}"


def alert_book_path(data_dir: Path) -> Path:
    """The incident book every caller (sensors, CLI) shares."""
    return Path(data_dir) / "alerts" / "incidents.db"


def alert_log_path(data_dir: Path) -> Path:
    """The default JSONL alert log (``CAMPAIGN_ALERT_LOG`` overrides it)."""
    return Path(data_dir) / "alerts" / "alerts.jsonl"


def run_url(run_id: str, ui_url: str = DEFAULT_UI_URL) -> str:
    return f"{ui_url.rstrip('/')}/runs/{run_id}"


def parse_breaker_state(text: str | None) -> dict[str, str]:
    """``"email=closed, sms=open"`` (the campaign_sends metadata) to ``{provider: state}``."""
    states: dict[str, str] = {}
    for part in (text or "").split(","):
        provider, sep, state = part.strip().partition("=")
        if sep and provider.strip() and state.strip():
            states[provider.strip()] = state.strip().lower()
    return states


def _evidence(metadata: Mapping[str, Any]) -> dict[str, Any]:
    """The numbers of a check's metadata (value, threshold, ...); non-finite ones as text."""
    out: dict[str, Any] = {}
    for key, value in metadata.items():
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue
        out[key] = value if math.isfinite(value) else str(value)
    return out


def check_kind(fact: CheckFact) -> str:
    if fact.check in FRESHNESS_CHECKS:
        return "freshness"
    if fact.check in DRIFT_CHECKS:
        return "drift"
    if fact.check in POLICY_CHECKS:
        return "policy_violation"
    return "check_failed"


def _check_alert(fact: CheckFact, facts: RunFacts, occurred_at: str, ui_url: str) -> Alert:
    kind = check_kind(fact)
    # A failed blocking ERROR check stopped everything downstream of it (the sends included).
    critical = fact.blocking and fact.severity.upper() == "ERROR"
    consequence = (
        "it is a blocking gate: the steps downstream of it (and the sends) did not run."
        if fact.blocking
        else "it is a non-blocking check: the run went on."
    )
    return Alert(
        incident_key=fact.incident_key,
        kind=kind,
        severity="critical" if critical else "warning",
        status=OPEN,
        title=f"{_TITLES[kind]}: {fact.asset} {fact.check} failed",
        detail=(
            f"{fact.description or 'no description'} ({facts.job_name} run {facts.run_id}; "
            f"{consequence})"
        ),
        occurred_at=occurred_at,
        evidence=_evidence(fact.metadata),
        links={"dagster_run": run_url(facts.run_id, ui_url)},
    )


def alerts_from_run(
    facts: RunFacts, ui_url: str = DEFAULT_UI_URL, now: datetime | None = None
) -> tuple[dict[str, Alert], set[str]]:
    """``(failing, watched)`` for ``IncidentBook.observe`` from one finished run."""
    occurred_at = utc_iso(now)
    link = {"dagster_run": run_url(facts.run_id, ui_url)}
    failing: dict[str, Alert] = {}
    job_key = run_key(facts.job_name)
    watched: set[str] = {job_key}

    for fact in facts.checks:
        watched.add(fact.incident_key)
        if not fact.passed and fact.incident_key not in failing:
            failing[fact.incident_key] = _check_alert(fact, facts, occurred_at, ui_url)

    if not facts.succeeded:
        failed_checks = sum(not c.passed for c in facts.checks)
        steps = ", ".join(facts.failed_steps) or "none recorded"
        failing[job_key] = Alert(
            incident_key=job_key,
            kind="run_failed",
            severity="critical",
            status=OPEN,
            title=f"{facts.job_name} run failed",
            detail=(
                f"run {facts.run_id} ended {facts.status}; failed steps: {steps}; "
                f"{failed_checks} failed check(s)."
            ),
            occurred_at=occurred_at,
            evidence={"failed_steps": len(facts.failed_steps), "failed_checks": failed_checks},
            links=dict(link),
        )

    for provider, state in sorted(facts.breakers.items()):
        key = f"breaker:{provider}"
        watched.add(key)
        if state.lower() == BREAKER_OPEN:
            failing[key] = Alert(
                incident_key=key,
                kind="circuit_breaker",
                severity="warning",
                status=OPEN,
                title=f"Circuit breaker open: provider {provider}",
                detail=(
                    f"the gateway's circuit breaker for {provider} was open at the end of run "
                    f"{facts.run_id}: its messages are deferred (or sent by a fallback) until it "
                    "closes."
                ),
                occurred_at=occurred_at,
                evidence={"provider": provider, "state": state},
                links=dict(link),
            )
    return failing, watched


@dataclass
class AlertReport:
    """What one evaluation sent, through which sink, and what could not be delivered."""

    sent: list[Alert]
    sink: str
    log_path: Path
    undelivered: dict[str, str] = field(default_factory=dict)


def notify_run(
    facts: RunFacts,
    data_dir: Path,
    env: Mapping[str, str],
    ui_url: str = DEFAULT_UI_URL,
    now: datetime | None = None,
) -> AlertReport:
    """Evaluate a run and record it in the shared incident book, notifying through the sinks
    ``env`` configures (the JSONL log always). Delivery failures are reported in
    ``undelivered`` (the book retries them on the next evaluation), never raised."""
    failing, watched = alerts_from_run(facts, ui_url=ui_url, now=now)
    return _observe(failing, watched, data_dir, env, now)


def _observe(
    failing: dict[str, Alert],
    watched: set[str],
    data_dir: Path,
    env: Mapping[str, str],
    now: datetime | None,
) -> AlertReport:
    notifier = notifier_from_env(env, alert_log_path(data_dir))
    book = IncidentBook(alert_book_path(data_dir))
    log = (env.get("CAMPAIGN_ALERT_LOG") or "").strip()
    report = AlertReport(
        sent=[], sink=notifier.name, log_path=Path(log) if log else alert_log_path(data_dir)
    )
    try:
        report.sent = book.observe(failing, watched, notifier, now=now)
    except UndeliveredAlertsError as exc:
        report.sent = list(exc.sent)
        report.undelivered = dict(exc.failures)
    return report


# --- freshness without a run (the freshness sensor) -----------------------------------------


@dataclass(frozen=True)
class RawFreshnessFact:
    """How old the newest row of one raw table is, as the sensor measured it."""

    table: str
    newest_at: str | None  # ISO, None: the table has no rows
    lag_hours: float | None
    window_hours: float

    @property
    def fresh(self) -> bool:
        return self.lag_hours is not None and self.lag_hours <= self.window_hours


@dataclass(frozen=True)
class OnlineFreshnessFact:
    """The sampled online-store lookup, as the sensor measured it."""

    sampled: int
    stale: int
    missing: int
    oldest_age_hours: float | None
    window_hours: float
    stale_share_threshold: float

    @property
    def stale_share(self) -> float:
        return (self.stale / self.sampled) if self.sampled else 1.0

    @property
    def fresh(self) -> bool:
        return self.stale_share <= self.stale_share_threshold


@dataclass(frozen=True)
class FreshnessFacts:
    """One sensor tick: what could be measured. Whatever is absent (no raw data yet, no online
    store) is neither failing nor healthy: its incident is left as it is."""

    raw: list[RawFreshnessFact] = field(default_factory=list)
    online: OnlineFreshnessFact | None = None


def _raw_freshness_alert(fact: RawFreshnessFact, occurred_at: str, ui_url: str) -> Alert:
    age = f"{fact.lag_hours:.1f} h old" if fact.lag_hours is not None else "empty"
    return Alert(
        incident_key=raw_freshness_key(fact.table),
        kind="freshness",
        severity="critical",
        status=OPEN,
        title=f"Stale data: raw {fact.table} is {age} (window {fact.window_hours:g} h)",
        detail=(
            f"the newest raw {fact.table} row is from {fact.newest_at or 'never (no rows)'}; "
            "found by the freshness sensor without a pipeline run. The next run's "
            "fresh_within_window gate will block every send until new data lands."
        ),
        occurred_at=occurred_at,
        evidence={
            "lag_hours": round(fact.lag_hours, 2) if fact.lag_hours is not None else "none",
            "threshold_hours": fact.window_hours,
            "newest_row_at": fact.newest_at or "none",
        },
        links={"asset": f"{ui_url.rstrip('/')}/assets/raw/{fact.table}"},
    )


def _online_freshness_alert(fact: OnlineFreshnessFact, occurred_at: str, ui_url: str) -> Alert:
    return Alert(
        incident_key=ONLINE_FRESHNESS_KEY,
        kind="freshness",
        severity="critical",
        status=OPEN,
        title=(
            f"Stale data: {fact.stale_share:.1%} of sampled customers have stale online "
            f"features (threshold {fact.stale_share_threshold:.0%})"
        ),
        detail=(
            f"{fact.stale} of {fact.sampled} sampled customers have online features missing "
            f"({fact.missing}) or older than {fact.window_hours:g} h; found by the freshness "
            "sensor without a pipeline run. The next run's online_store_fresh gate will block "
            "the sends."
        ),
        occurred_at=occurred_at,
        evidence=_evidence(
            {
                "stale_share": fact.stale_share,
                "threshold": fact.stale_share_threshold,
                "sampled": fact.sampled,
                "stale": fact.stale,
                "missing": fact.missing,
                "oldest_age_hours": fact.oldest_age_hours
                if fact.oldest_age_hours is not None
                else -1.0,
                "window_hours": fact.window_hours,
            }
        ),
        links={"asset": f"{ui_url.rstrip('/')}/assets/online_features"},
    )


def alerts_from_freshness(
    facts: FreshnessFacts, ui_url: str = DEFAULT_UI_URL, now: datetime | None = None
) -> tuple[dict[str, Alert], set[str]]:
    """``(failing, watched)`` for ``IncidentBook.observe`` from one freshness sensor tick."""
    occurred_at = utc_iso(now)
    failing: dict[str, Alert] = {}
    watched: set[str] = set()
    for fact in facts.raw:
        key = raw_freshness_key(fact.table)
        watched.add(key)
        if not fact.fresh:
            failing[key] = _raw_freshness_alert(fact, occurred_at, ui_url)
    if facts.online is not None:
        watched.add(ONLINE_FRESHNESS_KEY)
        if not facts.online.fresh:
            failing[ONLINE_FRESHNESS_KEY] = _online_freshness_alert(
                facts.online, occurred_at, ui_url
            )
    return failing, watched


def notify_freshness(
    facts: FreshnessFacts,
    data_dir: Path,
    env: Mapping[str, str],
    ui_url: str = DEFAULT_UI_URL,
    now: datetime | None = None,
) -> AlertReport:
    """Record one freshness tick in the shared incident book (one alert when a table goes stale,
    none while it stays stale, a recovery notice when it is fresh again); like ``notify_run``."""
    failing, watched = alerts_from_freshness(facts, ui_url=ui_url, now=now)
    return _observe(failing, watched, data_dir, env, now)
