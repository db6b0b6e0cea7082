"""The incident book: turns "what is failing at this tick" into one alert per incident.

Sensors re-evaluate the same failures every tick; without a book each tick would page again.
``IncidentBook.observe`` notifies once when an incident opens and once when it resolves.

SQLite in WAL mode. Each incident key is handled in its own ``BEGIN IMMEDIATE`` transaction that
stays open while the notifier runs: two processes (or two sensors) observing the same failure
serialise on the write lock, and the second one finds it already notified. An alert is marked
notified only after ``notify`` returns, so a failed delivery is retried on the next tick
(at-least-once: a crash between delivery and commit re-sends once).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from orchestration.core.common.sqlite_tx import immediate_transaction
from orchestration.core.observability.alerting.notifiers import (
    OPEN,
    RESOLVED,
    Alert,
    NotificationError,
    Notifier,
    utc_iso,
)

_COLUMNS = (
    "incident_key, kind, severity, title, opened_at, last_seen_at, resolved_at,"
    " notified_open, notified_resolved, evidence"
)

SCHEMA = """
create table if not exists incidents (
    incident_key text primary key,
    kind text not null,
    severity text not null,
    title text not null,
    opened_at text not null,
    last_seen_at text not null,
    resolved_at text,
    notified_open integer not null default 0,
    notified_resolved integer not null default 0,
    evidence text not null default '{}'
);
-- ``incidents`` holds the latest incident per key; when a resolved key fails again, the resolved
-- row is moved here first so history keeps every occurrence.
create table if not exists incident_history (
    id integer primary key autoincrement,
    incident_key text not null,
    kind text not null,
    severity text not null,
    title text not null,
    opened_at text not null,
    last_seen_at text not null,
    resolved_at text,
    notified_open integer not null default 0,
    notified_resolved integer not null default 0,
    evidence text not null default '{}'
);
create index if not exists incident_history_key on incident_history (incident_key, opened_at);
create index if not exists incidents_open on incidents (resolved_at, opened_at);
"""


class UndeliveredAlertsError(NotificationError):
    """Some alerts of a tick could not be delivered; they stay un-notified and are retried.

    Raised after every key of the tick was handled, so one dead sink does not stall the others.
    ``sent`` holds the alerts that did go out; ``failures`` maps incident key to the error.
    """

    def __init__(self, failures: dict[str, str], sent: list[Alert]) -> None:
        self.failures = failures
        self.sent = sent
        listed = "; ".join(f"{key}: {error}" for key, error in failures.items())
        super().__init__(
            f"{len(failures)} alert(s) not delivered (retried next tick), "
            f"{len(sent)} delivered: {listed}"
        )


def _row_dict(row: sqlite3.Row) -> dict[str, Any]:
    out = dict(row)
    out.pop("id", None)
    out["evidence"] = json.loads(out["evidence"] or "{}")
    out["notified_open"] = bool(out["notified_open"])
    out["notified_resolved"] = bool(out["notified_resolved"])
    out["status"] = OPEN if out["resolved_at"] is None else RESOLVED
    return out


def _open_for(opened_at: str, now: datetime) -> float:
    return round((now - datetime.fromisoformat(opened_at)).total_seconds(), 3)


class IncidentBook:
    """Open/resolved state per incident key, shared by every process that opens the same file."""

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
            # Generous: a writer may hold the lock while a webhook retries (about 16 s worst case).
            con.execute("pragma busy_timeout=60000")
            yield con
        finally:
            con.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._connect() as con, immediate_transaction(con):
            yield con

    def observe(
        self,
        failing: Mapping[str, Alert],
        watched: set[str],
        notifier: Notifier,
        now: datetime | None = None,
    ) -> list[Alert]:
        """Record one tick and send the alerts it calls for; returns the alerts sent.

        ``failing`` maps incident key to its open alert for everything failing now; ``watched``
        is every key this caller is responsible for, so a watched key missing from ``failing``
        is healthy now. Keys outside both are left alone (another caller owns them). Failing keys
        count as watched. Raises ``UndeliveredAlertsError`` after the whole tick if any delivery
        failed.
        """
        moment = now or datetime.now(UTC)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        for key, alert in failing.items():
            if alert.incident_key != key:
                raise ValueError(f"failing[{key!r}] holds an alert for {alert.incident_key!r}")
            if alert.status != OPEN:
                raise ValueError(f"failing[{key!r}] must be an open alert, got {alert.status!r}")

        sent: list[Alert] = []
        failures: dict[str, str] = {}
        for key in sorted(set(watched) | set(failing)):
            try:
                alert = (
                    self._failing(failing[key], notifier, moment)
                    if key in failing
                    else self._healthy(key, notifier, moment)
                )
            except Exception as exc:  # one key's delivery failure must not stop the others
                failures[key] = f"{type(exc).__name__}: {exc}"
                continue
            if alert is not None:
                sent.append(alert)
        if failures:
            raise UndeliveredAlertsError(failures, sent)
        return sent

    def _failing(self, alert: Alert, notifier: Notifier, moment: datetime) -> Alert | None:
        key = alert.incident_key
        now = utc_iso(moment)
        error: Exception | None = None
        with self._write() as con:
            row = con.execute("select * from incidents where incident_key = ?", (key,)).fetchone()
            if row is not None and row["resolved_at"] is None:
                con.execute(
                    "update incidents set last_seen_at = ? where incident_key = ?", (now, key)
                )
                if row["notified_open"]:
                    return None  # already announced on an earlier tick
            else:
                if row is not None:  # failing again after recovery: a new incident
                    con.execute(
                        f"insert into incident_history ({_COLUMNS}) select {_COLUMNS}"
                        " from incidents where incident_key = ?",
                        (key,),
                    )
                    con.execute("delete from incidents where incident_key = ?", (key,))
                # Recorded even if delivery fails below, so opened_at is when it was first seen.
                con.execute(
                    f"insert into incidents ({_COLUMNS}) values (?, ?, ?, ?, ?, ?, null, 0, 0, ?)",
                    (
                        key,
                        alert.kind,
                        alert.severity,
                        alert.title,
                        now,
                        now,
                        json.dumps(alert.evidence, sort_keys=True, default=str),
                    ),
                )
            try:
                notifier.notify(alert)
            except Exception as exc:
                error = exc  # commit the incident, un-notified, so the next tick retries
            else:
                con.execute("update incidents set notified_open = 1 where incident_key = ?", (key,))
        if error is not None:
            raise error
        return alert

    def _healthy(self, key: str, notifier: Notifier, moment: datetime) -> Alert | None:
        now = utc_iso(moment)
        with self._write() as con:
            row = con.execute("select * from incidents where incident_key = ?", (key,)).fetchone()
            if row is None or row["resolved_at"] is not None:
                return None
            if not row["notified_open"]:
                # Nobody was told it opened, so a recovery message would only confuse: close quietly.
                con.execute(
                    "update incidents set resolved_at = ? where incident_key = ?", (now, key)
                )
                return None
            recovery = Alert(
                incident_key=key,
                kind=row["kind"],
                severity=row["severity"],
                status=RESOLVED,
                title=f"Resolved: {row['title']}",
                detail=(
                    f"{row['title']} is healthy again; open since {row['opened_at']}, "
                    f"last seen failing at {row['last_seen_at']}."
                ),
                occurred_at=now,
                evidence={
                    "opened_at": row["opened_at"],
                    "last_seen_failing_at": row["last_seen_at"],
                    "open_for_seconds": _open_for(row["opened_at"], moment),
                },
            )
            # Raises straight through: the rollback leaves the incident open for the next tick.
            notifier.notify(recovery)
            con.execute(
                "update incidents set resolved_at = ?, notified_resolved = 1 where incident_key = ?",
                (now, key),
            )
        return recovery

    def open_incidents(self) -> list[dict[str, Any]]:
        """Incidents not yet resolved, oldest first (including ones whose alert is still owed)."""
        with self._connect() as con:
            rows = con.execute(
                f"select {_COLUMNS} from incidents where resolved_at is null"
                " order by opened_at, incident_key"
            ).fetchall()
        return [_row_dict(r) for r in rows]

    def history(self, limit: int = 50) -> list[dict[str, Any]]:
        """Every incident occurrence, open or resolved, newest first."""
        with self._connect() as con:
            rows = con.execute(
                f"select {_COLUMNS} from incidents union all select {_COLUMNS} from incident_history"
                " order by opened_at desc, incident_key limit ?",
                (int(limit),),
            ).fetchall()
        return [_row_dict(r) for r in rows]
