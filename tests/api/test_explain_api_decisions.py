"""`campaign explain` reads the decision API's decisions (``channel = api``) beside the batch's:
the reason, the feature values read and their time, the model, policy and feature versions and
the trace id of each answer."""

from __future__ import annotations

import re

from typer.testing import CliRunner

from orchestration.cli import app
from tests.api.conftest import CAMPAIGN, FEATURE_VERSION, NOW, auth, body
from tests.api.test_api_http import _plain_customers

ENV = {"COLUMNS": "250", "NO_COLOR": "1", "TERM": "dumb"}
UNKNOWN = 999  # no raw customer row


def _explain(customer: int, day: str):
    result = CliRunner().invoke(
        app, ["explain", "--customer", str(customer), "--day", day], env=ENV, prog_name="campaign"
    )
    return result.exit_code, result.output


def test_explain_shows_the_apis_answer_and_what_it_read(client, decide_token, service):
    customer = _plain_customers()[0]
    answer = client.post(
        "/v1/decisions", json=body("explain-1", customer), headers=auth(decide_token)
    ).json()
    code, output = _explain(customer, NOW.date().isoformat())
    assert code == 0, output
    assert "decision API" in output and "batch runs" not in output  # no batch run that day
    line = next(line for line in output.splitlines() if "explain-1" in line)
    for shown in (CAMPAIGN, answer["decision"], answer["reason"], FEATURE_VERSION):
        assert shown in line, (shown, line)
    assert f"v{answer['model_version']} ({answer['scored_by']})" in line
    assert answer["policy_version"] in line
    assert answer["trace_id"] in line
    assert (NOW - service.loader.features.default_age).isoformat()[:19].replace("T", " ") in line
    # the feature values the decision read: the fake feature is the customer id
    assert re.search(rf"explain-1 read: feature_a={customer}\b", output), output


def test_explain_shows_a_safe_default_with_its_reason(client, decide_token):
    client.post("/v1/decisions", json=body("explain-2", UNKNOWN), headers=auth(decide_token))
    code, output = _explain(UNKNOWN, NOW.date().isoformat())
    assert code == 0, output
    line = next(line for line in output.splitlines() if "explain-2" in line)
    assert "no_send" in line and "unknown_customer" in line
    assert "no customer with this id had signed up" in output  # the reason's text


def test_explain_without_any_decision_names_both_places(client, decide_token):
    client.post("/v1/decisions", json=body("explain-3", 11), headers=auth(decide_token))
    code, output = _explain(12, NOW.date().isoformat())
    assert code == 1
    assert "no decision about customer 12" in output and "decision API" in output
