"""The local outbox provider: the embedded default, a message store you can read.

It behaves like a real provider that deduplicates by idempotency key: accepting a key it already
holds is a no-op reported as a duplicate, so a retry after a crash cannot deliver twice.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from orchestration.core.common.sqlite_tx import immediate_transaction
from orchestration.core.delivery.providers import OutgoingMessage, ProviderResult

__all__ = ["OutboxProvider", "OutgoingMessage", "ProviderResult"]

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


class OutboxProvider:
    name = "outbox"
    supports_lookup = True

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
            results = []
            with immediate_transaction(con):
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
            return results
        finally:
            con.close()

    def lookup(self, keys: list[str]) -> dict[str, str]:
        if not keys:
            return {}
        con = sqlite3.connect(self.path, timeout=60)
        try:
            found = set()
            for start in range(0, len(keys), 500):
                chunk = keys[start : start + 500]
                found.update(
                    row[0]
                    for row in con.execute(
                        "select idempotency_key from messages where idempotency_key in"
                        f" ({','.join('?' * len(chunk))})",
                        chunk,
                    )
                )
        finally:
            con.close()
        return {k: f"outbox:{k}" for k in found}

    def received(self) -> int:
        con = sqlite3.connect(self.path, timeout=60)
        try:
            return int(con.execute("select count(*) from messages").fetchone()[0])
        finally:
            con.close()
