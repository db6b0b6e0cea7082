"""The send ledger: one row per (campaign, customer, channel, day), the unit of exactly-once.

A message is recorded as ``due`` before it is dispatched, dispatched with its idempotency key and
then marked ``delivered`` (or ``failed`` with the provider's answer). The unique key makes a second
run on the same day record nothing new; a message left ``due`` by a crash is dispatched again with
the same idempotency key, which the provider deduplicates.

SQLite in WAL mode with ``BEGIN IMMEDIATE`` write transactions: concurrent runs serialise their
writes, and a claim (lease) keeps two runs from dispatching the same row at the same time.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd

DUE = "due"
DELIVERED = "delivered"
FAILED = "failed"

SCHEMA = """
create table if not exists deliveries (
    idempotency_key text primary key,
    campaign text not null,
    customer_id integer not null,
    channel text not null,
    send_date text not null,
    run_id text not null,
    status text not null check (status in ('due', 'delivered', 'failed')),
    provider text,
    provider_message_id text,
    attempts integer not null default 0,
    last_error text,
    claimed_by text,
    claimed_at text,
    created_at text not null,
    updated_at text not null,
    unique (campaign, customer_id, channel, send_date)
);
create index if not exists deliveries_status on deliveries (status, send_date);
"""


def idempotency_key(campaign: str, customer_id: int, channel: str, send_date: str) -> str:
    raw = f"{campaign}|{int(customer_id)}|{channel}|{send_date}"
    return hashlib.sha256(raw.encode()).hexdigest()[:32]


def _now() -> str:
    return datetime.now(UTC).isoformat()


@dataclass(frozen=True)
class DueMessage:
    idempotency_key: str
    campaign: str
    customer_id: int
    channel: str
    send_date: str


class SendLedger:
    def __init__(self, path: Path, lease: timedelta = timedelta(minutes=10)):
        self.path = Path(path)
        self.lease = lease
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as con:
            con.execute("pragma journal_mode=wal")
            con.executescript(SCHEMA)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        con = sqlite3.connect(self.path, timeout=60, isolation_level=None)
        try:
            con.execute("pragma busy_timeout=60000")
            yield con
        finally:
            con.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._connect() as con:
            con.execute("begin immediate")
            try:
                yield con
            except BaseException:
                con.execute("rollback")
                raise
            con.execute("commit")

    def record_due(self, messages: pd.DataFrame, send_date: str, run_id: str) -> int:
        """Record (campaign, customer_id, channel) rows as due for ``send_date``.

        Returns how many were new; rows already in the ledger for that day are left untouched.
        """
        now = _now()
        rows = [
            (
                idempotency_key(c, cid, ch, send_date),
                c,
                int(cid),
                ch,
                send_date,
                run_id,
                DUE,
                now,
                now,
            )
            for c, cid, ch in messages[["campaign", "customer_id", "channel"]].itertuples(
                index=False
            )
        ]
        with self._write() as con:
            before = con.total_changes
            con.executemany(
                "insert or ignore into deliveries (idempotency_key, campaign, customer_id, channel,"
                " send_date, run_id, status, created_at, updated_at) values (?,?,?,?,?,?,?,?,?)",
                rows,
            )
            return con.total_changes - before

    def claim_due(
        self, worker: str, limit: int, campaigns: list[str] | None = None
    ) -> list[DueMessage]:
        """Claim up to ``limit`` due rows not claimed by a live lease (oldest first)."""
        now = datetime.now(UTC)
        expired = (now - self.lease).isoformat()
        campaign_filter = ""
        params: list[object] = [worker, now.isoformat(), expired]
        if campaigns:
            campaign_filter = f"and campaign in ({','.join('?' * len(campaigns))})"
            params.extend(campaigns)
        params.append(limit)
        with self._write() as con:
            rows = con.execute(
                f"""
                update deliveries set claimed_by = ?, claimed_at = ?
                where idempotency_key in (
                    select idempotency_key from deliveries
                    where status = 'due' and (claimed_at is null or claimed_at < ?) {campaign_filter}
                    order by created_at, idempotency_key limit ?)
                returning idempotency_key, campaign, customer_id, channel, send_date
                """,
                params,
            ).fetchall()
        return [DueMessage(*row) for row in rows]

    def mark(self, outcomes: list[tuple[str, str, str, str | None, str | None]]) -> None:
        """Apply (idempotency_key, status, provider, provider_message_id, error) outcomes."""
        now = _now()
        with self._write() as con:
            con.executemany(
                "update deliveries set status = ?, provider = ?, provider_message_id = ?,"
                " last_error = ?, attempts = attempts + 1, claimed_by = null, claimed_at = null,"
                " updated_at = ? where idempotency_key = ? and status = 'due'",
                [
                    (status, provider, msg_id, error, now, key)
                    for key, status, provider, msg_id, error in outcomes
                ],
            )

    def release(self, keys: list[str]) -> None:
        """Give back claims without an outcome (e.g. dispatch interrupted before sending)."""
        with self._write() as con:
            con.executemany(
                "update deliveries set claimed_by = null, claimed_at = null where idempotency_key = ?",
                [(k,) for k in keys],
            )

    def sent_today(self, campaign: str, send_date: str) -> set[int]:
        """Customers this campaign has already recorded for the day, whatever the outcome.

        A failed attempt used its place in the day's cap: a later run does not top it up.
        """
        with self._connect() as con:
            rows = con.execute(
                "select customer_id from deliveries where campaign = ? and send_date = ?",
                (campaign, send_date),
            ).fetchall()
        return {int(r[0]) for r in rows}

    def counts(self, send_date: str | None = None) -> dict[str, int]:
        query = "select status, count(*) from deliveries"
        params: tuple[object, ...] = ()
        if send_date is not None:
            query += " where send_date = ?"
            params = (send_date,)
        with self._connect() as con:
            return {status: int(n) for status, n in con.execute(query + " group by status", params)}

    def frame(self) -> pd.DataFrame:
        with self._connect() as con:
            return pd.read_sql_query("select * from deliveries order by created_at", con)
