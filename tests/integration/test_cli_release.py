"""`campaign release list` and `campaign release revoke`: an operator stops what a release has not
yet delivered, from the command line, and the ledger records who and why."""

from __future__ import annotations

from typer.testing import CliRunner

from orchestration.cli import app
from orchestration.core.delivery.ledger import SendLedger
from tests.gateway.raw_world import recipients, release

ENV = {"COLUMNS": "200", "NO_COLOR": "1", "TERM": "dumb"}


def test_revoke_cancels_the_undelivered_messages_of_a_release(data_dir):
    ledger = SendLedger(data_dir / "gateway" / "ledger.db")
    release(ledger, recipients([1, 2, 3]), "2026-11-23", "run-aaaa1111")
    release(ledger, recipients([4]), "2026-11-23", "run-bbbb2222")

    listed = CliRunner().invoke(app, ["release", "list"], env=ENV)
    assert listed.exit_code == 0, listed.output
    assert "run-aaaa" in listed.output and "released" in listed.output

    revoked = CliRunner().invoke(
        app, ["release", "revoke", "run-aaaa", "--reason", "wrong list", "--by", "ops"], env=ENV
    )
    assert revoked.exit_code == 0, revoked.output
    assert "3 undelivered message(s) cancelled" in revoked.output
    statuses = ledger.frame().set_index("customer_id")["status"].to_dict()
    assert statuses == {1: "cancelled", 2: "cancelled", 3: "cancelled", 4: "due"}
    row = ledger.releases().set_index("run_id").loc["run-aaaa1111"]
    assert (row.status, row.revoked_by, row.revoke_reason) == ("revoked", "ops", "wrong list")


def test_revoke_names_the_problem_when_the_run_is_ambiguous_or_unknown(data_dir):
    ledger = SendLedger(data_dir / "gateway" / "ledger.db")
    release(ledger, recipients([1]), "2026-11-23", "run-aaaa1111")
    release(ledger, recipients([2]), "2026-11-23", "run-aaaa2222")
    ambiguous = CliRunner().invoke(app, ["release", "revoke", "run-aaaa", "--reason", "x"], env=ENV)
    assert ambiguous.exit_code == 1 and "matches 2 releases" in ambiguous.output
    unknown = CliRunner().invoke(app, ["release", "revoke", "nope", "--reason", "x"], env=ENV)
    assert unknown.exit_code == 1 and "matches 0 releases" in unknown.output
    assert ledger.counts() == {"due": 2}
