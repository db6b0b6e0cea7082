"""Raw contract tables into the Postgres warehouse (production profile), for dbt's sources.

dbt-duckdb reads the raw Parquet files in place (``external_location`` in the sources file); on
Postgres the sources are tables in the ``raw`` schema, so before each dbt build the raw files are
copied there: every table in one transaction (``truncate`` + ``COPY``), so dbt and any reader see
either the previous raw set or the new one, never half of each. ``contact_points`` is never
loaded: contact details stay out of the warehouse (only the gateway reads them).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa

from orchestration.core.world.contract import (
    CUSTOMER_ATTRIBUTES,
    RAW_TABLES,
    RawTable,
    contract_tables,
    raw_path,
)

if TYPE_CHECKING:
    from orchestration.core.world.attributes import AttributeDeclaration

RAW_SCHEMA = "raw"


@dataclass(frozen=True)
class LoadedTable:
    name: str
    rows: int


def _postgres_type(field: pa.Field) -> str:
    kind = field.type
    if pa.types.is_timestamp(kind):
        return "timestamptz" if kind.tz else "timestamp"
    if pa.types.is_int64(kind):
        return "bigint"
    if pa.types.is_integer(kind):
        return "integer"
    if pa.types.is_floating(kind):
        return "double precision"
    if pa.types.is_boolean(kind):
        return "boolean"
    if pa.types.is_date(kind):
        return "date"
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return "text"
    raise TypeError(f"raw column {field.name}: no Postgres type for Arrow type {kind}")


def warehouse_tables(
    attributes: AttributeDeclaration | None = None,
) -> tuple[RawTable, ...]:
    """The raw tables dbt reads (every contract table but the contact details), with the
    declared attribute columns of ``customer_attributes`` when ``attributes`` is given."""
    tables = contract_tables(attributes) if attributes is not None else RAW_TABLES
    return tuple(t for t in tables if not t.contains_contact_details)


def _csv(table: pa.Table) -> io.BytesIO:
    import pyarrow.csv as pacsv

    buffer = io.BytesIO()
    # Unquoted empty fields are NULL for COPY ... csv; quoted empty strings stay strings.
    pacsv.write_csv(table, buffer, pacsv.WriteOptions(include_header=False))
    buffer.seek(0)
    return buffer


def _drop_if_columns_changed(cur, name: str, columns: list[str]) -> None:
    """Drop ``raw.<name>`` when its columns are not ``columns`` (a changed attribute
    declaration). ``cascade``: dbt's staging views over it go too; the dbt build that follows
    the load re-creates them from the new declaration."""
    cur.execute(
        "select column_name from information_schema.columns"
        " where table_schema = %s and table_name = %s order by ordinal_position",
        (RAW_SCHEMA, name),
    )
    existing = [row[0] for row in cur.fetchall()]
    if existing and existing != columns:
        cur.execute(f'drop table {RAW_SCHEMA}."{name}" cascade')


def load_raw_tables(
    raw_dir: Path, warehouse_url: str, attributes: AttributeDeclaration | None = None
) -> list[LoadedTable]:
    """Copy ``<raw_dir>/<table>.parquet`` into ``raw.<table>`` (one transaction for all).

    ``customer_attributes`` is re-created when the declaration changed its columns."""
    import psycopg2
    import pyarrow.parquet as pq

    loaded: list[LoadedTable] = []
    with psycopg2.connect(warehouse_url) as con, con.cursor() as cur:
        cur.execute(f"create schema if not exists {RAW_SCHEMA}")
        for spec in warehouse_tables(attributes):
            path = raw_path(raw_dir, spec)
            if not path.exists():
                raise FileNotFoundError(
                    f"{path}: raw table {spec.name} is missing; run the raw_data step first"
                )
            table = pq.read_table(path, schema=spec.schema)
            columns = ", ".join(f'"{f.name}" {_postgres_type(f)}' for f in spec.schema)
            names = ", ".join(f'"{f.name}"' for f in spec.schema)
            if spec.name == CUSTOMER_ATTRIBUTES.name:
                _drop_if_columns_changed(cur, spec.name, [f.name for f in spec.schema])
            cur.execute(f'create table if not exists {RAW_SCHEMA}."{spec.name}" ({columns})')
            cur.execute(f'truncate {RAW_SCHEMA}."{spec.name}"')
            cur.copy_expert(
                f'copy {RAW_SCHEMA}."{spec.name}" ({names}) from stdin with (format csv)',
                _csv(table),
            )
            loaded.append(LoadedTable(spec.name, table.num_rows))
    con.close()
    return loaded
