"""The audit trail: a hash-chained, append-only log whose verify names the first broken entry
(edited, removed, reordered), and the ledger's release and revocation writing into it."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from orchestration.core.observability.audit import (
    GENESIS_HASH,
    AuditLog,
    audit_log_path,
)

ENV = {"COLUMNS": "200", "NO_COLOR": "1", "TERM": "dumb"}
T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def _log(tmp_path: Path, n: int = 4) -> AuditLog:
    log = AuditLog(tmp_path / "audit" / "audit.db")
    for i in range(1, n + 1):
        log.append("ops", "release", f"run-{i}", {"decisions_digest": f"{i:064x}", "n": i}, at=T0)
    return log


def _tamper(log: AuditLog, *statements: str) -> None:
    """What someone with the file can do: drop the append-only triggers, then rewrite rows."""
    con = sqlite3.connect(log.path, isolation_level=None)
    try:
        con.execute("drop trigger audit_log_no_update")
        con.execute("drop trigger audit_log_no_delete")
        for statement in statements:
            con.execute(statement)
    finally:
        con.close()


def test_appended_entries_chain_and_verify(tmp_path):
    log = _log(tmp_path)
    entries = log.entries()
    assert [e.seq for e in entries] == [1, 2, 3, 4]
    assert entries[0].prev_hash == GENESIS_HASH
    assert all(b.prev_hash == a.entry_hash for a, b in zip(entries, entries[1:], strict=False))
    assert all(e.computed_hash() == e.entry_hash for e in entries)
    assert entries[1].details == {"decisions_digest": f"{2:064x}", "n": 2}
    assert entries[0].at == "2026-11-23T09:00:00+00:00"
    result = log.verify()
    assert result.ok and result.entries == 4 and result.head == entries[-1].entry_hash
    assert result.message().startswith("4 entries, chain intact")
    assert [e.seq for e in log.entries(limit=2)] == [3, 4]


def test_an_empty_log_verifies(tmp_path):
    result = AuditLog(tmp_path / "a.db").verify()
    assert result.ok and result.entries == 0 and result.head == GENESIS_HASH


def test_the_code_cannot_update_or_delete_an_entry(tmp_path):
    log = _log(tmp_path, 1)
    con = sqlite3.connect(log.path)
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        con.execute("update audit_log set actor = 'mallory'")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        con.execute("delete from audit_log")
    con.close()


def test_an_edited_entry_is_named_by_its_seq(tmp_path):
    log = _log(tmp_path)
    _tamper(
        log, 'update audit_log set details = \'{"decisions_digest":"beef","n":2}\' where seq = 2'
    )
    result = log.verify()
    assert not result.ok
    assert (result.broken_seq, result.problem) == (2, "edited")
    assert "content no longer matches its hash" in result.message()
    print(result.message())


def test_a_removed_entry_leaves_a_gap(tmp_path):
    log = _log(tmp_path)
    _tamper(log, "delete from audit_log where seq = 2")
    result = log.verify()
    assert (result.broken_seq, result.problem) == (3, "removed")
    assert "seq 2 missing" in result.message()
    print(result.message())


def test_a_removed_entry_with_the_rest_renumbered_is_found_too(tmp_path):
    log = _log(tmp_path)
    _tamper(
        log,
        "delete from audit_log where seq = 2",
        "update audit_log set seq = seq - 1 where seq > 2",
    )
    result = log.verify()
    assert (result.broken_seq, result.problem) == (2, "removed")
    assert "names no entry in the log" in result.message()
    print(result.message())


def test_swapped_entries_are_reported_as_reordered(tmp_path):
    log = _log(tmp_path)
    _tamper(
        log,
        "update audit_log set seq = -1 where seq = 2",
        "update audit_log set seq = 2 where seq = 3",
        "update audit_log set seq = 3 where seq = -1",
    )
    result = log.verify()
    assert (result.broken_seq, result.problem) == (2, "reordered")
    assert "chained after the entry now at seq 3" in result.message()
    print(result.message())


def test_an_anchor_catches_a_cut_off_tail(tmp_path):
    log = _log(tmp_path)
    head = log.verify().head
    _tamper(log, "delete from audit_log where seq = 4")
    assert log.verify().ok  # a chain alone cannot see its end cut off ...
    result = log.verify(anchor=head[:16])
    assert result.problem == "truncated" and not result.ok  # ... a kept head hash can
    print(result.message())


def test_release_and_revoke_through_the_ledger_write_two_entries(tmp_path):
    from orchestration.core.delivery.ledger import SendLedger
    from tests.gateway.raw_world import recipients, release

    audit = AuditLog(audit_log_path(tmp_path))
    ledger = SendLedger(tmp_path / "gateway" / "ledger.db", audit=audit)
    release(ledger, recipients([1, 2, 3]), "2026-11-23", "run-aaaa1111")
    release(ledger, recipients([1, 2, 3]), "2026-11-23", "run-aaaa1111")  # again: nothing new
    assert ledger.revoke_release("run-aaaa1111", by="ops", reason="wrong list") == 3

    first, second = audit.entries()
    digest = ledger.releases().set_index("run_id").loc["run-aaaa1111", "decisions_digest"]
    assert (first.actor, first.action, first.subject) == (
        "campaign_release",
        "release",
        "run-aaaa1111",
    )
    assert first.details["decisions_digest"] == digest
    assert first.details["campaign_files"] == {} and first.details["newly_due"] == 3
    assert (second.actor, second.action, second.subject) == ("ops", "revoke", "run-aaaa1111")
    assert second.details == {
        "run_id": "run-aaaa1111",
        "reason": "wrong list",
        "decisions_digest": digest,
        "cancelled": 3,
    }
    assert audit.verify().ok


def test_a_failed_audit_append_rolls_the_release_back(tmp_path):
    from orchestration.core.delivery.ledger import SendLedger
    from tests.gateway.raw_world import recipients, release

    class Broken(AuditLog):
        def append(self, *args, **kwargs):
            raise sqlite3.OperationalError("disk full")

    ledger = SendLedger(tmp_path / "ledger.db", audit=Broken(tmp_path / "audit.db"))
    with pytest.raises(sqlite3.OperationalError):
        release(ledger, recipients([1]), "2026-11-23", "run-x")
    assert ledger.releases().empty and ledger.frame().empty


def test_the_cli_logs_verifies_and_names_the_broken_entry(data_dir):
    from orchestration.cli import app
    from orchestration.core.delivery.ledger import SendLedger
    from tests.gateway.raw_world import recipients, release

    audit = AuditLog(audit_log_path(data_dir))
    ledger = SendLedger(data_dir / "gateway" / "ledger.db", audit=audit)
    release(ledger, recipients([1, 2]), "2026-11-23", "run-aaaa1111")
    release(ledger, recipients([3]), "2026-11-23", "run-bbbb2222")
    revoked = CliRunner().invoke(
        app, ["release", "revoke", "run-aaaa", "--reason", "wrong list", "--by", "ops"], env=ENV
    )
    assert revoked.exit_code == 0, revoked.output

    shown = CliRunner().invoke(app, ["audit", "log", "--limit", "10"], env=ENV)
    assert shown.exit_code == 0, shown.output
    print(shown.output)
    lines = shown.output.strip().splitlines()
    assert len(lines) == 3
    assert " campaign_release release run-aaaa1111 " in lines[0]
    assert " ops revoke run-aaaa1111 " in lines[2] and '"reason":"wrong list"' in lines[2]

    verified = CliRunner().invoke(app, ["audit", "verify"], env=ENV)
    assert verified.exit_code == 0 and "3 entries, chain intact" in verified.output
    print(verified.output)

    _tamper(audit, "update audit_log set actor = 'nobody' where seq = 3")
    broken = CliRunner().invoke(app, ["audit", "verify"], env=ENV)
    assert broken.exit_code == 1
    text = " ".join(broken.output.split())
    assert "audit chain broken at entry seq 3 (edited)" in text
    print(text)


def test_the_cli_without_an_audit_log(data_dir):
    from orchestration.cli import app

    verified = CliRunner().invoke(app, ["audit", "verify"], env=ENV)
    assert verified.exit_code == 0 and "0 entries, chain intact" in verified.output
    assert not audit_log_path(data_dir).exists()  # verify never creates the log


def test_details_are_stored_as_json_natives(tmp_path):
    log = AuditLog(tmp_path / "a.db")
    entry = log.append("ops", "release", "r", {"at": pd.Timestamp("2026-01-01", tz="UTC")})
    assert entry.details == {"at": "2026-01-01 00:00:00+00:00"}
    assert log.verify().ok
