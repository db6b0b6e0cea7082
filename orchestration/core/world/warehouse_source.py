"""Raw tables read from a warehouse schema instead of Parquet files (``CAMPAIGN_DATASET=warehouse``).

A team whose raw data already sits in warehouse tables names the database and the schema
(``CAMPAIGN_RAW_DUCKDB=<file>``, ``CAMPAIGN_RAW_SCHEMA``, default ``raw``). Each table named like
a contract table (``customers``, ``orders``, ..., ``customer_attributes``; optional ones such as
``suppression_lifts`` when present) is copied, as it is, into the raw directory as
``<table>.parquet``; then the same validation runs as for files, so a table with a missing
column, a bad value or a missing table gets the same message naming the table, row and field.

Today the warehouse is a DuckDB file (opened read-only, so a writer elsewhere is not disturbed
for longer than the copy); another dbt source needs only another reader here.
"""

from __future__ import annotations

import os
from pathlib import Path

from orchestration.core.world.contract import OPTIONAL_TABLES, RAW_TABLES, raw_path


class WarehouseSourceError(ValueError):
    """The warehouse named as the raw source cannot be read."""


def _sql_string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def export_raw_schema(database: Path, schema: str, raw_dir: Path) -> dict[str, object]:
    """Copy the contract tables of ``schema`` in the DuckDB file ``database`` to ``raw_dir``.

    A missing contract table is left missing (the validation names it); its stale file from an
    earlier export is removed so it cannot pass for it. Returns the rows per table (metadata).
    """
    import duckdb

    database = Path(database)
    if not database.is_file():
        raise WarehouseSourceError(
            f"CAMPAIGN_RAW_DUCKDB={database}: no such DuckDB file; point it at the database that "
            f"holds the schema {schema!r} with the raw contract tables"
        )
    try:
        con = duckdb.connect(str(database), read_only=True)
    except duckdb.Error as exc:
        raise WarehouseSourceError(
            f"CAMPAIGN_RAW_DUCKDB={database}: cannot be opened read-only ({exc}); is it a DuckDB "
            "file, and is no other process writing it?"
        ) from exc
    raw_dir = Path(raw_dir)
    raw_dir.mkdir(parents=True, exist_ok=True)
    rows: dict[str, object] = {"raw_source": f"duckdb:{database}#{schema}"}
    try:
        present = {
            name
            for (name,) in con.execute(
                "select table_name from information_schema.tables where table_schema = $schema",
                {"schema": schema},
            ).fetchall()
        }
        for table in (*RAW_TABLES, *OPTIONAL_TABLES):
            target = raw_path(raw_dir, table)
            if table.name not in present:
                target.unlink(missing_ok=True)
                continue
            tmp = target.with_name(target.name + ".tmp")
            con.execute(
                f'copy (select * from "{schema}"."{table.name}") to {_sql_string(str(tmp))} '
                "(format parquet)"
            )
            os.replace(tmp, target)
            (count,) = con.execute(f'select count(*) from "{schema}"."{table.name}"').fetchone()
            rows[f"rows_{table.name}"] = int(count)
    finally:
        con.close()
    return rows
