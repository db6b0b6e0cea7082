"""The local outbox provider: the embedded default, a message store you can read.

It behaves like a real provider that deduplicates by idempotency key: accepting a key it already
holds is a no-op reported as a duplicate, so a retry after a crash cannot deliver twice.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

SCHEMA = """
create table if not exists messages (
    idempotency_key text primary key,
    campaign text not null,
    customer_id integer not null,
    channel text not null,
    address text not null,
    template text not null,
    accepted_at text not null
);
"""


@dataclass(frozen=True)
class OutgoingMessage:
    idempotency_key: str
    campaign: str
    customer_id: int
    channel: str
    address: str
    template: str


@dataclass(frozen=True)
class ProviderResult:
    idempotency_key: str
    accepted: bool
    duplicate: bool
    provider_message_id: str | None = None
    error: str | None = None


class OutboxProvider:
    name = "outbox"

    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        con = sqlite3.connect(self.path, timeout=60)
        try:
            con.execute("pragma journal_mode=wal")
            con.executescript(SCHEMA)
        finally:
            con.close()

    def send_batch(self, messages: list[OutgoingMessage]) -> list[ProviderResult]:
        now = datetime.now(UTC).isoformat()
        con = sqlite3.connect(self.path, timeout=60, isolation_level=None)
        try:
            con.execute("begin immediate")
            results = []
            for m in messages:
                cursor = con.execute(
                    "insert or ignore into messages values (?,?,?,?,?,?,?)",
                    (
                        m.idempotency_key,
                        m.campaign,
                        m.customer_id,
                        m.channel,
                        m.address,
                        m.template,
                        now,
                    ),
                )
                results.append(
                    ProviderResult(
                        idempotency_key=m.idempotency_key,
                        accepted=True,
                        duplicate=cursor.rowcount == 0,
                        provider_message_id=f"outbox:{m.idempotency_key}",
                    )
                )
            con.execute("commit")
            return results
        finally:
            con.close()

    def received(self) -> int:
        con = sqlite3.connect(self.path, timeout=60)
        try:
            return int(con.execute("select count(*) from messages").fetchone()[0])
        finally:
            con.close()
