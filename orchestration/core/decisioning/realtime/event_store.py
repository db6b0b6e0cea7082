"""The API's event store: one row per ``event_id`` (customer, event name, when it occurred) and the
answer given, so a replayed event gets the first answer and changes nothing. The event's free-form
``properties`` are not stored (they may hold personal data).

The session counts of the real-time features are computed from these rows, so they count each
event once whatever is replayed, and a late event lands where it belongs in time.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from orchestration.core.decisioning.realtime.timestamps import utc
from orchestration.settings import Settings

SCHEMA = """
create table if not exists events (
    event_id text primary key,
    event_digest text not null,
    customer_id integer not null,
    event text not null,
    occurred_at text not null,
    received_at text not null,
    answer text
);
create index if not exists events_customer on events (customer_id, event, occurred_at);
"""


def events_path(settings: Settings) -> Path:
    return settings.decisions_dir / "api" / "events.db"


def event_digest(customer_id: int, event: str, occurred_at: datetime) -> str:
    raw = f"{int(customer_id)}|{event}|{utc(occurred_at).isoformat()}"
    return hashlib.sha256(raw.encode()).hexdigest()


@dataclass(frozen=True)
class StoredEvent:
    digest: str
    answer: dict[str, Any] | None


def _iso(moment: datetime) -> str:
    return utc(moment).isoformat(timespec="microseconds")


class EventStore:
    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._con = sqlite3.connect(
            self.path, timeout=30, isolation_level=None, check_same_thread=False
        )
        self._con.execute("pragma journal_mode=wal")
        self._con.execute("pragma synchronous=normal")  # as the decisions store
        self._con.execute("pragma busy_timeout=30000")
        self._con.executescript(SCHEMA)
        self._lock = threading.Lock()

    def get(self, event_id: str) -> StoredEvent | None:
        with self._lock:
            row = self._con.execute(
                "select event_digest, answer from events where event_id = ?", (event_id,)
            ).fetchone()
        if row is None:
            return None
        return StoredEvent(row[0], json.loads(row[1]) if row[1] else None)

    def record(
        self, event_id: str, customer_id: int, event: str, occurred_at: datetime, now: datetime
    ) -> bool:
        """Record the event unless its id is known; True when it was new."""
        with self._lock:
            cursor = self._con.execute(
                "insert or ignore into events (event_id, event_digest, customer_id, event,"
                " occurred_at, received_at) values (?, ?, ?, ?, ?, ?)",
                (
                    event_id,
                    event_digest(customer_id, event, occurred_at),
                    int(customer_id),
                    event,
                    _iso(occurred_at),
                    _iso(now),
                ),
            )
            return cursor.rowcount == 1

    def answer(self, event_id: str, answer: dict[str, Any]) -> dict[str, Any]:
        """Keep the first answer of an event (another worker may have answered it first) and
        return the stored one."""
        with self._lock:
            self._con.execute(
                "update events set answer = ? where event_id = ? and answer is null",
                (json.dumps(answer, sort_keys=True), event_id),
            )
            (stored,) = self._con.execute(
                "select answer from events where event_id = ?", (event_id,)
            ).fetchone()
        return json.loads(stored)

    def sessions(
        self, customer_id: int, session_event: str, window: timedelta = timedelta(hours=24)
    ) -> tuple[datetime, datetime | None, int] | None:
        """As of the customer's latest recorded event (any name): that time, their latest session
        event and how many session events fell in the ``window`` up to it. None: no event."""
        cid = int(customer_id)
        with self._lock:
            (latest,) = self._con.execute(
                "select max(occurred_at) from events where customer_id = ?", (cid,)
            ).fetchone()
            if latest is None:
                return None
            since = _iso(utc(latest) - window)
            last_session, count = self._con.execute(
                "select max(occurred_at), count(*) from events where customer_id = ? and event = ?"
                " and occurred_at > ? and occurred_at <= ?",
                (cid, session_event, since, latest),
            ).fetchone()
            if last_session is None:  # none in the window: the latest one ever, if any
                (last_session,) = self._con.execute(
                    "select max(occurred_at) from events where customer_id = ? and event = ?",
                    (cid, session_event),
                ).fetchone()
        last = None if last_session is None else utc(last_session).to_pydatetime()
        return utc(latest).to_pydatetime(), last, int(count)

    def close(self) -> None:
        with self._lock:
            self._con.close()
