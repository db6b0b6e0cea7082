"""The `campaign` command: every subcommand answers --help, and bad input fails clearly.

Commands import their heavy dependencies inside the command, so none of this touches data.
"""

from __future__ import annotations

import re

import pytest
import typer
from typer.testing import CliRunner

from orchestration.cli import app

COMMANDS = [
    "generate",
    "run",
    "runs",
    "checks",
    "explain",
    "dry-run",
    "approvals",
    "keygen",
    "serve",
    "release",
    "audit",
    "submit",
    "approve",
    "kill-switch",
    "token",
]
# Wide, plain output: rich wraps and colours to the terminal otherwise.
ENV = {"COLUMNS": "200", "NO_COLOR": "1", "TERM": "dumb"}


def _invoke(*args: str):
    result = CliRunner().invoke(app, list(args), env=ENV, prog_name="campaign")
    # rich draws errors and help in boxes: keep the words, drop ANSI codes and box drawing
    text = re.sub(r"\x1b\[[0-9;]*m", "", result.output)
    return result, " ".join(re.sub(r"[│╭╮╰╯─]", " ", text).split())


def test_the_command_list_is_the_documented_one():
    assert list(typer.main.get_command(app).commands) == COMMANDS


def test_top_level_help_lists_every_command():
    result, text = _invoke("--help")
    assert result.exit_code == 0, text
    assert "raw data to governed, gated campaign sends" in text
    for command in COMMANDS:
        assert command in text


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_answers_help(command):
    result, text = _invoke(command, "--help")
    assert result.exit_code == 0, text
    assert f"Usage: campaign {command}" in text
    assert "--help" in text


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["frobnicate"], "No such command 'frobnicate'"),
        (["run", "--nope"], "No such option: --nope"),
        (["generate", "--customers", "many"], "Invalid value for '--customers'"),
        (["explain"], "Missing option '--customer'"),
        (["explain", "--customer", "x"], "Invalid value for '--customer'"),
        (["runs", "--limit"], "Option '--limit' requires an argument"),
        (["dry-run"], "give --campaign FILE and/or --policy FILE"),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, list) else None,
)
def test_unknown_or_bad_input_fails_with_a_clear_message(args, message):
    result, text = _invoke(*args)
    assert result.exit_code != 0
    assert message in text, text


def test_no_arguments_shows_the_help_and_fails():
    result, text = _invoke()
    assert result.exit_code != 0
    assert "Usage: campaign" in text
