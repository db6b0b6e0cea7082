"""The send ledger: one row per (campaign, customer, channel, day), the unit of exactly-once.

A message is recorded as ``due`` before it is dispatched, dispatched with its idempotency key and
then marked ``delivered`` (or ``failed`` with the provider's answer). The unique key makes a second
run on the same day record nothing new; a message left ``due`` by a crash is dispatched again with
the same idempotency key, which the provider deduplicates.

SQLite in WAL mode with ``BEGIN IMMEDIATE`` write transactions: concurrent runs serialise their
writes, and a claim (lease) keeps two runs from dispatching the same row at the same time.

Given an ``audit`` log (``orchestration.core.observability.audit``), a release and a revocation
each append an entry to it inside the ledger's write transaction: if the audit append fails, the
release (or revocation) is rolled back, so none stands unaudited.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd

from orchestration.core.common.sqlite_tx import immediate_transaction
from orchestration.core.delivery.releases import (
    AWAITING_APPROVAL,
    RELEASED,
    Release,
    releasable_messages,
)
from orchestration.core.observability.audit import GO_LIVE, HOLD, RELEASE, REVOKE, AuditLog
from orchestration.core.observability.tracing import trace_id_for_run

DUE = "due"
DELIVERED = "delivered"
FAILED = "failed"
# Stopped at dispatch time (consent withdrawn, suppressed, campaign disabled): never sent.
CANCELLED = "cancelled"

TABLE = """
create table if not exists deliveries (
    idempotency_key text primary key,
    campaign text not null,
    customer_id integer not null,
    channel text not null,
    send_date text not null,
    run_id text not null,
    -- the enqueuing run's trace (core/observability/tracing.py), sent to providers as traceparent
    trace_id text,
    status text not null check (status in ('due', 'delivered', 'failed', 'cancelled')),
    provider text,
    provider_message_id text,
    attempts integer not null default 0,
    last_error text,
    claimed_by text,
    claimed_at text,
    -- not before this time (quiet hours, breaker open, retries exhausted): a deferred message
    not_before text,
    -- handed to the provider at this time, outcome not yet recorded: reconcile before re-sending
    dispatched_at text,
    created_at text not null,
    updated_at text not null,
    -- the chosen variant's message template (null: the campaign's own message)
    template text,
    unique (campaign, customer_id, channel, send_date)
);
"""
# Who a release is recorded as (the asset that is the one door into the ledger).
RELEASE_ACTOR = "campaign_release"

# One row per released run (orchestration.core.delivery.releases): what its gates let through.
# A due message is dispatched only while the release of the run that enqueued it stands.
RELEASES = """
create table if not exists releases (
    run_id text primary key,
    status text not null check (status in ('released', 'revoked', 'awaiting_approval')),
    released_at text not null,
    send_date text not null,
    checks text not null,
    model_versions text not null,
    policy_version text not null,
    feature_version text not null,
    campaign_files text not null,
    decisions_digest text not null,
    messages integer not null,
    campaigns text not null,
    -- campaign -> why approvals held it back (its messages were not enqueued)
    held text not null default '{}',
    held_files text not null default '[]',
    revoked_at text,
    revoked_by text,
    revoke_reason text
);
"""
SCHEMA = (
    TABLE
    + RELEASES
    + """
create index if not exists deliveries_status on deliveries (status, send_date);
create index if not exists deliveries_due on deliveries (status, campaign, not_before);
create index if not exists deliveries_run on deliveries (run_id, status);
-- the decision API's reads per request: a customer's recent rows, a day's rows per campaign
create index if not exists deliveries_customer on deliveries (customer_id, send_date);
create index if not exists deliveries_day on deliveries (send_date, campaign);
"""
)


def idempotency_key(campaign: str, customer_id: int, channel: str, send_date: str) -> str:
    raw = f"{campaign}|{int(customer_id)}|{channel}|{send_date}"
    return hashlib.sha256(raw.encode()).hexdigest()[:32]


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def _now() -> str:
    return _iso(datetime.now(UTC))


def worker_id(run_id: str) -> str:
    """Who holds a claim: host and process, so a claim of a dead process is taken back at once."""
    return f"{socket.gethostname()}:{os.getpid()}:{run_id}"


def _claim_is_dead(claimed_by: str) -> bool:
    host, _, rest = claimed_by.partition(":")
    pid, _, _ = rest.partition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False  # another machine's claim: only its lease expiry frees it
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return _is_zombie(int(pid))


def _is_zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return False


@dataclass(frozen=True)
class DueMessage:
    idempotency_key: str
    campaign: str
    customer_id: int
    channel: str
    send_date: str
    # Set when an earlier attempt handed it to a provider without recording the outcome.
    dispatched_at: str | None = None
    # The enqueuing run's trace id (None for rows written before tracing).
    trace_id: str | None = None
    # A chosen variant's template; None: the campaign's own message (its name).
    template: str | None = None


class SendLedger:
    def __init__(
        self,
        path: Path,
        lease: timedelta = timedelta(minutes=10),
        audit: AuditLog | None = None,
    ):
        self.path = Path(path)
        self.lease = lease
        self.audit = audit
        self._con: sqlite3.Connection | None = None
        self._pid = os.getpid()
        # One connection is shared by the threads of a process (the API's workers): a
        # transaction must not take in another thread's statements, so each use holds this lock.
        self._lock = threading.RLock()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as con:
            con.execute("pragma journal_mode=wal")
            columns = {row[1] for row in con.execute("pragma table_info(deliveries)")}
            if columns and "dispatched_at" not in columns:
                self._migrate(con)
            elif columns and "trace_id" not in columns:
                con.execute("alter table deliveries add column trace_id text")
            if columns and "dispatched_at" in columns and "template" not in columns:
                con.execute("alter table deliveries add column template text")
            released = {row[1] for row in con.execute("pragma table_info(releases)")}
            if released and "held" not in released:
                self._migrate_releases(con, released)
            con.executescript(SCHEMA)

    @staticmethod
    def _migrate(con: sqlite3.Connection) -> None:
        """Bring a ledger written before deferral and reconciliation to the current schema."""
        with immediate_transaction(con):
            con.execute("alter table deliveries rename to deliveries_v1")
            con.execute(TABLE)
            con.execute(
                "insert into deliveries (idempotency_key, campaign, customer_id, channel,"
                " send_date, run_id, status, provider, provider_message_id, attempts, last_error,"
                " claimed_by, claimed_at, created_at, updated_at) select idempotency_key,"
                " campaign, customer_id, channel, send_date, run_id, status, provider,"
                " provider_message_id, attempts, last_error, claimed_by, claimed_at, created_at,"
                " updated_at from deliveries_v1"
            )
            con.execute("drop table deliveries_v1")

    @staticmethod
    def _migrate_releases(con: sqlite3.Connection, columns: set[str]) -> None:
        """Bring a releases table written before approvals (no ``held``, no
        ``awaiting_approval`` status) to the current schema; every row keeps its values."""
        kept = ", ".join(sorted(columns))
        with immediate_transaction(con):
            con.execute("alter table releases rename to releases_v1")
            con.execute(RELEASES)
            con.execute(f"insert into releases ({kept}) select {kept} from releases_v1")
            con.execute("drop table releases_v1")

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        """One connection per ledger object and process (opening and closing per statement
        costs a WAL checkpoint each time); SQLite's locks still serialise other processes, the
        object's lock the threads of this one."""
        with self._lock:
            if self._con is None or self._pid != os.getpid():
                self._con = sqlite3.connect(
                    self.path, timeout=60, isolation_level=None, check_same_thread=False
                )
                self._con.execute("pragma busy_timeout=60000")
                self._pid = os.getpid()
            yield self._con

    def close(self) -> None:
        with self._lock:
            if self._con is not None:
                self._con.close()
                self._con = None

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._connect() as con, immediate_transaction(con):
            yield con

    def record_release(
        self, release: Release, messages: pd.DataFrame, actor: str = RELEASE_ACTOR
    ) -> int:
        """Record a run's release and enqueue its messages as due, in one transaction.

        ``messages`` are (campaign, customer_id, channel[, not_before]) rows for the release's
        send date. Returns how many messages were new; rows already in the ledger for that day
        stay with the release that enqueued them. Releasing the same run twice changes nothing
        (and audits nothing). A held campaign's messages are never enqueued, and a release
        ``awaiting_approval`` enqueues nothing (``claim_due`` would not take its rows anyway).
        """
        row = release.as_row()
        messages = releasable_messages(release, messages)
        with self._write() as con:
            exists = con.execute(
                "select 1 from releases where run_id = ?", (release.run_id,)
            ).fetchone()
            if exists:
                return 0
            previous = self._last_live_files(con)
            con.execute(
                f"insert into releases ({', '.join(row)}, status)"
                f" values ({', '.join('?' * len(row))}, ?)",
                [*row.values(), release.status],
            )
            newly_due = 0
            if release.status == RELEASED:
                newly_due = self._insert_due(con, messages, release.send_date, release.run_id)
            if self.audit is not None:
                self._audit_release(actor, release, newly_due, previous)
            return newly_due

    @staticmethod
    def _last_live_files(con: sqlite3.Connection) -> dict[str, str]:
        """Each campaign/policy file's hash as of the newest release that did not hold it."""
        live: dict[str, str] = {}
        rows = con.execute(
            "select campaign_files, held_files from releases where status != 'awaiting_approval'"
            " order by released_at desc, rowid desc"
        )
        for files, held in rows:
            skipped = set(json.loads(held))
            for name, content_hash in json.loads(files).items():
                if name not in skipped:
                    live.setdefault(name, content_hash)
        return live

    def _audit_release(
        self, actor: str, release: Release, newly_due: int, previous: dict[str, str]
    ) -> None:
        """The release (or the hold) and every campaign or policy file version that goes live
        with it, inside the release's transaction."""
        assert self.audit is not None
        if release.status == AWAITING_APPROVAL:
            self.audit.append(
                actor,
                HOLD,
                release.run_id,
                {
                    "run_id": release.run_id,
                    "send_date": release.send_date,
                    "held": dict(release.held),
                    "campaign_files": dict(release.campaign_files),
                },
            )
            return
        self.audit.append(
            actor,
            RELEASE,
            release.run_id,
            {
                "run_id": release.run_id,
                "send_date": release.send_date,
                "decisions_digest": release.decisions_digest,
                "campaign_files": dict(release.campaign_files),
                "policy_version": release.policy_version,
                "model_versions": release.model_versions,
                "feature_version": release.feature_version,
                "messages": release.messages,
                "newly_due": newly_due,
                "held": dict(release.held),
            },
        )
        for file_name, content_hash in sorted(release.campaign_files.items()):
            if file_name not in release.held_files and previous.get(file_name) != content_hash:
                self.audit.append(
                    actor,
                    GO_LIVE,
                    file_name,
                    {
                        "run_id": release.run_id,
                        "content_hash": content_hash,
                        "previous_hash": previous.get(file_name),
                    },
                )

    def revoke_release(self, run_id: str, by: str, reason: str) -> int:
        """Revoke a run's release: its undelivered messages are cancelled. Returns how many."""
        now = _now()
        with self._write() as con:
            found = con.execute(
                "update releases set status = 'revoked', revoked_at = ?, revoked_by = ?,"
                " revoke_reason = ? where run_id = ? and status = 'released'",
                (now, by, reason, run_id),
            ).rowcount
            if not found:
                known = con.execute("select status from releases where run_id = ?", (run_id,))
                status = known.fetchone()
                raise KeyError(
                    f"run {run_id} has no release to revoke"
                    + (f" (it is already {status[0]})" if status else "")
                )
            before = con.total_changes
            con.execute(
                "update deliveries set status = 'cancelled', last_error = 'release_revoked',"
                " claimed_by = null, claimed_at = null, updated_at = ?"
                " where run_id = ? and status = 'due'",
                (now, run_id),
            )
            cancelled = con.total_changes - before
            if self.audit is not None:
                (digest,) = con.execute(
                    "select decisions_digest from releases where run_id = ?", (run_id,)
                ).fetchone()
                self.audit.append(
                    by,
                    REVOKE,
                    run_id,
                    {
                        "run_id": run_id,
                        "reason": reason,
                        "decisions_digest": digest,
                        "cancelled": cancelled,
                    },
                )
            return cancelled

    def enqueue_under_release(
        self, run_id: str, messages: pd.DataFrame, send_date: str
    ) -> int | None:
        """Enqueue messages decided after a release (a triggered campaign's event, decided under
        that release's versions) as due under the release of ``run_id``, in one transaction that
        re-reads the release: None, and nothing written, when it does not stand (revoked, or no
        such release); else how many were new (0: the (campaign, customer, channel, day) row is
        in the ledger already, the same unique key as batch sends). A revocation later cancels
        these rows with the release's own."""
        with self._write() as con:
            row = con.execute("select status from releases where run_id = ?", (run_id,)).fetchone()
            if row is None or row[0] != "released":
                return None
            return self._insert_due(con, messages, send_date, run_id)

    def releases(self) -> pd.DataFrame:
        with self._connect() as con:
            return pd.read_sql_query("select * from releases order by released_at", con)

    def _insert_due(
        self, con: sqlite3.Connection, messages: pd.DataFrame, send_date: str, run_id: str
    ) -> int:
        """Insert (campaign, customer_id, channel[, not_before]) rows as due for ``send_date``
        inside the caller's transaction; ``not_before`` (UTC, NaT for "now") defers a message
        out of quiet hours. Returns how many were new."""
        now = _now()
        if "not_before" in messages.columns:
            not_before = [
                None if pd.isna(t) else _iso(pd.Timestamp(t).to_pydatetime())
                for t in messages["not_before"]
            ]
        else:
            not_before = [None] * len(messages)
        trace_id = trace_id_for_run(run_id)
        templates = (
            [None if pd.isna(t) else str(t) for t in messages["template"]]
            if "template" in messages.columns
            else [None] * len(messages)
        )
        rows = [
            (
                idempotency_key(c, cid, ch, send_date),
                c,
                int(cid),
                ch,
                send_date,
                run_id,
                trace_id,
                DUE,
                nb,
                now,
                now,
                template,
            )
            for (c, cid, ch), nb, template in zip(
                messages[["campaign", "customer_id", "channel"]].itertuples(index=False),
                not_before,
                templates,
                strict=True,
            )
        ]
        before = con.total_changes
        con.executemany(
            "insert or ignore into deliveries (idempotency_key, campaign, customer_id, channel,"
            " send_date, run_id, trace_id, status, not_before, created_at, updated_at, template)"
            " values (?,?,?,?,?,?,?,?,?,?,?,?)",
            rows,
        )
        return con.total_changes - before

    def _release_dead_claims(self, con: sqlite3.Connection) -> int:
        holders = [
            row[0]
            for row in con.execute(
                "select distinct claimed_by from deliveries"
                " where status = 'due' and claimed_by is not null"
            )
        ]
        dead = [h for h in holders if _claim_is_dead(h)]
        for holder in dead:
            con.execute(
                "update deliveries set claimed_by = null, claimed_at = null where claimed_by = ?",
                (holder,),
            )
        return len(dead)

    def claim_due(
        self,
        worker: str,
        limit: int,
        campaigns: list[str] | None = None,
        now: datetime | None = None,
    ) -> list[DueMessage]:
        """Claim up to ``limit`` due rows of standing releases whose time has come and that
        nobody live holds. A message of a revoked release (or of none) is never claimed.

        A claim is free when it was never taken, its lease expired, or the process that took it
        on this host is gone (a crashed or killed run): a re-run picks it up at once.
        """
        moment = now or datetime.now(UTC)
        expired = _iso(moment - self.lease)
        campaign_filter = ""
        params: list[object] = [worker, _iso(moment), _iso(moment), expired]
        if campaigns:
            campaign_filter = f"and campaign in ({','.join('?' * len(campaigns))})"
            params.extend(campaigns)
        params.append(limit)
        with self._write() as con:
            self._release_dead_claims(con)
            rows = con.execute(
                f"""
                update deliveries set claimed_by = ?, claimed_at = ?
                where idempotency_key in (
                    select idempotency_key from deliveries
                    where status = 'due'
                      and run_id in (select run_id from releases where status = 'released')
                      and (not_before is null or not_before <= ?)
                      and (claimed_at is null or claimed_at < ?) {campaign_filter}
                    order by created_at, idempotency_key limit ?)
                returning idempotency_key, campaign, customer_id, channel, send_date,
                          dispatched_at, trace_id, template
                """,
                params,
            ).fetchall()
        return sorted((DueMessage(*row) for row in rows), key=lambda m: m.idempotency_key)

    def mark_dispatched(self, keys: list[str]) -> None:
        """Record that these messages are being handed to a provider (outcome not yet known)."""
        now = _now()
        with self._write() as con:
            con.executemany(
                "update deliveries set dispatched_at = ?, attempts = attempts + 1,"
                " updated_at = ? where idempotency_key = ? and status = 'due'",
                [(now, now, k) for k in keys],
            )

    def mark(self, outcomes: list[tuple[str, str, str, str | None, str | None]]) -> None:
        """Apply (idempotency_key, status, provider, provider_message_id, error) outcomes."""
        now = _now()
        with self._write() as con:
            con.executemany(
                "update deliveries set status = ?, provider = ?, provider_message_id = ?,"
                " last_error = ?, claimed_by = null, claimed_at = null, dispatched_at = null,"
                " updated_at = ? where idempotency_key = ? and status = 'due'",
                [
                    (status, provider, msg_id, error, now, key)
                    for key, status, provider, msg_id, error in outcomes
                ],
            )

    def defer(self, keys: list[str], not_before: datetime, reason: str) -> None:
        """Keep messages due but not before ``not_before``; the claim is given back.

        ``dispatched_at`` is kept: a message whose last attempt may have reached the provider is
        still reconciled before it is sent again.
        """
        now = _now()
        with self._write() as con:
            con.executemany(
                "update deliveries set not_before = ?, last_error = ?, claimed_by = null,"
                " claimed_at = null, updated_at = ? where idempotency_key = ? and status = 'due'",
                [(_iso(not_before), reason, now, k) for k in keys],
            )

    def release(self, keys: list[str]) -> None:
        """Give back claims without an outcome (e.g. dispatch interrupted before sending)."""
        with self._write() as con:
            con.executemany(
                "update deliveries set claimed_by = null, claimed_at = null where idempotency_key = ?",
                [(k,) for k in keys],
            )

    def expire_before(self, send_date: str) -> int:
        """Cancel messages still due from decision days before ``send_date``: never send late."""
        now = _now()
        with self._write() as con:
            before = con.total_changes
            con.execute(
                "update deliveries set status = 'cancelled', last_error = 'expired',"
                " claimed_by = null, claimed_at = null, updated_at = ?"
                " where status = 'due' and send_date < ? and dispatched_at is null",
                (now, send_date),
            )
            return con.total_changes - before

    def deferred(self, campaigns: list[str] | None = None, now: datetime | None = None) -> int:
        """How many due messages wait for a later time."""
        moment = _iso(now or datetime.now(UTC))
        query = "select count(*) from deliveries where status = 'due' and not_before > ?"
        params: list[object] = [moment]
        if campaigns:
            query += f" and campaign in ({','.join('?' * len(campaigns))})"
            params.extend(campaigns)
        with self._connect() as con:
            return int(con.execute(query, params).fetchone()[0])

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
