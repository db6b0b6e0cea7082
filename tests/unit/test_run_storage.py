"""The run's quick event log: only SQLite files under DAGSTER_HOME lose the per-commit flush,
only while the block runs; any other database (the send ledger's kind) keeps its settings."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from orchestration.run_storage import quick_event_log

FULL, NORMAL = 2, 1


def _wal_db(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(path) as connection:
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("create table t (x integer)")
    return path


def _synchronous(path: Path) -> int:
    engine = create_engine(f"sqlite:///{path}", poolclass=NullPool)
    with engine.connect() as connection, connection.begin():
        connection.execute(text("insert into t values (1)"))
        level = connection.execute(text("PRAGMA synchronous")).scalar()
    engine.dispose()
    return int(level)


def test_only_dagster_home_files_and_only_inside_the_block(tmp_path: Path) -> None:
    home = tmp_path / "dagster_home"
    run_db = _wal_db(home / "history" / "runs" / "run.db")
    other = _wal_db(tmp_path / "gateway" / "ledger.db")
    with quick_event_log(home):
        assert _synchronous(run_db) == NORMAL
        assert _synchronous(other) == FULL
        # the held connection keeps the WAL file between events (no checkpoint per event)
        assert run_db.with_name("run.db-wal").exists()
    assert _synchronous(run_db) == FULL
    with sqlite3.connect(run_db) as connection:
        assert connection.execute("select count(*) from t").fetchone()[0] == 2
