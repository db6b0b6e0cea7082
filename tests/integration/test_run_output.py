"""What `campaign run` prints: one line per stage, the full event log in a file, `-v` live.

A tiny in-process job (an asset that prints, starts a subprocess and warns; its check; a second
asset that logs a warning) runs under :func:`run_display` in a child process, so the routing of
file descriptors 1 and 2 is the real one. No pipeline, no world.
"""

from __future__ import annotations

import re
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
from dagster import (
    AssetCheckResult,
    Definitions,
    MaterializeResult,
    asset,
    asset_check,
    define_asset_job,
)
from typer.testing import CliRunner

from orchestration.cli import app
from orchestration.run_progress import LIBRARY_WARNINGS, apply_warning_filters, stage_line

PROJECT = Path(__file__).resolve().parents[2]
STEPS = ("numbers", "numbers_numbers_are_positive", "doubled")
FAIL_THE_CHECK = {"value": False}


@asset
def numbers() -> MaterializeResult:
    print("a print from inside a stage")
    subprocess.run(["echo", "a line from a subprocess"], check=True)
    warnings.warn("a warning of our own", UserWarning, stacklevel=1)
    return MaterializeResult(metadata={"rows": 3})


@asset_check(asset=numbers, blocking=True)
def numbers_are_positive() -> AssetCheckResult:
    if FAIL_THE_CHECK["value"]:
        return AssetCheckResult(passed=False, description="-1 is not positive")
    return AssetCheckResult(passed=True)


@asset(deps=[numbers])
def doubled(context) -> MaterializeResult:
    context.log.warning("a warning logged by a stage")
    return MaterializeResult(metadata={"rows": 6})


def tiny_run(log_path: str, verbose: str, fail: str = "0") -> None:
    """Run in the child process: the tiny job under the run display (``fail``: its blocking
    check fails, so ``doubled`` is not run)."""
    import uuid

    from dagster import DagsterInstance
    from rich.console import Console

    from orchestration.run_progress import run_display

    job = Definitions(
        assets=[numbers, doubled],
        asset_checks=[numbers_are_positive],
        jobs=[define_asset_job("tiny")],
    ).resolve_job_def("tiny")
    run_id = str(uuid.uuid4())
    FAIL_THE_CHECK["value"] = fail == "1"
    with run_display(Path(log_path), verbose=verbose == "1", like=Console()) as display:
        instance = DagsterInstance.ephemeral()
        display.follow(instance, run_id)
        result = job.execute_in_process(instance=instance, run_id=run_id, raise_on_error=False)
    assert result.success != FAIL_THE_CHECK["value"]
    print("after the run")


def _run(tmp_path: Path, verbose: bool, fail: bool = False) -> tuple[str, str]:
    log = tmp_path / "logs" / "run.log"
    code = (
        "import sys; from tests.integration.test_run_output import tiny_run; "
        "tiny_run(*sys.argv[1:])"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(log), str(int(verbose)), str(int(fail))],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "COLUMNS": "120", "NO_COLOR": "1", "TERM": "dumb"},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr, log.read_text()


def test_a_quiet_run_prints_one_line_per_stage_and_logs_everything(tmp_path):
    terminal, log = _run(tmp_path, verbose=False)
    stage_lines = [line for line in terminal.splitlines() if re.match(r"  \S \w+ +\d+\.\ds", line)]
    assert [line.split()[1] for line in stage_lines] == list(STEPS), terminal
    assert "3 rows" in stage_lines[0] and "check passed" in stage_lines[1]
    assert "6 rows" in stage_lines[2]
    assert "UserWarning" in terminal and "a warning of our own" in terminal
    assert "a warning logged by a stage" in terminal
    assert terminal.rstrip().endswith("after the run")  # the terminal is back after the run
    for noise in ("STEP_START", "a print from inside a stage", "a line from a subprocess"):
        assert noise not in terminal
        assert noise in log  # the event log, prints and subprocess output land in the file
    assert len(terminal.splitlines()) <= len(STEPS) + 4


def test_a_failed_gate_names_the_check_and_the_stages_not_run(tmp_path):
    terminal, _ = _run(tmp_path, verbose=False, fail=True)
    assert re.search(r"✗ numbers_numbers_are_positive +\d+\.\ds  check failed: ", terminal)
    assert "numbers_are_positive: -1 is not positive" in terminal
    assert re.search(r"- doubled +-  not run: upstream failed", terminal), terminal


def test_verbose_shows_the_event_log_live_and_still_writes_the_file(tmp_path):
    terminal, log = _run(tmp_path, verbose=True)
    for text in ("STEP_START", "a print from inside a stage", "a line from a subprocess"):
        assert text in terminal and text in log
    assert not re.search(r"^  \S numbers +\d", terminal, re.MULTILINE)  # no stage lines
    assert "\x1b[" not in log


@pytest.mark.filterwarnings("ignore:a warning of our own:UserWarning")
def test_without_file_descriptors_the_output_is_routed_in_python(tmp_path, capsys):
    # under pytest (as under CliRunner) sys.stdout is not file descriptor 1
    tiny_run(str(tmp_path / "run.log"), "0")
    terminal, log = capsys.readouterr().out, (tmp_path / "run.log").read_text()
    assert "✓ numbers_numbers_are_positive" in terminal
    assert "a print from inside a stage" in log and "a print from inside a stage" not in terminal
    assert "STEP_START" in log and "STEP_START" not in terminal


def test_run_answers_verbose_in_its_help():
    result = CliRunner().invoke(app, ["run", "--help"], env={"COLUMNS": "200", "NO_COLOR": "1"})
    assert result.exit_code == 0 and "--verbose" in result.output and "-v" in result.output


def test_library_filters_name_a_category_and_module_and_hide_nothing_else():
    for category, module, message, why in LIBRARY_WARNINGS:
        assert category not in (Warning, UserWarning) and module and message and why
    hidden = "fetch_arrow_table() is deprecated, use to_arrow_table() instead."
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        apply_warning_filters()
        for text, module in (
            (hidden, "ibis.backends.duckdb"),
            (hidden, "orchestration.core.features.store"),  # ours would show
            ("another deprecation", "ibis.backends.duckdb"),
        ):
            warnings.warn_explicit(text, DeprecationWarning, "x.py", 1, module=module)
    assert [str(w.message) for w in seen] == [hidden, "another deprecation"]


def test_a_library_warning_stays_hidden_when_a_library_pushes_its_own_filter_in_front():
    from pydantic.warnings import PydanticDeprecatedSince20

    from orchestration.run_progress import _warnings_noted

    site = "/venv/lib/python3.11/site-packages/"
    dagster = (site + "dagster_shared/dagster_model/pydantic_compat_layer.py",
               "dagster_shared.dagster_model.pydantic_compat_layer")  # fmt: skip
    ours = (str(PROJECT / "orchestration" / "cli.py"), "orchestration.cli")
    noted: list[str] = []
    with warnings.catch_warnings():
        warnings.showwarning = lambda *args, **kwargs: None  # the run's log; here, nowhere
        with _warnings_noted(noted.append):
            apply_warning_filters()
            warnings.simplefilter("once", DeprecationWarning)  # what importing Feast does
            for text, (filename, module) in (
                ("The `__fields__` attribute is deprecated, use `model_fields` instead.", dagster),
                ("The `__fields__` attribute is deprecated (in our code)", ours),
                ("another pydantic deprecation", dagster),
            ):
                warnings.warn_explicit(text, PydanticDeprecatedSince20, filename, 1, module=module)
    assert len(noted) == 2, noted
    assert "(orchestration/cli.py:1): The `__fields__` attribute is deprecated (in our" in noted[0]
    assert "pydantic_compat_layer.py:1): another pydantic deprecation" in noted[1]


@pytest.mark.parametrize(
    ("status", "failed", "seconds", "expected"),
    [
        ("success", [], 1.5, r"✓ step +1\.5s  2 checks passed"),
        ("success", ["a"], 1.5, r"! step +1\.5s  1 of 2 checks failed: a"),
        ("failure", [], 1.5, r"✗ step +1\.5s  2 checks passed, failed"),
        ("skipped", [], None, r"- step +-  2 checks passed, skipped"),
    ],
)
def test_a_stage_line_says_how_the_stage_ended(status, failed, seconds, expected):
    from orchestration.run_progress import _Stage

    stage = _Stage(started=0.0, checks=2, failed_checks=failed)  # WARN checks: not blocking
    plain = re.sub(r"\[/?[a-z ]*\]", "", stage_line("step", status, seconds, stage))
    assert re.search(expected, plain), plain
