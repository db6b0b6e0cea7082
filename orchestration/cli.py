"""`campaign`: the command line of the project (generate data, run the pipeline, read results).

Heavy imports (dagster, the definitions) happen inside the commands, so `--help` is instant.
"""

from __future__ import annotations

import os
import resource
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, NoReturn

import pandas as pd
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from typer.core import TyperGroup

from orchestration import governance_cli
from orchestration.core.common.yaml_files import YamlFileError
from orchestration.settings import Settings, SettingsError, without_password

DBT_STEP = "warehouse_models"


class _Commands(TyperGroup):
    """The command group: a configuration problem the user has to fix (a bad ``CAMPAIGN_*``
    value, a broken campaign, policy or gateway file, a path that cannot be read or written) ends
    any command with ``error: <what, where, what is allowed>`` and exit code 1, not a
    traceback. Here, and not in :func:`main`, because the ``campaign`` script calls ``app``."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except (SettingsError, YamlFileError) as exc:
            _error(str(exc))
        except OSError as exc:
            if exc.filename is None:  # not about a path: a bug, keep its traceback
                raise
            _error(
                f"{exc.filename}: {exc.strerror or exc}; check the path and its permissions"
                " (CAMPAIGN_DATA_DIR, DAGSTER_HOME, CAMPAIGN_*_FILE / _DIR)"
            )


app = typer.Typer(
    help="Campaign orchestration: raw data to governed, gated campaign sends.",
    no_args_is_help=True,
    add_completion=False,
    cls=_Commands,
)
console = Console()
# Errors go to stderr, unwrapped and without markup read from the message (paths, [0, 1] ranges).
_error_console = Console(stderr=True, soft_wrap=True, highlight=False)


def _error(message: str, code: int = 1) -> NoReturn:
    _error_console.print(f"[bold red]error:[/] {escape(message)}")
    raise typer.Exit(code)


def _fail(message: str, code: int = 1) -> None:
    console.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(code)


@app.command()
def generate(
    customers: Annotated[int, typer.Option(help="Number of customers (1k to 10M).")] = 100_000,
    seed: Annotated[int, typer.Option(help="Random seed: same seed, same world.")] = 42,
    as_of: Annotated[str | None, typer.Option(help="World time (ISO, UTC); default now.")] = None,
    drift: Annotated[
        float, typer.Option(help="Behaviour shift in the last 30 days (drill).")
    ] = 0.0,
    out: Annotated[
        Path | None, typer.Option(help="Data directory; default CAMPAIGN_DATA_DIR or ./data.")
    ] = None,
) -> None:
    """Generate the synthetic world as raw Parquet (the raw data contract) with a progress bar."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    from orchestration.core.world.synthetic import WorldSpec, generate_world

    if not 1_000 <= customers <= 10_000_000:
        _fail(f"--customers must be between 1,000 and 10,000,000 (got {customers:,})")
    when = _check_world_options(customers, seed, as_of)
    settings = Settings.from_env()
    data_dir = (out or settings.data_dir).resolve()
    _require_writable(
        data_dir, "data directory", "pass --out or set CAMPAIGN_DATA_DIR to a writable directory"
    )
    spec = WorldSpec(customers=customers, seed=seed, as_of=when, drift=drift)
    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    ) as progress:
        task = progress.add_task("customers", total=customers)
        summary = generate_world(
            spec,
            data_dir / "raw",
            data_dir / "ground_truth",
            progress=lambda n: progress.advance(task, n),
        )
    table = Table(title=f"raw data in {data_dir / 'raw'} ({summary.seconds:.1f}s)")
    table.add_column("table")
    table.add_column("rows", justify="right")
    for name, rows in summary.rows.items():
        table.add_row(name, f"{rows:,}")
    console.print(table)


@app.command()
def run(
    customers: Annotated[int | None, typer.Option(help="Customers in the synthetic world.")] = None,
    seed: Annotated[int | None, typer.Option(help="World seed.")] = None,
    as_of: Annotated[
        str | None, typer.Option(help="World time (ISO); an old one makes stale data.")
    ] = None,
    drift: Annotated[float, typer.Option(help="Inject a behaviour shift (drift drill).")] = 0.0,
    summary_json: Annotated[
        Path | None, typer.Option(help="Also write the summary as JSON here.")
    ] = None,
    dataset: Annotated[
        str | None,
        typer.Option(
            help="Raw data source for this run (sets CAMPAIGN_DATASET): synthetic, files or "
            "hillstrom (the real e-mail campaign, in its own data directory data/hillstrom)."
        ),
    ] = None,
    lock_wait: Annotated[
        float,
        typer.Option(help="Seconds to wait for another run of the same data directory to end."),
    ] = 0.0,
    verbose: Annotated[
        bool,
        typer.Option(
            "--verbose",
            "-v",
            help="Show the full event log live (it always goes to <data dir>/logs/run-<id>.log).",
        ),
    ] = False,
) -> None:
    """Materialize the whole asset graph (the campaign_pipeline job) and print a summary.

    The run is recorded in DAGSTER_HOME, so it shows in the Dagster UI (`make ui`). One run at a
    time per data directory: a second one stops with a message naming the first.
    """
    import uuid

    from orchestration.core.common.run_lock import RunLockBusy, run_lock

    _prepare_run(dataset, customers=customers, seed=seed, drift=drift, as_of=as_of)
    if not os.environ.get("DAGSTER_HOME"):
        _fail(
            "DAGSTER_HOME is not set; run through `make run` or export DAGSTER_HOME=$PWD/data/dagster_home"
        )
    run_id = str(uuid.uuid4())
    try:
        # held before the run writes anything (run history, raw files) and until its summary
        with run_lock(Settings.from_env().data_dir, run_id=run_id, wait_seconds=lock_wait):
            _run_pipeline(run_id, customers, seed, as_of, drift, summary_json, verbose)
    except RunLockBusy as busy:
        _error(str(busy))


def _run_pipeline(
    run_id: str,
    customers: int | None,
    seed: int | None,
    as_of: str | None,
    drift: float,
    summary_json: Path | None,
    verbose: bool = False,
) -> None:
    """The body of `run`, under the data directory's run lock: one line per stage while it runs
    (the full event log goes to a file; ``verbose`` shows it live too), then the summary."""
    from orchestration.run_progress import run_display, run_log_path
    from orchestration.run_storage import quick_event_log
    from orchestration.run_warmup import warm_imports

    Path(os.environ["DAGSTER_HOME"]).mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    log_path = run_log_path(Settings.from_env().data_dir, run_id)
    console.print(
        f"[bold]run {run_id[:8]}[/]: event log in {log_path} (--verbose shows it live)",
        soft_wrap=True,
    )
    config: dict[str, object] = {"drift": drift}
    for key, value in (("customers", customers), ("seed", seed), ("as_of", as_of)):
        if value is not None:
            config[key] = value
    with run_display(log_path, verbose=verbose, like=console) as display:
        display.status("loading definitions (dagster, dbt manifest)")
        from orchestration.definitions import defs
        from orchestration.instance import dagster_instance

        instance = dagster_instance(Settings.from_env(), Path(os.environ["DAGSTER_HOME"]))
        job = defs.resolve_job_def("campaign_pipeline")
        display.status("starting campaign_pipeline")
        display.follow(instance, run_id)
        warm_imports()
        with quick_event_log(Path(os.environ["DAGSTER_HOME"])):
            result = job.execute_in_process(
                instance=instance,
                run_config={"ops": {"raw_data": {"config": config}}},
                raise_on_error=False,
                run_id=run_id,
            )
    elapsed = time.perf_counter() - started
    _record_metrics(instance, result.run_id)
    _evaluate_alerts(instance, result.run_id)
    _print_summary(instance, result.run_id, elapsed)
    console.print(f"event log: {log_path}", soft_wrap=True)
    if summary_json is not None:
        _write_summary_json(instance, result.run_id, elapsed, summary_json)
    if not result.success:
        raise typer.Exit(1)


def _check_world_options(
    customers: int | None, seed: int | None, as_of: str | None
) -> datetime | None:
    """Reject impossible world options before any work (None: unset, the settings decide; 0 is
    never "unset"); the world time as UTC, or None."""
    if customers is not None and customers < 1:
        _error(
            f"--customers must be at least 1 (got {customers:,}); leave it out to use"
            " CAMPAIGN_CUSTOMERS (default 100,000)"
        )
    if seed is not None and seed < 0:
        _error(f"--seed must be 0 or more (got {seed:,})")
    if as_of is None:
        return None
    try:
        return datetime.fromisoformat(as_of).astimezone(UTC)
    except ValueError:
        _error(f"--as-of {as_of!r} is not an ISO timestamp (e.g. 2026-11-23T09:00:00Z)")


def _require_writable(directory: Path, what: str, remedy: str) -> None:
    """Fail with the path and what to do unless ``directory`` exists (or can be made) and a
    file can be created in it: checked before anything is written."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=directory):
            pass
    except OSError as exc:
        _error(
            f"{what} {directory} is not writable ({exc.strerror or exc}); make it writable,"
            f" or {remedy}"
        )


def _prepare_run(
    dataset: str | None,
    customers: int | None,
    seed: int | None,
    drift: float,
    as_of: str | None,
) -> None:
    """What `run` checks before any work: its options, the dataset, the settings (a bad
    ``CAMPAIGN_*`` value is one line), the policy and gateway files (the run would fail on them
    later) and that the data directory and DAGSTER_HOME can be written."""
    from orchestration.core.decisioning.policy import load_policy
    from orchestration.core.delivery.config import load_gateway_config

    _check_world_options(customers, seed, as_of)
    if dataset is not None:
        _use_dataset(dataset, customers=customers, drift=drift, as_of=as_of)
    settings = Settings.from_env()
    load_policy(settings.policy_file)
    load_gateway_config(settings.gateway_config)
    _require_writable(
        settings.data_dir, "data directory", "point CAMPAIGN_DATA_DIR at a writable directory"
    )
    if os.environ.get("DAGSTER_HOME", "").strip():
        _require_writable(
            Path(os.environ["DAGSTER_HOME"]).resolve(),
            "DAGSTER_HOME (the run history)",
            "point DAGSTER_HOME at a writable directory",
        )


def _use_dataset(dataset: str, customers: int | None, drift: float, as_of: str | None) -> None:
    """Set CAMPAIGN_DATASET for this run; for a public dataset also its own data directory
    (unless CAMPAIGN_DATA_DIR is set), DAGSTER_HOME (unless set) and the world clock pinned to
    the end of its data (unless CAMPAIGN_WORLD_NOW is set), and print them."""
    from orchestration.settings import DATASETS, PROJECT_DIR

    if dataset not in DATASETS:
        _fail(f"--dataset {dataset!r} is not valid; choose one of {', '.join(DATASETS)}")
    os.environ["CAMPAIGN_DATASET"] = dataset
    if dataset != "hillstrom":
        return
    if customers is not None or drift:
        _fail("--customers and --drift shape the synthetic world; Hillstrom is real data")
    if not os.environ.get("CAMPAIGN_DATA_DIR", "").strip():
        os.environ["CAMPAIGN_DATA_DIR"] = str(PROJECT_DIR / "data" / dataset)
    data_dir = Path(os.environ["CAMPAIGN_DATA_DIR"]).resolve()
    if not os.environ.get("DAGSTER_HOME", "").strip():
        os.environ["DAGSTER_HOME"] = str(data_dir / "dagster_home")
    from orchestration.core.world.datasets.hillstrom import PIPELINE_AS_OF, pipeline_world_now

    if os.environ.get("CAMPAIGN_WORLD_NOW", "").strip():
        clock = f"{os.environ['CAMPAIGN_WORLD_NOW']} (CAMPAIGN_WORLD_NOW, set by you)"
    else:
        anchor = _check_world_options(None, None, as_of) or PIPELINE_AS_OF
        os.environ["CAMPAIGN_WORLD_NOW"] = pipeline_world_now(anchor).isoformat()
        clock = (
            f"{os.environ['CAMPAIGN_WORLD_NOW']} (pinned: the end of the Hillstrom data + 1 h, "
            "so the outcome window has closed and decisions are made as of the end of the data)"
        )
    settings = Settings.from_env()
    console.print(
        f"[bold]dataset[/] hillstrom: data {data_dir}, target {settings.target}\n"
        f"[bold]world clock[/] {clock}"
    )


@app.command()
def runs(limit: Annotated[int, typer.Option(help="How many recent runs.")] = 10) -> None:
    """Recent pipeline runs: status, duration, failed gates and sends."""
    from dagster import RunsFilter

    from orchestration.run_summary import summarize_run

    instance = _instance()
    records = instance.get_runs(filters=RunsFilter(job_name="campaign_pipeline"), limit=limit)
    if not records:
        _fail("no campaign_pipeline run recorded yet; run `make run` first")
    table = Table(title=f"last {len(records)} runs of campaign_pipeline")
    for column in ("run", "started (UTC)", "status", "seconds", "failed gates", "delivered"):
        table.add_column(column)
    for record in records:
        result = summarize_run(instance, record.run_id)
        stats = instance.get_run_stats(record.run_id)
        started = (
            datetime.fromtimestamp(stats.start_time, UTC).strftime("%Y-%m-%d %H:%M")
            if stats.start_time
            else "-"
        )
        failed = [f"{c['asset']}:{c['check']}" for c in result.failed_checks]
        sends = result.metadata("campaign_sends")
        table.add_row(
            record.run_id[:8],
            started,
            result.status,
            f"{result.seconds:.0f}" if result.seconds else "-",
            ", ".join(failed) or "-",
            f"{sends.get('delivered', 0):,}" if sends else "-",
        )
    console.print(table)


@app.command()
def checks(
    run_id: Annotated[
        str | None, typer.Argument(help="Run id (prefix ok); default the latest.")
    ] = None,
) -> None:
    """A run's summary: stages, model, audience, sends and every gate with its evidence (dbt
    tests summarised); exit 1 if a gate failed."""
    from dagster import RunsFilter

    instance = _instance()
    runs_ = instance.get_runs(filters=RunsFilter(job_name="campaign_pipeline"), limit=50)
    if not runs_:
        _fail("no campaign_pipeline run recorded yet; run `make run` first")
    chosen = next((r for r in runs_ if run_id is None or r.run_id.startswith(run_id)), None)
    if chosen is None:
        _fail(f"no recent run starts with {run_id!r}; see `campaign runs`")
    _print_summary(instance, chosen.run_id, None)
    from orchestration.run_summary import summarize_run

    if summarize_run(instance, chosen.run_id).failed_checks:
        raise typer.Exit(1)


def _instance():
    from orchestration.instance import dagster_instance

    if not os.environ.get("DAGSTER_HOME"):
        _fail(
            "DAGSTER_HOME is not set; use the Makefile targets or export DAGSTER_HOME=$PWD/data/dagster_home"
        )
    return dagster_instance(Settings.from_env(), Path(os.environ["DAGSTER_HOME"]))


@app.command()
def explain(
    customer: Annotated[int, typer.Option(help="Customer id (pseudonymous integer).")],
    campaign: Annotated[
        str | None, typer.Option(help="Campaign name; default every campaign.")
    ] = None,
    day: Annotated[
        str | None, typer.Option(help="Decision day YYYY-MM-DD (UTC); default today.")
    ] = None,
) -> None:
    """Why did a customer (not) get a campaign on a day? Reads the decisions table and the decision API's decisions."""
    from orchestration.core.decisioning.decision_store import explain as explain_decisions
    from orchestration.core.decisioning.realtime import api_decisions

    s = Settings.from_env()
    day = day or datetime.now(UTC).date().isoformat()
    rows = explain_decisions(s.decisions_dir, customer, campaign, day)
    online = api_decisions(s.decisions_dir, customer, campaign, day)
    if rows.empty and online.empty:
        _fail(
            f"no decision about customer {customer}"
            + (f" in campaign {campaign}" if campaign else "")
            + f" on {day} under {s.decisions_dir} (batch runs or the decision API); check the id,"
            " the campaign name and the day"
        )
    if not rows.empty:
        _print_batch_decisions(customer, day, rows)
    if not online.empty:
        _print_api_decisions(customer, day, online)
    _print_reasons([*rows.get("reason", []), *online.get("reason", [])])


def _print_batch_decisions(customer: int, day: str, rows: pd.DataFrame) -> None:
    table = Table(title=f"customer {customer} on {day}: batch runs")
    for column in (
        "run",
        "campaign",
        "decision",
        "reason",
        "uplift",
        "net value",
        "rank",
        "model",
        "policy",
        "features at",
    ):
        table.add_column(column)
    for row in rows.itertuples(index=False):
        table.add_row(
            str(row.run_id)[:8] + (" (dry run)" if row.dry_run else ""),
            row.campaign,
            row.decision,
            row.reason,
            "-" if pd.isna(row.predicted_uplift) else f"{row.predicted_uplift:+.4f}",
            "-" if pd.isna(row.expected_net_value) else f"{row.expected_net_value:+.3f}",
            "-" if pd.isna(row.value_rank) else f"{int(row.value_rank):,}",
            f"v{row.model_version} ({row.scored_by})" if row.model_version else "-",
            str(row.policy_version),
            str(row.feature_timestamp)[:19],
        )
    console.print(table)
    deferred = rows[rows["decision"] == "deferred"]
    for row in deferred.itertuples(index=False):
        console.print(f"  deferred until {row.deferred_until} (UTC)")


def _print_api_decisions(customer: int, day: str, rows: pd.DataFrame) -> None:
    """The decision API's answers (``channel = api``): one line each, then what it read."""
    import json

    table = Table(title=f"customer {customer} on {day}: decision API")
    for column in (
        "decided at",
        "request",
        "campaign",
        "decision",
        "reason",
        "uplift",
        "model",
        "policy",
        "feature version",
        "features at",
        "trace",
    ):
        table.add_column(column)
    for row in rows.itertuples(index=False):
        event = getattr(row, "trigger_event", None)
        table.add_row(
            str(row.decided_at)[:19],
            escape(str(row.request_id)) + (f" (event {event})" if event else ""),
            row.campaign + (" (dry run)" if row.dry_run else ""),
            row.decision,
            row.reason,
            "-" if pd.isna(row.predicted_uplift) else f"{row.predicted_uplift:+.4f}",
            f"v{row.model_version} ({row.scored_by or '-'})" if row.model_version else "-",
            str(row.policy_version or "-"),
            str(row.feature_version or "-"),
            "-" if pd.isna(row.feature_timestamp) else str(row.feature_timestamp)[:19],
            str(row.trace_id or "-"),
        )
    console.print(table)
    for row in rows.itertuples(index=False):
        detail = json.loads(row.answer).get("detail") or ""
        if detail:
            console.print(f"  {row.request_id}: {escape(detail)}")
        features = getattr(row, "features", None)
        if features:
            values = ", ".join(
                f"{k}={'-' if v is None else f'{v:g}' if isinstance(v, float) else v}"
                for k, v in json.loads(features).items()
            )
            console.print(f"  {row.request_id} read: {escape(values)}")


def _print_reasons(reasons: list[str]) -> None:
    from orchestration.core.decisioning.realtime import reason_text

    for reason in dict.fromkeys(reasons):
        console.print(f"  [bold]{reason}[/]: {reason_text(reason)}")


@app.command("dry-run")
def dry_run_command(
    campaign_file: Annotated[
        Path | None, typer.Option("--campaign", help="A campaign YAML file (new or changed).")
    ] = None,
    policy_file: Annotated[
        Path | None,
        typer.Option("--policy", help="A policy YAML file to try instead of the current one."),
    ] = None,
) -> None:
    """What would a campaign or policy change do? Diff against the last live run (+N / -M recipients by reason). Sends nothing."""
    from orchestration.core.decisioning.campaigns import CampaignFileError
    from orchestration.core.decisioning.dry_run import DryRunError, dry_run
    from orchestration.core.decisioning.policy import PolicyFileError

    if campaign_file is None and policy_file is None:
        _fail("give --campaign FILE and/or --policy FILE")
    try:
        result = dry_run(Settings.from_env(), campaign_file=campaign_file, policy_file=policy_file)
    except (CampaignFileError, PolicyFileError, DryRunError) as exc:
        _fail(str(exc))
    for name, error in result.errors.items():
        console.print(f"[red]{name}:[/] {error}")
    table = Table(title=f"dry run (policy {result.policy_version}): nothing sent")
    for column in ("campaign", "recipients", "vs last live run"):
        table.add_column(column)
    for name, diff in result.diffs.items():
        table.add_row(name, f"{result.recipients[name]:,}", diff.describe())
    console.print(table)
    if result.errors and not result.diffs:
        raise typer.Exit(1)


release_app = typer.Typer(
    help="Releases: the runs whose gates let their decisions into the send ledger.",
    no_args_is_help=True,
)
app.add_typer(release_app, name="release")


def _ledger():
    from orchestration.core.delivery.ledger import SendLedger
    from orchestration.core.observability.audit import AuditLog, audit_log_path

    settings = Settings.from_env()
    path = settings.gateway_dir / "ledger.db"
    if not path.exists():
        _fail(f"{path} does not exist: no run has released anything yet (`make run`)")
    return SendLedger(path, audit=AuditLog(audit_log_path(settings.data_dir)))


@release_app.command("list")
def release_list(limit: Annotated[int, typer.Option(help="How many recent releases.")] = 10):
    """Recent releases: run, status (released, revoked, awaiting_approval), when, messages,
    versions, the decisions' digest and the campaigns held for want of an approval."""
    import json

    releases = _ledger().releases().tail(limit)
    table = Table(title="releases (newest last)")
    columns = ("run", "status", "released at", "messages", "model", "policy", "digest", "held")
    for column in columns:
        table.add_column(column)
    for r in releases.itertuples(index=False):
        table.add_row(
            r.run_id[:8],
            r.status + (f" by {r.revoked_by}" if r.revoked_by else ""),
            r.released_at[:19],
            f"{r.messages:,}",
            r.model_versions,
            r.policy_version,
            r.decisions_digest[:12],
            ", ".join(sorted(json.loads(r.held))) or "-",
        )
    console.print(table)


@release_app.command("revoke")
def release_revoke(
    run: Annotated[str, typer.Argument(help="Run id of the release (prefix ok).")],
    reason: Annotated[str, typer.Option(help="Why (recorded with the revocation).")],
    by: Annotated[str, typer.Option(help="Who revokes (recorded).")] = "",
) -> None:
    """Revoke a release: every message of it not yet delivered is cancelled, never sent."""
    ledger = _ledger()
    runs = [r for r in ledger.releases()["run_id"] if r.startswith(run)]
    if len(runs) != 1:
        _fail(
            f"{run!r} matches {len(runs)} releases: give more of the run id (`campaign release list`)"
        )
    who = by or os.environ.get("USER", "") or "unknown"
    try:
        cancelled = ledger.revoke_release(runs[0], by=who, reason=reason)
    except KeyError as exc:
        _fail(str(exc.args[0]))
    console.print(
        f"release {runs[0]} revoked by {who}: {cancelled:,} undelivered message(s) cancelled"
    )


def _record_metrics(instance, run_id: str) -> None:
    """Every run, failed ones included, lands in the metrics table with its final status (the
    run_health_recorder sensors do the same for runs launched from the UI or the daemon)."""
    from orchestration.defs.run_history import record_run_health

    record_run_health(instance, run_id, Settings.from_env())


def _evaluate_alerts(instance, run_id: str) -> None:
    """Alerts for this run (sensors only tick under the daemon): one line per alert sent."""
    from rich.markup import escape

    from orchestration.defs.alerts import evaluate_run_alerts

    try:
        report = evaluate_run_alerts(instance, run_id)
    except ValueError as exc:  # a notifier setting is missing or invalid
        console.print(f"[bold red]alerts not evaluated:[/] {escape(str(exc))}")
        return
    for alert in report.sent:
        colour = "red" if alert.status == "open" else "green"
        console.print(f"[{colour}]alert[/] {alert.status}: {escape(alert.title)} -> {report.sink}")
    for key, error in report.undelivered.items():
        console.print(
            f"[bold red]alert not delivered[/] {escape(key)}: {escape(error)} (retried next run)"
        )
    if report.sent or report.undelivered:
        console.print(f"alert log: {report.log_path}")


def _write_summary_json(instance, run_id: str, elapsed: float, path: Path) -> None:
    import json

    from orchestration.run_summary import summarize_run

    result = summarize_run(instance, run_id)
    payload = {
        "run_id": run_id,
        "status": result.status,
        "wall_seconds": round(elapsed, 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "stages": [s.__dict__ for s in result.stages],
        "materializations": result.materializations,
        "checks": result.checks,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2, default=str))


def _print_summary(instance, run_id: str, elapsed: float | None) -> None:
    from orchestration.run_summary import row_count, summarize_run

    s = Settings.from_env()
    result = summarize_run(instance, run_id)
    stages = Table(title=f"run {run_id[:8]}: {result.status}")
    for column in ("step", "status", "seconds", "rows"):
        stages.add_column(column, justify="right" if column in ("seconds", "rows") else "left")
    for stage in result.stages:
        rows = row_count(result.metadata(stage.step))
        stages.add_row(
            stage.step,
            stage.status,
            f"{stage.seconds:.1f}" if stage.seconds is not None else "-",
            f"{rows:,}" if rows is not None else "",
        )
    console.print(stages)

    raw_rows = {
        k: m.get("rows") for k, m in result.materializations.items() if k.startswith("raw/")
    }
    if raw_rows:
        console.print(
            "raw rows: " + ", ".join(f"{k[4:]}={v:,}" for k, v in raw_rows.items() if v is not None)
        )

    model = result.metadata("uplift_model")
    if model:
        line = (
            f"model {model.get('model')} [{model.get('aliases')}]: qini {model.get('qini', 0):.4f} "
            f"{model.get('qini_ci', '')}, AUUC {model.get('auuc', 0):.4f}, "
            f"uplift@30% {model.get('uplift_at_30', 0):.4f} {model.get('uplift_at_30_ci', '')}"
        )
        if "oracle_ratio_qini" in model:
            line += f", qini/oracle {model['oracle_ratio_qini']:.2f}"
        elif "oracle_ratio" in model:
            line += f", qini/oracle {model['oracle_ratio']}"
        if "target" in model:
            line += f" (dataset {model.get('dataset')}, target {model['target']})"
        console.print(line)
    scores = result.metadata("customer_scores")
    if scores:
        console.print(
            f"scored {scores.get('scored', 0):,} of {scores.get('eligible', 0):,} customers "
            f"({scores.get('inference_success_rate', 0):.1%}) with {scores.get('model')}"
        )
    decisions = result.metadata("campaign_decisions")
    if decisions:
        console.print(
            f"audience: {decisions.get('audience_size', 0):,} sends selected from "
            f"{decisions.get('candidates', 0):,} candidate decisions "
            f"(campaigns: {decisions.get('campaigns')})"
        )
        for name, counts in (decisions.get("by_campaign") or {}).items():
            console.print(
                f"  {name}: send {counts.get('decision_send', 0):,}, holdout "
                f"{counts.get('decision_holdout', 0):,}, excluded {counts.get('decision_excluded', 0):,}"
            )
    sends, release = result.metadata("campaign_sends"), result.metadata("campaign_release")
    if release:
        console.print(
            f"release: {release.get('messages', 0):,} messages released, "
            f"{release.get('newly_due', 0):,} new in the ledger, "
            f"{release.get('already_in_ledger', 0):,} already there today "
            f"(digest {str(release.get('decisions_digest', ''))[:12]})"
        )
        held = release.get("held_awaiting_approval") or {}
        for name, why in sorted(held.items()):
            console.print(f"held, awaiting approval: {name}: {why}", markup=False)
    if sends:
        console.print(
            f"sends: {sends.get('delivered', 0):,} delivered, {sends.get('deferred', 0):,} "
            f"deferred, {sends.get('failed', 0):,} failed"
        )
    elif result.status != "SUCCESS":
        console.print("[bold red]sends: none[/] (the run stopped before the sends)")

    dbt_tests = result.checks_from(DBT_STEP, inside=True)
    dbt_failed = [c for c in dbt_tests if not c["passed"]]
    checks = Table(title=f"gates ({len(dbt_tests)} dbt tests: {len(dbt_failed)} failed)")
    for column in ("asset", "check", "result", "evidence"):
        checks.add_column(column)
    for check in [*result.checks_from(DBT_STEP, inside=False), *dbt_failed]:
        checks.add_row(
            check["asset"],
            check["check"],
            "[green]pass[/]" if check["passed"] else f"[red]FAIL ({check['severity'].lower()})[/]",
            check["description"][:120],
        )
    console.print(checks)
    for check in result.failed_checks:
        console.print(
            f"[red]failed:[/] {check['asset']} · {check['check']}: {check['description']}"
        )

    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if elapsed is not None:
        console.print(f"wall {elapsed:.1f}s, peak memory {peak_mb:,.0f} MB")
    console.print(
        "where things are:\n"
        f"  Dagster UI      make ui  -> http://127.0.0.1:3000 (run history in {os.environ.get('DAGSTER_HOME')})\n"
        f"  MLflow          make mlflow -> http://127.0.0.1:5000 ({without_password(s.mlflow_tracking_uri)})\n"
        f"  drift reports   {s.reports_dir / 'drift'}\n"
        f"  decisions       {s.decisions_dir}\n"
        f"  send ledger     {s.gateway_dir / 'ledger.db'} (outbox: {s.gateway_dir / 'outbox.db'})"
    )


audit_app = typer.Typer(
    help="The audit trail: every governance action (release, hold, revocation, promotion, "
    "submission, approval, kill switch, a version going live), in a hash-chained log.",
    no_args_is_help=True,
)
app.add_typer(audit_app, name="audit")


def _audit_log_or_none():
    """The data directory's audit log, or None when nothing was ever audited (no file yet)."""
    from orchestration.core.observability.audit import AuditLog, audit_log_path

    path = audit_log_path(Settings.from_env().data_dir)
    return (AuditLog(path) if path.exists() else None), path


def _short_hashes(value):
    """Details for one line: 64-hex hashes cut to 12 characters."""
    if isinstance(value, dict):
        return {k: _short_hashes(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_short_hashes(v) for v in value]
    if isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdef" for c in value):
        return value[:12]
    return value


@audit_app.command("verify")
def audit_verify(
    anchor: Annotated[
        str,
        typer.Option(help="A head hash (or prefix) recorded earlier: it must still be in the log."),
    ] = "",
) -> None:
    """Check the chain: exit 0 when intact, 1 naming the first edited, removed or moved entry."""
    log, path = _audit_log_or_none()
    if log is None:
        if anchor:
            _fail(
                escape(f"{path} does not exist, but --anchor {anchor} was given: the log is gone")
            )
        console.print(f"0 entries, chain intact (no audit log yet at {path})")
        return
    result = log.verify(anchor=anchor or None)
    if not result.ok:
        _fail(escape(f"{path}: {result.message()}"))
    console.print(f"{result.entries} entries, chain intact")
    console.print(f"head {result.head}", highlight=False)


@audit_app.command("log")
def audit_log(
    limit: Annotated[int, typer.Option(min=1, help="How many recent entries.")] = 20,
) -> None:
    """The newest entries, oldest first: seq, when, who, what, subject, hashes involved."""
    import json

    log, path = _audit_log_or_none()
    if log is None:
        console.print(f"no audit log yet at {path}")
        return
    for e in log.entries(limit=limit):
        details = json.dumps(_short_hashes(e.details), sort_keys=True, separators=(",", ":"))
        console.print(
            f"#{e.seq} {e.at[:19]}Z {e.actor} {e.action} {e.subject} {details} "
            f"prev={e.prev_hash[:12]} hash={e.entry_hash[:12]}",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )


# Four-eyes governance (orchestration/governance_cli.py): submit, approve, approvals, kill switch.
app.add_typer(governance_cli.submit_app, name="submit")
app.add_typer(governance_cli.approve_app, name="approve")
app.command("approvals")(governance_cli.approvals)
app.command("keygen")(governance_cli.keygen)
app.add_typer(governance_cli.kill_switch_app, name="kill-switch")


token_app = typer.Typer(
    help="Bearer tokens of the decision API (stored hashed; a token is shown once, at creation).",
    no_args_is_help=True,
)
app.add_typer(token_app, name="token")

_TOKENS_FILE = typer.Option(
    help="The token file; default <CAMPAIGN_DATA_DIR>/api/tokens.json.", show_default=False
)


def _token_store(tokens_file: Path | None):
    from orchestration.api.tokens import TokenStore, tokens_path

    return TokenStore(tokens_file or tokens_path(Settings.from_env()))


@token_app.command("create")
def token_create(
    scope: Annotated[
        list[str], typer.Option(help="A scope: decide, events or admin (repeat for more).")
    ],
    name: Annotated[str | None, typer.Option(help="A name to list and revoke it by.")] = None,
    tokens_file: Annotated[Path | None, _TOKENS_FILE] = None,
) -> None:
    """Create a token and print it once (only its salted hash is stored)."""
    from orchestration.api.tokens import TokenError

    store = _token_store(tokens_file)
    try:
        record, token = store.create(scope, name)
    except TokenError as exc:
        _error(str(exc))
    console.print(
        f"token {escape(record.name)} (scopes: {', '.join(record.scopes)}) stored in"
        f" {escape(str(store.path))}; it is shown only now:",
        highlight=False,
    )
    print(token)


@token_app.command("revoke")
def token_revoke(
    name: Annotated[str, typer.Argument(help="The token's name (or id).")],
    tokens_file: Annotated[Path | None, _TOKENS_FILE] = None,
) -> None:
    """Revoke a token: the API refuses it (401) from its next request."""
    from orchestration.api.tokens import TokenError

    try:
        record = _token_store(tokens_file).revoke(name)
    except TokenError as exc:
        _error(str(exc))
    console.print(f"token {escape(record.name)} revoked at {record.revoked_at}", highlight=False)


@token_app.command("list")
def token_list(tokens_file: Annotated[Path | None, _TOKENS_FILE] = None) -> None:
    """The tokens: name, id, scopes, created, revoked (never a secret: none is stored)."""
    store = _token_store(tokens_file)
    records = store.records()
    if not records:
        console.print(f"no tokens in {store.path} (`campaign token create --scope decide`)")
        return
    table = Table(title=f"tokens in {store.path}")
    for column in ("name", "id", "scopes", "created", "revoked"):
        table.add_column(column)
    for r in records:
        table.add_row(r.name, r.id, ", ".join(r.scopes), r.created_at, r.revoked_at or "-")
    console.print(table)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to bind (loopback by default).")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port.")] = 8000,
    refresh_seconds: Annotated[
        float, typer.Option(min=0.5, help="How often to check for a moved alias or release.")
    ] = 10.0,
    rate_limit: Annotated[
        float, typer.Option(min=0.001, help="Requests per second per token (token bucket).")
    ] = 200.0,
    burst: Annotated[
        float | None, typer.Option(min=1, help="Bucket size; default twice the rate.")
    ] = None,
    tokens_file: Annotated[Path | None, _TOKENS_FILE] = None,
) -> None:
    """Serve the real-time decision API (POST /v1/decisions, GET /v1/health). Decides; never
    sends: messages reach the ledger only through a release."""
    import uvicorn

    from orchestration.api.app import create_app

    settings = Settings.from_env()
    console.print(
        f"[bold]decision API[/] on http://{host}:{port} (data {settings.data_dir}); loading the"
        " feature store, the models and the policy ...",
        highlight=False,
    )
    application = create_app(
        settings,
        tokens_file=tokens_file,
        rate_per_second=rate_limit,
        burst=burst,
        refresh_seconds=refresh_seconds,
    )
    uvicorn.run(application, host=host, port=port, log_level="warning", access_log=False)


def main() -> None:  # pragma: no cover - console entry point
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":  # pragma: no cover
    main()
