"""Source freshness: how old the newest row of a raw table is."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from orchestration.core.world.contract import RAW_TABLES_BY_NAME, raw_path


@dataclass(frozen=True)
class Freshness:
    table: str
    newest: datetime | None
    measured_at: datetime
    window_hours: float

    @property
    def lag_hours(self) -> float | None:
        if self.newest is None:
            return None
        return (self.measured_at - self.newest).total_seconds() / 3600

    @property
    def is_fresh(self) -> bool:
        lag = self.lag_hours
        return lag is not None and lag <= self.window_hours


def measure_freshness(
    raw_dir: Path, table: str, window_hours: float, now: datetime | None = None
) -> Freshness:
    """Newest value of the table's time column, compared with ``window_hours``."""
    import duckdb

    spec = RAW_TABLES_BY_NAME[table]
    path = raw_path(raw_dir, spec)
    if not path.exists():
        raise FileNotFoundError(f"{path}: raw table {table!r} is missing; land the raw data first")
    con = duckdb.connect()
    try:
        (newest,) = con.execute(
            f'select max("{spec.time_column}") from read_parquet($path)', {"path": str(path)}
        ).fetchone()
    finally:
        con.close()
    if newest is not None and newest.tzinfo is None:
        newest = newest.replace(tzinfo=UTC)
    return Freshness(
        table=table,
        newest=newest,
        measured_at=now or datetime.now(UTC),
        window_hours=window_hours,
    )
