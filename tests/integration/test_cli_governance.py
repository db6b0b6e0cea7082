"""`campaign submit | approve | approvals | kill-switch`: four eyes from the command line, each
refusal one line naming what is wrong."""

from __future__ import annotations

import re

import pytest
from typer.testing import CliRunner

from orchestration.cli import app
from tests.governance.approvers import write_approvers

ENV = {"COLUMNS": "250", "NO_COLOR": "1", "TERM": "dumb"}
CAMPAIGN = "spring_reactivation_email"


@pytest.fixture
def team(data_dir, tmp_path, monkeypatch):
    return write_approvers(tmp_path / "team", monkeypatch)


def _campaign(*args: str):
    return CliRunner().invoke(app, list(args), env=ENV)


def _refused(result, message: str) -> None:
    assert result.exit_code == 1, result.output
    text = result.output.strip()
    assert message in text, text
    assert len(text.splitlines()) == 1 and "Traceback" not in text


def test_approving_a_campaign_refuses_self_unknown_keyless_and_mismatched(team):
    submitted = _campaign("submit", "campaign", CAMPAIGN, "--as", "alice")
    assert submitted.exit_code == 0, submitted.output
    content_hash = re.search(r"\b[0-9a-f]{64}\b", submitted.output).group(0)

    def approve(who: str, digest: str = content_hash):
        return _campaign("approve", "campaign", CAMPAIGN, "--hash", digest, "--as", who)

    _refused(approve("alice"), "self-approval refused: alice")
    _refused(approve("mallory"), "unknown approver 'mallory'")
    _refused(approve("dave"), "'dave' has no key: set CAMPAIGN_TEST_DAVE_SECRET")
    _refused(approve("bob", "ab" * 32), "hash mismatch")
    _refused(
        _campaign("submit", "campaign", "no_such_campaign", "--as", "alice"), "unknown campaign"
    )

    approved = approve("bob")
    assert approved.exit_code == 0 and "approver bob" in approved.output
    listed = _campaign("approvals")
    assert listed.exit_code == 0, listed.output
    row = next(line for line in listed.output.splitlines() if CAMPAIGN in line)
    assert "alice" in row and "bob" in row and content_hash[:12] in row
    assert re.search(r"yes\s*│\s*yes", row), row  # valid and the version in effect


def test_the_kill_switch_is_lifted_only_after_another_identity_approves(team):
    assert _campaign("kill-switch", "on", "--reason", "drill", "--as", "ops").exit_code == 0
    asked = _campaign("kill-switch", "off", "--as", "alice")
    _refused(asked, "lifting the kill switch needs an approval (requested by alice)")
    content_hash = re.search(r"--hash ([0-9a-f]{64})", asked.output).group(1)
    _refused(
        _campaign("approve", "kill-switch", "--hash", content_hash, "--as", "alice"),
        "self-approval refused",
    )
    assert "on:" in _campaign("kill-switch", "status").output
    assert (
        _campaign("approve", "kill-switch", "--hash", content_hash, "--as", "carol").exit_code == 0
    )
    lifted = _campaign("kill-switch", "off", "--as", "alice")
    assert lifted.exit_code == 0 and "approved by carol" in lifted.output
    assert _campaign("kill-switch", "status").output.strip() == "off"
    audit = _campaign("audit", "log")
    assert "kill_switch_on" in audit.output and "kill_switch_off" in audit.output
    assert _campaign("audit", "verify").exit_code == 0


def test_keygen_makes_a_key_that_signs_approvals(data_dir, tmp_path, monkeypatch):
    made = _campaign("keygen", "erin", "--out", str(tmp_path / "erin.pem"))
    assert made.exit_code == 0, made.output
    assert oct((tmp_path / "erin.pem").stat().st_mode & 0o777) == "0o600"
    assert _campaign("keygen", "erin", "--out", str(tmp_path / "erin.pem")).exit_code == 1
    approvers = tmp_path / "approvers.yaml"
    approvers.write_text(
        "identities:\n  alice:\n    hmac_secret_env: CAMPAIGN_TEST_ALICE_SECRET\n"
        + made.output.split("\n", 1)[1]
    )
    monkeypatch.setenv("CAMPAIGN_TEST_ALICE_SECRET", "s")
    monkeypatch.setenv("CAMPAIGN_APPROVERS_FILE", str(approvers))
    submitted = _campaign("submit", "policy", "--as", "alice")
    content_hash = re.search(r"\b[0-9a-f]{64}\b", submitted.output).group(0)
    approved = _campaign("approve", "policy", "--hash", content_hash, "--as", "erin")
    assert approved.exit_code == 0, approved.output
