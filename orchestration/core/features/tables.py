"""Reading a feature version's rows directly (audits and drift), without going through Feast.

Each feature table has one row per (customer_id, event_timestamp) snapshot; the three tables share
the same spine, so they join on both keys.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from orchestration.core.features.publishing import FEATURE_TABLES

KEYS = ("customer_id", "event_timestamp")


def _joined_sql(version_path: Path) -> str:
    first, *rest = FEATURE_TABLES
    sql = f"select * from read_parquet('{version_path / f'{first}.parquet'}') as {first}"
    for table in rest:
        sql += f" join read_parquet('{version_path / f'{table}.parquet'}') as {table} using (customer_id, event_timestamp)"
    return sql


def snapshot_times(version_path: Path) -> list[pd.Timestamp]:
    import duckdb

    con = duckdb.connect()
    try:
        rows = con.execute(
            f"select distinct event_timestamp from read_parquet('{version_path / f'{FEATURE_TABLES[0]}.parquet'}') order by 1"
        ).fetchall()
    finally:
        con.close()
    return [pd.Timestamp(r[0]).tz_convert("UTC") for r in rows]


def read_feature_rows(
    version_path: Path, latest: bool, sample_rows: int | None = None, seed: int = 0
) -> pd.DataFrame:
    """All features per (customer, snapshot): the newest snapshot (``latest``) or the older ones.

    With ``sample_rows`` a reproducible random sample of that many rows is returned.
    """
    import duckdb

    comparison = "=" if latest else "<"
    sql = (
        f"with joined as ({_joined_sql(version_path)}), "
        f"newest as (select max(event_timestamp) as at from joined), "
        f"selected as (select joined.* from joined, newest "
        f"where joined.event_timestamp {comparison} newest.at) "
        f"select * from selected"
    )
    if sample_rows is not None:
        # The sample applies to the filtered rows (a sample clause on the join would sample first).
        sql += f" using sample reservoir({int(sample_rows)} rows) repeatable ({int(seed)})"
    con = duckdb.connect()
    try:
        return con.execute(sql).df()
    finally:
        con.close()


def table_row_counts(version_path: Path) -> dict[str, int]:
    import pyarrow.parquet as pq

    return {
        t: pq.ParquetFile(version_path / f"{t}.parquet").metadata.num_rows for t in FEATURE_TABLES
    }
