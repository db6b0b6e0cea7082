"""What `campaign run` shows while the pipeline runs: one live line per stage, the rest in a file.

Everything the run writes (Dagster's event log, dbt, MLflow, Feast, warnings, the notebook
kernel) is routed at the file-descriptor level into ``<data_dir>/logs/run-<run_id>.log``, so
subprocesses are caught too. The terminal gets a spinner on the running stage and, as each
stage ends, one line with its seconds, rows and checks, followed by the run summary.
``--verbose`` copies the whole output to the terminal as well, live.

Library warnings the run does not show are listed in one place, :data:`LIBRARY_WARNINGS`,
each by exact category and module. Any other warning (ours included) is written to the log
and noted on the terminal in one line.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import re
import sys
import threading
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from dagster import BetaWarning, DagsterEventType
from litestar.exceptions import LitestarDeprecationWarning
from pydantic.warnings import PydanticDeprecatedSince20
from rich.console import Console
from rich.markup import escape
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from orchestration.run_summary import row_count

# (category, module regex, message regex, why it is not shown). The module is the one Python
# attributes the warning to: for a call into a library's beta API, the calling module.
LIBRARY_WARNINGS: tuple[tuple[type[Warning], str, str, str], ...] = (
    (
        BetaWarning,
        r"orchestration\.defs\.",
        r"\s*Parameter `data_version` of initializer `Output\.__init__` is currently in beta",
        "our assets set their data version on purpose (a beta parameter of Dagster's Output)",
    ),
    (
        DeprecationWarning,
        r"ibis\.backends\.duckdb\Z",
        r"\s*fetch_arrow_table\(\) is deprecated",
        "ibis (Feast's DuckDB offline store) calls a DuckDB method DuckDB deprecated",
    ),
    (
        DeprecationWarning,
        r"dagster_dbt\.asset_utils\Z",
        r"\s*AssetExecutionContext\.op is deprecated",
        "dagster-dbt calls a Dagster method Dagster deprecated",
    ),
    (
        PydanticDeprecatedSince20,
        r"dagster_shared\.dagster_model\.pydantic_compat_layer\Z",
        r"\s*The `__fields__` attribute is deprecated",
        "Dagster reads pydantic's deprecated `__fields__`",
    ),
    (
        DeprecationWarning,
        r"evidently\.legacy\.tests\.utils\Z",
        r"\s*numpy\.core is deprecated",
        "Evidently's legacy test utilities (imported by its drift report) touch numpy.core",
    ),
    (
        LitestarDeprecationWarning,
        r"litestar\.",
        r"\s*(Call to deprecated function|Use of deprecated class)",
        "Evidently imports litestar APIs that litestar deprecated",
    ),
    (
        RuntimeWarning,
        r"feast\.infra\.offline_stores\.contrib\.spark_offline_store\.",
        r"\s*The spark (data source API|offline store) is an experimental feature",
        "the spark profile uses Feast's Spark offline store, which Feast calls alpha (contrib)",
    ),
)

STEP_ENDS = {
    DagsterEventType.STEP_SUCCESS: "success",
    DagsterEventType.STEP_FAILURE: "failure",
    DagsterEventType.STEP_SKIPPED: "skipped",
}
_ANSI = re.compile(rb"\x1b\[[0-9;?]*[A-Za-z]")
_MARKS = {"success": "[green]✓[/]", "warned": "[yellow]![/]", "failure": "[red]✗[/]"}
# Dagster says so, in a log message, for each step it does not run after a failure upstream.
_NOT_RUN = re.compile(r"Dependencies for step (\S+) (failed|were not executed)")


def run_log_path(data_dir: Path, run_id: str) -> Path:
    return data_dir / "logs" / f"run-{run_id}.log"


def apply_warning_filters() -> None:
    """Show our own deprecation warnings (Python hides them outside ``__main__``) and ignore
    exactly the library warnings above. Applied again at each stage start: libraries imported
    by a stage may push their own filters in front (Feast sets DeprecationWarning to "once")."""
    warnings.filterwarnings("default", category=DeprecationWarning, module=r"orchestration\.")
    for category, module, message, _why in LIBRARY_WARNINGS:
        warnings.filterwarnings("ignore", message=message, category=category, module=module)


# --- the stage lines --------------------------------------------------------------------------


@dataclass
class _Stage:
    started: float
    assets: int = 0
    rows: int | None = None
    checks: int = 0
    failed_checks: list[str] = field(default_factory=list)
    blocking_failed: bool = False  # a failed check of severity ERROR (not only WARN)


def _facts(stage: _Stage) -> list[str]:
    facts = [f"{stage.assets} assets"] if stage.assets > 1 else []
    if stage.rows is not None:
        facts.append(f"{stage.rows:,} rows")
    failed, checks = stage.failed_checks, stage.checks
    if failed:
        names = ", ".join(failed[:3]) + ("..." if len(failed) > 3 else "")
        counted = "check failed" if checks == 1 else f"{len(failed)} of {checks} checks failed"
        colour = "red" if stage.blocking_failed else "yellow"
        facts.append(f"[{colour}]{counted}: {escape(names)}[/]")
    elif checks:
        facts.append("check passed" if checks == 1 else f"{checks} checks passed")
    return facts


def stage_line(step: str, status: str, seconds: float | None, stage: _Stage | None) -> str:
    """One finished stage: mark, name, seconds, rows and checks (rich markup). ``status`` is
    success, failure, or what happened instead (skipped, not run: ...)."""
    stage = stage or _Stage(started=0.0)
    if status == "success" and stage.failed_checks:
        status = "failure" if stage.blocking_failed else "warned"
    mark = _MARKS.get(status, "[dim]-[/]")
    took = f"{seconds:6.1f}s" if seconds is not None else "      -"
    facts = _facts(stage)
    if status == "failure" and not stage.failed_checks:
        facts.append("[red]failed[/]")
    elif status not in ("success", "failure", "warned"):
        facts.append(escape(status))
    return f"  {mark} {escape(step):<46} {took}  {', '.join(facts)}".rstrip()


class StageProgress:
    """Follows a run's events (an instance event listener): a spinner on the running stage and
    one printed line per finished stage; warnings logged by a stage are printed too."""

    def __init__(self, progress: Progress) -> None:
        self._progress = progress
        self._task = progress.add_task("starting", total=None)
        self._stages: dict[str, _Stage] = {}
        self._notes: list[str] = []
        self.finished = 0

    def status(self, text: str) -> None:
        self._progress.reset(self._task, description=escape(text))

    def note(self, text: str) -> None:
        """A line under the running stage's line (printed when it ends), or now."""
        text = text if len(text) <= 160 else text[:159] + "…"
        self._notes.append(f"    [yellow]{escape(text)}[/]")
        if not self._stages:
            self.print_notes()

    def print_notes(self) -> None:
        for line in self._notes:
            self._progress.console.print(line, soft_wrap=True)
        self._notes.clear()

    def __call__(self, record: Any) -> None:
        try:
            self._on_record(record)
        except Exception as exc:  # never let the display break the run; the log has the events
            print(f"run progress display: {type(exc).__name__}: {exc}", file=sys.stderr)

    def _on_record(self, record: Any) -> None:
        event = record.dagster_event
        if event is None:
            self._on_message(record.step_key, record.level, record.user_message or "")
            return
        step, kind = event.step_key, event.event_type
        if kind == DagsterEventType.STEP_START:
            apply_warning_filters()
            self._stages[step] = _Stage(started=record.timestamp)
            self.status(step)
        elif kind == DagsterEventType.ASSET_MATERIALIZATION and step in self._stages:
            self._count_rows(self._stages[step], event)
        elif kind == DagsterEventType.ASSET_CHECK_EVALUATION and step in self._stages:
            self._count_check(self._stages[step], event.event_specific_data)
        elif kind in STEP_ENDS:
            self._finish(step, STEP_ENDS[kind], record.timestamp, event)

    def _on_message(self, step: str | None, level: int, message: str) -> None:
        """A step Dagster does not run gets its line; other warnings and errors a note."""
        not_run = _NOT_RUN.match(message)
        if not_run:
            why = "upstream failed" if not_run[2] == "failed" else "upstream not run"
            line = stage_line(not_run[1], f"not run: {why}", None, None)
            self._progress.console.print(line, soft_wrap=True)
            self.finished += 1
        elif level >= logging.WARNING and message.strip():
            self.note(f"{step or 'run'}: {message.strip().splitlines()[0]}")

    @staticmethod
    def _count_rows(stage: _Stage, event: Any) -> None:
        metadata = event.event_specific_data.materialization.metadata
        rows = row_count({k: getattr(v, "value", v) for k, v in metadata.items()})
        stage.assets += 1
        if rows is not None:
            stage.rows = (stage.rows or 0) + rows

    def _count_check(self, stage: _Stage, evaluation: Any) -> None:
        stage.checks += 1
        if not evaluation.passed:
            stage.failed_checks.append(evaluation.check_name)
            stage.blocking_failed |= evaluation.severity.value == "ERROR"
            self.note(f"{evaluation.check_name}: {evaluation.description or 'failed'}")

    def _finish(self, step: str, status: str, at: float, event: Any) -> None:
        stage = self._stages.pop(step, None)
        seconds = at - stage.started if stage else None
        self._progress.console.print(stage_line(step, status, seconds, stage), soft_wrap=True)
        error = getattr(event.event_specific_data, "error", None)
        if status == "failure" and error is not None and not (stage and stage.failed_checks):
            self.note(f"{step}: {error.message.strip().splitlines()[0]}")
        self.print_notes()
        self.finished += 1
        self.status(f"{self.finished} stages done")


# --- routing the output -----------------------------------------------------------------------


class _Sink:
    """Where the run's output goes: the log file (colour codes removed) and, verbose, the
    terminal. Writes after close are dropped (a subprocess may outlive the run)."""

    def __init__(self, log: io.BufferedWriter, terminal_fd: int | None) -> None:
        self._log, self._terminal_fd, self._lock = log, terminal_fd, threading.Lock()

    def write(self, data: bytes) -> None:
        with self._lock, contextlib.suppress(ValueError, OSError):
            self._log.write(_ANSI.sub(b"", data))
            self._log.flush()
            if self._terminal_fd is not None:
                os.write(self._terminal_fd, data)


class _TextSink(io.TextIOBase):
    """A text stream over a :class:`_Sink`, echoed to ``echo`` when verbose: for when stdout
    is not a file descriptor (tests, ``CliRunner``)."""

    def __init__(self, sink: _Sink, echo: TextIO | None) -> None:
        self._sink, self._echo = sink, echo

    def write(self, text: str) -> int:
        self._sink.write(text.encode("utf-8", "replace"))
        if self._echo is not None:
            self._echo.write(text)
        return len(text)


def _pump(read_fd: int, sink: _Sink) -> None:
    with os.fdopen(read_fd, "rb", buffering=0) as pipe:
        while chunk := pipe.read(1 << 16):
            sink.write(chunk)


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(ValueError, OSError):
            stream.flush()


def _has_fds() -> bool:
    try:
        return sys.stdout.fileno() == 1 and sys.stderr.fileno() == 2
    except (AttributeError, OSError, ValueError):
        return False


@contextlib.contextmanager
def _fds_into(sink: _Sink) -> Iterator[None]:
    """Point file descriptors 1 and 2 (this process and its subprocesses) at ``sink``."""
    read_fd, write_fd = os.pipe()
    saved = (os.dup(1), os.dup(2))
    pump = threading.Thread(target=_pump, args=(read_fd, sink), name="run-log", daemon=True)
    pump.start()
    _flush()
    os.dup2(write_fd, 1)
    os.dup2(write_fd, 2)
    os.close(write_fd)
    try:
        yield
    finally:
        _flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in saved:
            os.close(fd)
        pump.join(timeout=5)  # a lingering subprocess may hold the pipe open: do not wait on it


@contextlib.contextmanager
def _streams_into(sink: _Sink, echo: TextIO | None) -> Iterator[None]:
    stream = _TextSink(sink, echo)
    with contextlib.redirect_stdout(stream), contextlib.redirect_stderr(stream):
        yield


@contextlib.contextmanager
def _terminal() -> Iterator[tuple[TextIO, int | None]]:
    """The terminal as it is before the run's output is routed away: a stream, and its file
    descriptor when it has one."""
    if not _has_fds():
        yield sys.stdout, None
        return
    fd = os.dup(1)
    stream = os.fdopen(fd, "w", buffering=1, encoding=sys.stdout.encoding, closefd=False)
    try:
        yield stream, fd
    finally:
        stream.close()
        os.close(fd)


def _where(filename: str) -> str:
    """A warning's file, short: inside site-packages or the project, else its name."""
    parts = Path(filename).parts
    if "site-packages" in parts:
        return "/".join(parts[parts.index("site-packages") + 1 :])
    with contextlib.suppress(ValueError):
        return Path(filename).resolve().relative_to(Path.cwd()).as_posix()
    return Path(filename).name


def _module_of(filename: str) -> str:
    """The dotted module a warning's file is (``pkg/mod.py`` -> ``pkg.mod``)."""
    path = _where(filename).removesuffix(".py").removesuffix("/__init__")
    return path.replace("/", ".")


def is_library_warning(message: Warning | str, category: type[Warning], filename: str) -> bool:
    """Whether a warning about to be shown is one of :data:`LIBRARY_WARNINGS`. The filters
    decide first; this is checked again when a warning is shown because a library may push its
    own filter in front of ours between two stages (Feast sets ``DeprecationWarning`` to "once"
    when the warm-up thread imports it, during the first stage)."""
    module, text = _module_of(filename), str(message)
    return any(
        issubclass(category, hidden)
        and re.match(module_pattern, module)
        and re.match(message_pattern, text, re.IGNORECASE)
        for hidden, module_pattern, message_pattern, _why in LIBRARY_WARNINGS
    )


@contextlib.contextmanager
def _warnings_noted(note: Callable[[str], None] | None) -> Iterator[None]:
    """Warnings still go to stderr (the log); unless verbose, each is also noted in one line."""
    shown = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):
        if is_library_warning(message, category, filename):
            return
        shown(message, category, filename, lineno, file, line)
        if note is not None:
            text = (str(message).strip().splitlines() or [""])[0]
            note(f"warning {category.__name__} ({_where(filename)}:{lineno}): {text}")

    warnings.showwarning = show
    try:
        yield
    finally:
        if warnings.showwarning is show:
            warnings.showwarning = shown


# --- the run display --------------------------------------------------------------------------


@dataclass
class RunDisplay:
    """Handed to the run: ``status`` names what happens before the first stage, ``follow``
    subscribes the stage lines to the run's events."""

    stages: StageProgress | None

    def status(self, text: str) -> None:
        if self.stages is not None:
            self.stages.status(text)

    def follow(self, instance: Any, run_id: str) -> None:
        if self.stages is not None:
            instance.add_event_listener(run_id, self.stages)


def _progress(terminal: TextIO, like: Console) -> Progress:
    console = Console(
        file=terminal,
        width=like.width,
        force_terminal=like.is_terminal,
        no_color=like.no_color,
        highlight=False,
    )
    return Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description}[/]"),
        TimeElapsedColumn(),
        console=console,
        disable=not console.is_terminal,  # piped: the stage lines only, no spinner
        transient=True,
        redirect_stdout=False,
        redirect_stderr=False,
    )


@contextlib.contextmanager
def run_display(log_path: Path, *, verbose: bool, like: Console) -> Iterator[RunDisplay]:
    """Route the run's output into ``log_path`` (and, verbose, to the terminal too) and, unless
    verbose, show the stages live on a console styled ``like`` the CLI's."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    apply_warning_filters()
    with contextlib.ExitStack() as stack:
        terminal, terminal_fd = stack.enter_context(_terminal())
        log = stack.enter_context(log_path.open("ab"))
        if terminal_fd is not None:
            stack.enter_context(_fds_into(_Sink(log, terminal_fd if verbose else None)))
        else:
            stack.enter_context(_streams_into(_Sink(log, None), terminal if verbose else None))
        stages = None if verbose else StageProgress(stack.enter_context(_progress(terminal, like)))
        stack.enter_context(_warnings_noted(stages.note if stages else None))
        try:
            yield RunDisplay(stages)
        finally:
            if stages is not None:
                stages.print_notes()  # those of a stage that never ended
