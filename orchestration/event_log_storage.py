"""Dagster's SQLite event log with one engine per shard kept open, instead of one per event.

Dagster's :class:`SqliteEventLogStorage` builds a new SQLAlchemy engine for every write: create
the engine, connect, run the dialect's first-connect checks, insert, commit, close, dispose. A
100k run's event log lists 542 events (149 of them asset-check evaluations, written to two
files each), and py-spy put 31 s of that run's 153 s main thread there, mostly connecting and
closing. This class keeps each shard's engine
(and its one pooled connection) for reuse, so a write is an insert and a commit. Everything else,
the files, their schema and what the UI reads, is Dagster's own: it is the same class with a
different ``_connect``.

Engines are kept for the few most recent shards only (the index shard and the runs being
written or read), so a long-lived process such as the UI does not hold a file open per run.
The lock Dagster takes around each connection is kept; SQLite's own locking keeps other
processes (the UI, a second run) safe as before, and an idle pooled connection holds no lock.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager

from dagster._core.storage.event_log.sqlite.sqlite_event_log import (
    SQLITE_BUSY_TIMEOUT_SECONDS,
    SqliteEventLogStorage,
)
from dagster._core.storage.sqlite_storage import SqliteStorageConfig
from sqlalchemy import create_engine
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import QueuePool

SHARDS_KEPT_OPEN = 8


class PooledSqliteEventLogStorage(SqliteEventLogStorage):
    """:class:`SqliteEventLogStorage` that reuses one engine per shard (see the module)."""

    def __init__(self, base_dir: str, inst_data=None) -> None:
        self._engines: OrderedDict[str, Engine] = OrderedDict()
        super().__init__(base_dir, inst_data=inst_data)

    @classmethod
    def from_config_value(cls, inst_data, config_value: SqliteStorageConfig):
        return cls(inst_data=inst_data, **config_value)

    def _engine(self, shard: str) -> Engine:
        engine = self._engines.pop(shard, None)
        if engine is None:
            engine = create_engine(
                self.conn_string_for_shard(shard),
                poolclass=QueuePool,
                pool_size=1,  # kept open between events
                max_overflow=4,  # Dagster's schema check inspects while a connection is out
                connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS, "check_same_thread": False},
            )
            while len(self._engines) >= SHARDS_KEPT_OPEN:
                _, oldest = self._engines.popitem(last=False)
                oldest.dispose()
        self._engines[shard] = engine  # most recently used last
        return engine

    @contextmanager
    def _connect(self, shard: str) -> Iterator[Connection]:
        with self._db_lock:
            engine = self._engine(shard)
            if shard not in self._initialized_dbs:
                self._initdb(engine)
                self._initialized_dbs.add(shard)
            with engine.connect() as conn, conn.begin():
                yield conn

    def _dispose_engines(self) -> None:
        with self._db_lock:
            while self._engines:
                self._engines.popitem()[1].dispose()

    def wipe(self) -> None:
        self._dispose_engines()  # wipe deletes the run shards' files: no connection may outlive them
        super().wipe()

    def dispose(self) -> None:
        self._dispose_engines()
        super().dispose()
