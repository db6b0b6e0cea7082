"""The audit trail: every governance action, appended to a hash-chained log.

Each entry records who (``actor``) did what (``action``) to what (``subject``), when (``at``, UTC
ISO) and the hashes involved (``details``, JSON). Entries are numbered ``seq`` = 1, 2, 3, ... and
chained: ``prev_hash`` is the previous entry's ``entry_hash`` (64 zeros for the first one) and

    entry_hash = sha256(canonical JSON of {seq, at, actor, action, subject, details, prev_hash})

so :meth:`AuditLog.verify` finds an entry whose content was edited (its hash no longer matches),
an entry removed (a gap in ``seq``, or a ``prev_hash`` that names no entry left in the log) and
entries reordered (a ``prev_hash`` naming an entry that sits elsewhere in the log).

What a chain alone cannot show: the newest entries cut off the end, or the whole log rewritten
with fresh hashes by someone who can write the file. ``verify(anchor=...)`` closes that gap for
anyone who kept an earlier head hash (``campaign audit verify`` prints it) somewhere else.

SQLite in WAL mode; an append is one ``BEGIN IMMEDIATE`` transaction (read the head, insert the
next entry), so concurrent writers serialise and never fork the chain. Triggers refuse UPDATE and
DELETE: the code can only append (someone with the file can still drop them, which is what the
hashes are for).
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from orchestration.core.common.sqlite_tx import immediate_transaction

GENESIS_HASH = "0" * 64

# Actions recorded (free text is accepted; these are the ones the code writes).
RELEASE = "release"
REVOKE = "revoke"
PROMOTE = "promote"
# Four-eyes governance (orchestration.core.governance): who authored a version, who approved it,
# a release held for want of an approval, a campaign or policy version going live, the kill switch.
SUBMIT = "submit"
APPROVE = "approve"
HOLD = "hold_awaiting_approval"
GO_LIVE = "go_live"
KILL_SWITCH_ON = "kill_switch_on"
KILL_SWITCH_OFF = "kill_switch_off"
# Refused attempts are part of the trail too: who tried what, and the one-line reason.
APPROVE_REFUSED = "approve_refused"
KILL_SWITCH_LIFT_REFUSED = "kill_switch_lift_refused"
PROMOTE_REFUSED = "promote_refused"

SCHEMA = """
create table if not exists audit_log (
    seq integer primary key,
    at text not null,
    actor text not null,
    action text not null,
    subject text not null,
    details text not null,
    prev_hash text not null,
    entry_hash text not null
);
create trigger if not exists audit_log_no_update before update on audit_log
begin select raise(abort, 'the audit log is append-only'); end;
create trigger if not exists audit_log_no_delete before delete on audit_log
begin select raise(abort, 'the audit log is append-only'); end;
"""


def audit_log_path(data_dir: Path) -> Path:
    """The audit log of a data directory: ``<data_dir>/audit/audit.db``."""
    return Path(data_dir) / "audit" / "audit.db"


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _plain_details(details: Mapping[str, Any] | None) -> dict[str, Any]:
    """A JSON-native copy (what is stored is exactly what is hashed)."""
    return json.loads(json.dumps(dict(details or {}), sort_keys=True, default=str))


def entry_hash(
    *,
    seq: int,
    at: str,
    actor: str,
    action: str,
    subject: str,
    details: Mapping[str, Any],
    prev_hash: str,
) -> str:
    body = {
        "seq": int(seq),
        "at": at,
        "actor": actor,
        "action": action,
        "subject": subject,
        "details": dict(details),
        "prev_hash": prev_hash,
    }
    return hashlib.sha256(_canonical(body).encode()).hexdigest()


@dataclass(frozen=True)
class AuditEntry:
    seq: int
    at: str
    actor: str
    action: str
    subject: str
    details: dict[str, Any]
    prev_hash: str
    entry_hash: str

    def computed_hash(self) -> str:
        return entry_hash(
            seq=self.seq,
            at=self.at,
            actor=self.actor,
            action=self.action,
            subject=self.subject,
            details=self.details,
            prev_hash=self.prev_hash,
        )


@dataclass(frozen=True)
class VerifyResult:
    """The outcome of :meth:`AuditLog.verify`: intact, or the first broken entry and why."""

    entries: int
    head: str  # entry_hash of the newest entry (GENESIS_HASH when empty)
    broken_seq: int | None = None
    problem: str | None = None  # edited | removed | reordered | truncated | malformed
    reason: str = ""

    @property
    def ok(self) -> bool:
        return self.broken_seq is None and self.problem is None

    def message(self) -> str:
        if self.ok:
            return f"{self.entries} entries, chain intact (head {self.head[:16]})"
        where = (
            f"entry seq {self.broken_seq}" if self.broken_seq is not None else "the end of the log"
        )
        return f"audit chain broken at {where} ({self.problem}): {self.reason}"


def _entry(row: sqlite3.Row) -> AuditEntry:
    return AuditEntry(
        seq=int(row["seq"]),
        at=row["at"],
        actor=row["actor"],
        action=row["action"],
        subject=row["subject"],
        details=json.loads(row["details"]),
        prev_hash=row["prev_hash"],
        entry_hash=row["entry_hash"],
    )


class AuditLog:
    """The append-only, hash-chained log of governance actions (one SQLite file)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as con:
            con.execute("pragma journal_mode=wal")
            con.executescript(SCHEMA)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        con = sqlite3.connect(self.path, timeout=60, isolation_level=None)
        con.row_factory = sqlite3.Row
        try:
            con.execute("pragma busy_timeout=60000")
            yield con
        finally:
            con.close()

    def append(
        self,
        actor: str,
        action: str,
        subject: str,
        details: Mapping[str, Any] | None = None,
        at: datetime | None = None,
    ) -> AuditEntry:
        """Append one entry, chained to the current head; returns it."""
        if not actor or not action:
            raise ValueError("an audit entry needs an actor and an action")
        moment = at or datetime.now(UTC)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        stamp = moment.astimezone(UTC).isoformat()
        plain = _plain_details(details)
        with self._connect() as con, immediate_transaction(con):
            head = con.execute(
                "select seq, entry_hash from audit_log order by seq desc limit 1"
            ).fetchone()
            seq = int(head["seq"]) + 1 if head else 1
            prev = head["entry_hash"] if head else GENESIS_HASH
            digest = entry_hash(
                seq=seq,
                at=stamp,
                actor=actor,
                action=action,
                subject=subject,
                details=plain,
                prev_hash=prev,
            )
            con.execute(
                "insert into audit_log (seq, at, actor, action, subject, details, prev_hash,"
                " entry_hash) values (?, ?, ?, ?, ?, ?, ?, ?)",
                (seq, stamp, actor, action, subject, _canonical(plain), prev, digest),
            )
        return AuditEntry(seq, stamp, actor, action, subject, plain, prev, digest)

    def entries(self, limit: int | None = None) -> list[AuditEntry]:
        """Entries in ``seq`` order; ``limit`` keeps the newest ``limit`` of them."""
        with self._connect() as con:
            if limit is None:
                rows = con.execute("select * from audit_log order by seq").fetchall()
            else:
                rows = con.execute(
                    "select * from (select * from audit_log order by seq desc limit ?)"
                    " order by seq",
                    (int(limit),),
                ).fetchall()
        return [_entry(r) for r in rows]

    def verify(self, anchor: str | None = None) -> VerifyResult:
        """Walk the chain from the first entry; report the first broken one and why.

        ``anchor`` is a head hash (or a prefix of one) recorded earlier elsewhere: it must
        still be in the chain (otherwise the log was cut short or rewritten).
        """
        with self._connect() as con:
            rows = con.execute("select * from audit_log order by seq").fetchall()
        return verify_rows(rows, anchor=anchor)


def _broken(count: int, head: str, seq: int | None, problem: str, reason: str) -> VerifyResult:
    return VerifyResult(count, head, broken_seq=seq, problem=problem, reason=reason)


def verify_rows(rows: list[Mapping[str, Any]], anchor: str | None = None) -> VerifyResult:
    """Check stored rows (in ``seq`` order) against the chain rules; see :class:`AuditLog`."""
    count = len(rows)
    head = rows[-1]["entry_hash"] if rows else GENESIS_HASH
    position = {row["entry_hash"]: int(row["seq"]) for row in rows}
    expected_seq, prev_hash = 1, GENESIS_HASH
    for row in rows:
        seq = int(row["seq"])
        if seq != expected_seq:
            missing = (
                f"seq {expected_seq}"
                if seq == expected_seq + 1
                else f"seq {expected_seq}..{seq - 1}"
            )
            return _broken(
                count, head, seq, "removed", f"gap before it: {missing} missing from the log"
            )
        if row["prev_hash"] != prev_hash:
            elsewhere = position.get(row["prev_hash"])
            if elsewhere is not None:
                return _broken(
                    count,
                    head,
                    seq,
                    "reordered",
                    f"it was chained after the entry now at seq {elsewhere}, not after seq "
                    f"{seq - 1}",
                )
            return _broken(
                count,
                head,
                seq,
                "removed",
                f"its prev_hash {row['prev_hash'][:16]} names no entry in the log: the entry "
                "it followed was removed (or its prev_hash edited)",
            )
        try:
            entry = _entry(row)  # type: ignore[arg-type]
        except (TypeError, ValueError) as exc:
            return _broken(count, head, seq, "malformed", f"details are not JSON: {exc}")
        computed = entry.computed_hash()
        if computed != entry.entry_hash:
            return _broken(
                count,
                head,
                seq,
                "edited",
                f"its content no longer matches its hash (stored {entry.entry_hash[:16]}, "
                f"computed {computed[:16]})",
            )
        expected_seq, prev_hash = seq + 1, entry.entry_hash
    anchor = (anchor or "").strip().lower()
    if (
        anchor
        and not GENESIS_HASH.startswith(anchor)
        and not any(digest.startswith(anchor) for digest in position)
    ):
        return _broken(
            count,
            head,
            None,
            "truncated",
            f"the anchor {anchor[:16]} is not in the chain: entries were cut off or the log "
            "was rewritten",
        )
    return VerifyResult(count, head)
