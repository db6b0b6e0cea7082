"""Bad input never switches a safety off, and never ends in a traceback.

Each case is a file or a command line someone could plausibly write. The file cases must fail
with a message that names the file and the field (or the variable); the command-line cases must
also exit non-zero with one ``error:`` line and no traceback, before any work (no pipeline run).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from orchestration.cli import app
from orchestration.core.decisioning.campaigns import (
    CampaignFileError,
    load_campaign_file,
    load_campaigns,
)
from orchestration.core.decisioning.policy import PolicyFileError, load_policy, parse_policy
from orchestration.core.delivery.config import GatewayConfigError, load_gateway_config
from orchestration.settings import CAMPAIGNS_DIR, GATEWAY_CONFIG, POLICY_FILE

CAMPAIGN = "name: a_campaign\nchannel: email\nmax_sends: 10\n"
RULES = "frequency_caps: []\nquiet_hours: {}\n"
GATEWAY_WITH_URL = (
    "providers:\n"
    "  esp: {{type: http, url: '{url}'}}\n"
    "  outbox: {{type: outbox}}\n"
    "channels:\n"
    "  email: {{provider: esp}}\n"
    "  sms: {{provider: outbox}}\n"
    "  push: {{provider: outbox}}\n"
)


def _write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(text)
    return path


# --- the policy: caps and quiet hours are stated, never left out ------------------------------


def test_an_empty_policy_file_is_an_error_naming_both_rules_and_how_to_say_none(tmp_path):
    path = _write(tmp_path, "global_policy.yaml", "")
    with pytest.raises(PolicyFileError) as error:
        load_policy(path)
    message = str(error.value)
    assert f"{path}: frequency_caps: required field is missing" in message
    assert f"{path}: quiet_hours: required field is missing" in message
    assert "`frequency_caps: []`" in message and "`quiet_hours: {}`" in message


@pytest.mark.parametrize(
    ("text", "field", "how"),
    [
        ("frequency_caps: []\n", "quiet_hours", "`quiet_hours: {}`"),
        ("quiet_hours: {}\n", "frequency_caps", "`frequency_caps: []`"),
        ("frequency_caps:\nquiet_hours: {}\n", "frequency_caps", "`frequency_caps: []`"),
    ],
    ids=["no quiet_hours", "no frequency_caps", "blank frequency_caps"],
)
def test_a_policy_that_omits_a_rule_names_the_file_the_field_and_how_to_say_none(
    tmp_path, text, field, how
):
    path = tmp_path / "policy.yaml"
    with pytest.raises(PolicyFileError) as error:
        parse_policy("global_control: {share: 0.05}\n" + text, path)
    message = str(error.value)
    assert message.startswith(f"{path}: {field}: ") and how in message
    assert "\n" not in message  # one problem, one line


def test_none_declared_explicitly_is_a_valid_policy():
    policy = parse_policy(RULES).policy
    assert policy.frequency_caps == [] and policy.quiet_hours == {}


def test_the_shipped_policy_states_its_caps_and_quiet_hours():
    policy = load_policy(POLICY_FILE).policy
    assert policy.frequency_caps and policy.quiet_hours


@pytest.mark.parametrize(
    ("rule", "field"),
    [
        ("{scope: all, max_messages: '3', window_days: 7}", "frequency_caps.0.max_messages"),
        ("{scope: all, max_messages: true, window_days: 7}", "frequency_caps.0.max_messages"),
        ("{scope: all, max_messages: 3, window_days: 7.5}", "frequency_caps.0.window_days"),
        ("{scope: all, max_messages: 100000000000000000000, window_days: 7}", "max_messages"),
    ],
    ids=["quoted number", "boolean", "fraction", "huge"],
)
def test_policy_numbers_are_strict_and_bounded(tmp_path, rule, field):
    path = tmp_path / "policy.yaml"
    with pytest.raises(PolicyFileError) as error:
        parse_policy(f"frequency_caps: [{rule}]\nquiet_hours: {{}}\n", path)
    assert str(path) in str(error.value) and field in str(error.value)


def test_policy_share_must_be_a_finite_number(tmp_path):
    path = tmp_path / "policy.yaml"
    with pytest.raises(PolicyFileError, match=r"global_control\.share"):
        parse_policy("global_control: {share: .nan}\n" + RULES, path)


# --- campaign files: strict types, bounded numbers, no dead fields, every file seen ----------


@pytest.mark.parametrize(
    ("extra", "field", "fragment"),
    [
        ('enabled: "yes"\n', "enabled", "valid boolean, got 'yes'"),
        ('dry_run: "no"\n', "dry_run", "valid boolean, got 'no'"),
        ("allow_fallback: 1\n", "allow_fallback", "valid boolean, got 1"),
        ("priority: 1.5\n", "priority", "valid integer"),
        ("holdout_share: '0.1'\n", "holdout_share", "valid number"),
        ("holdout_share: 1.5\n", "holdout_share", "less than 1"),
        ("challenger_share: -0.1\n", "challenger_share", "greater than or equal to 0"),
        ("budget: {cost_per_send: .inf}\n", "budget.cost_per_send", "finite number"),
        ("budget: {max_total_cost: .nan}\n", "budget.max_total_cost", "finite number"),
        (
            "budget: {value_per_conversion: -1}\n",
            "budget.value_per_conversion",
            "greater than or equal to 0",
        ),
        ("min_predicted_uplift: 5\n", "min_predicted_uplift", "less than or equal to 1"),
        (
            "expected_audience: {history_factor: .inf}\n",
            "expected_audience.history_factor",
            "finite number",
        ),
        ("fairness: {min_ratio: 2}\n", "fairness.min_ratio", "less than or equal to 1"),
    ],
)
def test_campaign_values_are_strict_and_bounded(tmp_path, extra, field, fragment):
    path = _write(tmp_path, "c.yaml", CAMPAIGN + extra)
    with pytest.raises(CampaignFileError) as error:
        load_campaign_file(path)
    message = str(error.value)
    assert f"{path}: {field}: " in message and fragment in message, message


@pytest.mark.parametrize(
    ("max_sends", "fragment"),
    [
        ("true", "valid integer, got True"),
        ('"5000"', "valid integer, got '5000'"),
        ("100000000000000000000", "less than or equal to 100000000"),
        ("0", "greater than 0"),
    ],
)
def test_max_sends_is_a_bounded_whole_number(tmp_path, max_sends, fragment):
    path = _write(tmp_path, "c.yaml", f"name: a_campaign\nchannel: email\nmax_sends: {max_sends}\n")
    loaded = load_campaigns(tmp_path)
    assert loaded.campaigns == {}  # nothing decided, so nothing sent, for the broken file
    assert f"{path}: max_sends: " in loaded.errors[path] and fragment in loaded.errors[path]


def test_schedule_is_rejected_with_what_to_do(tmp_path):
    path = _write(tmp_path, "c.yaml", CAMPAIGN + 'schedule: "0 9 * * *"\n')
    with pytest.raises(CampaignFileError) as error:
        load_campaign_file(path)
    assert str(error.value) == (
        f"{path}: schedule is not supported: campaigns run when the pipeline runs (the"
        " daily_campaign_pipeline schedule); remove the field"
    )


@pytest.mark.parametrize("name", ["upper.YAML", "mixed.Yml", "lower.yml", "plain.yaml"])
def test_campaign_files_are_found_whatever_the_case_of_their_extension(tmp_path, name):
    _write(tmp_path, name, CAMPAIGN)
    _write(tmp_path, "notes.txt", "not a campaign")
    loaded = load_campaigns(tmp_path)
    assert loaded.sources == {"a_campaign": tmp_path / name} and not loaded.errors


def test_the_shipped_campaigns_load_without_errors():
    loaded = load_campaigns(CAMPAIGNS_DIR)
    assert loaded.campaigns and not loaded.errors


# --- the gateway: an unset ${VAR} is an error, never a literal --------------------------------


@pytest.mark.parametrize("reference", ["${NO_SUCH_GATEWAY_URL}", "$NO_SUCH_GATEWAY_URL/send"])
def test_an_unset_variable_in_the_gateway_config_names_file_field_and_variable(
    tmp_path, monkeypatch, reference
):
    monkeypatch.delenv("NO_SUCH_GATEWAY_URL", raising=False)
    path = _write(tmp_path, "gateway.yaml", GATEWAY_WITH_URL.format(url=reference))
    with pytest.raises(GatewayConfigError) as error:
        load_gateway_config(path)
    message = str(error.value)
    assert message.startswith(f"{path}: providers.esp.url: environment variable")
    assert "NO_SUCH_GATEWAY_URL" in message and "is not set" in message


def test_an_empty_variable_in_the_gateway_config_is_an_error_too(tmp_path, monkeypatch):
    monkeypatch.setenv("EMPTY_GATEWAY_URL", "  ")
    path = _write(tmp_path, "gateway.yaml", GATEWAY_WITH_URL.format(url="${EMPTY_GATEWAY_URL}"))
    with pytest.raises(GatewayConfigError, match="EMPTY_GATEWAY_URL"):
        load_gateway_config(path)


def test_a_set_variable_is_expanded_and_the_shipped_config_loads(tmp_path, monkeypatch):
    monkeypatch.setenv("GATEWAY_URL_FOR_TEST", "http://127.0.0.1:9")
    path = _write(tmp_path, "gateway.yaml", GATEWAY_WITH_URL.format(url="${GATEWAY_URL_FOR_TEST}"))
    assert load_gateway_config(path).providers["esp"].url == "http://127.0.0.1:9"
    assert load_gateway_config(GATEWAY_CONFIG).channels


# --- the command line: one line, exit non-zero, no traceback, before any work ----------------

ENV = {"COLUMNS": "200", "NO_COLOR": "1", "TERM": "dumb"}


@pytest.fixture
def cli_env(data_dir, monkeypatch) -> Path:
    """A fresh data directory and no DAGSTER_HOME: nothing here may get as far as a run."""
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    for name in ("CAMPAIGN_CUSTOMERS", "CAMPAIGN_DATASET", "CAMPAIGN_SEED"):
        monkeypatch.delenv(name, raising=False)
    return data_dir


def _invoke(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args), env={**ENV, **(env or {})}, prog_name="campaign")
    output = re.sub(r"\x1b\[[0-9;]*m", "", result.output)
    # an exception that escaped the command would be a traceback for the user
    assert result.exception is None or isinstance(result.exception, SystemExit), output
    assert "Traceback" not in output
    assert result.exit_code != 0, output
    assert "loading definitions" not in output  # failed before any work
    lines = [line for line in output.splitlines() if line.strip()]
    assert lines and lines[0].startswith("error: "), output
    return result.exit_code, output


@pytest.mark.parametrize("command", [["run"], ["generate"]])
@pytest.mark.parametrize("customers", ["0", "-5"])
def test_zero_or_negative_customers_is_rejected(cli_env, command, customers):
    _, output = _invoke(*command, "--customers", customers)
    assert "--customers must be" in output and f"got {int(customers):,}" in output
    assert not (cli_env / "raw").exists()


@pytest.mark.parametrize("command", ["run", "generate", "explain --customer 1"])
def test_a_bad_environment_variable_is_one_line(cli_env, command):
    _, output = _invoke(*command.split(), env={"CAMPAIGN_CUSTOMERS": "abc"})
    assert output.strip() == (
        "error: environment variable CAMPAIGN_CUSTOMERS='abc' is not valid: expected an"
        " integer >= 1"
    )


def test_an_unknown_dataset_in_the_environment_lists_the_allowed_ones(cli_env):
    _, output = _invoke("run", env={"CAMPAIGN_DATASET": "imaginary"})
    assert "CAMPAIGN_DATASET='imaginary'" in output
    assert "synthetic, files, hillstrom" in output


def test_a_bad_as_of_is_one_line(cli_env):
    _, output = _invoke("run", "--as-of", "yesterday")
    assert "--as-of 'yesterday' is not an ISO timestamp" in output


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into a read-only directory")
@pytest.mark.parametrize("command", ["run", "generate"])
def test_a_read_only_data_directory_is_named(cli_env, command):
    cli_env.chmod(0o555)
    try:
        _, output = _invoke(command)
    finally:
        cli_env.chmod(0o755)
    assert f"data directory {cli_env} is not writable (Permission denied)" in output
    assert "CAMPAIGN_DATA_DIR" in output


@pytest.mark.parametrize("command", ["run", "generate"])
def test_a_data_directory_that_cannot_be_created_is_named(tmp_path, cli_env, monkeypatch, command):
    blocker = _write(tmp_path, "a_file", "")  # a data directory under a file (root too)
    monkeypatch.setenv("CAMPAIGN_DATA_DIR", str(blocker / "data"))
    _, output = _invoke(command)
    assert f"data directory {blocker / 'data'} is not writable" in output
    assert "CAMPAIGN_DATA_DIR" in output


def test_an_unwritable_dagster_home_is_named(tmp_path, cli_env):
    blocker = _write(tmp_path, "a_file", "")
    _, output = _invoke("run", env={"DAGSTER_HOME": str(blocker / "home")})
    assert f"DAGSTER_HOME (the run history) {blocker / 'home'} is not writable" in output


def test_run_stops_on_a_policy_that_states_no_rules(tmp_path, cli_env):
    policy = _write(tmp_path, "empty.yaml", "")
    _, output = _invoke("run", env={"CAMPAIGN_POLICY_FILE": str(policy)})
    assert f"{policy}: frequency_caps: required field is missing" in output
    assert "`quiet_hours: {}`" in output


def test_run_stops_on_an_unset_gateway_variable(tmp_path, cli_env, monkeypatch):
    monkeypatch.delenv("NO_SUCH_GATEWAY_URL", raising=False)
    gateway = _write(tmp_path, "gw.yaml", GATEWAY_WITH_URL.format(url="${NO_SUCH_GATEWAY_URL}"))
    _, output = _invoke("run", env={"CAMPAIGN_GATEWAY_CONFIG": str(gateway)})
    assert f"{gateway}: providers.esp.url: environment variable NO_SUCH_GATEWAY_URL" in output


def test_the_installed_command_reports_without_a_traceback(cli_env):
    """The `campaign` script (``orchestration.cli:app``), in its own process, as a user runs it."""
    script = Path(sys.executable).with_name("campaign")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "orchestration.cli"]
    env = {**os.environ, **ENV, "CAMPAIGN_CUSTOMERS": "abc"}
    done = subprocess.run(
        [*command, "run"], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 1
    assert "Traceback" not in done.stdout + done.stderr
    assert done.stderr.strip() == (
        "error: environment variable CAMPAIGN_CUSTOMERS='abc' is not valid: expected an"
        " integer >= 1"
    )
