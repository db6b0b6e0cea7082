"""The metrics table: one row per (run, metric), appended every run, for notebooks and trends.

SQLite (long format) under ``<data>/metrics/metrics.db``: appending is a transaction, readers
get a consistent view, and a new metric needs no schema change.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

SCHEMA = """
create table if not exists run_metrics (
    run_id text not null,
    recorded_at text not null,
    run_status text not null,
    metric text not null,
    value real,
    primary key (run_id, metric)
);
"""


def record_run_metrics(path: Path, run_id: str, status: str, metrics: dict[str, float]) -> int:
    """Upsert ``metrics`` for ``run_id``; returns how many rows were written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    now = datetime.now(UTC).isoformat()
    rows = [(run_id, now, status, name, float(value)) for name, value in sorted(metrics.items())]
    con = sqlite3.connect(path, timeout=30)
    try:
        with con:
            con.executescript(SCHEMA)
            con.executemany("insert or replace into run_metrics values (?,?,?,?,?)", rows)
    finally:
        con.close()
    return len(rows)


def recorded_status(path: Path, run_id: str) -> str | None:
    """The status ``run_id`` was last recorded with, or None when it was never recorded."""
    if not Path(path).exists():
        return None
    con = sqlite3.connect(path, timeout=30)
    try:
        con.executescript(SCHEMA)
        row = con.execute(
            "select run_status from run_metrics where run_id = ? limit 1", (run_id,)
        ).fetchone()
    finally:
        con.close()
    return row[0] if row else None


def read_run_metrics(path: Path) -> pd.DataFrame:
    """All recorded metrics, one row per run and one column per metric (oldest run first)."""
    if not Path(path).exists():
        return pd.DataFrame()
    con = sqlite3.connect(path, timeout=30)
    try:
        long = pd.read_sql_query("select * from run_metrics", con)
    finally:
        con.close()
    if long.empty:
        return long
    wide = long.pivot_table(
        index=["run_id", "recorded_at", "run_status"], columns="metric", values="value"
    )
    return wide.reset_index().sort_values("recorded_at").reset_index(drop=True)
