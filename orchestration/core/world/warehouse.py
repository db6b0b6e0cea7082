"""The one warehouse reader: Python reads the marts and feature tables dbt builds through here.

Which warehouse depends on the profile (``Settings.profile``), never on the caller:

- ``local``: dbt-duckdb exports each mart as ``<data>/warehouse/exports/<model>.parquet``, and
  readers read those files (never the DuckDB file, which dbt may be writing);
- ``production``: dbt-postgres builds the marts as tables in the ``analytics`` schema of the
  ``warehouse`` database, and readers query them;
- ``spark``: dbt-spark builds them as Parquet tables under
  ``<data>/spark/warehouse/analytics.db/<model>/``, and readers read those directories through
  the pipeline's Spark session (never through dbt's metastore, which only dbt opens).

Callers name a table (``dim_customers``), optionally the columns and a SQL predicate (the same
simple SQL works on both), and get a pandas frame. :meth:`Warehouse.export_parquet` copies a table
to a Parquet file: the feature versions Feast reads (write-audit-publish) are made with it.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import pandas as pd

    from orchestration.settings import Settings

# The schema dbt-postgres builds the models in (dbt_project/profiles.yml, target postgres).
WAREHOUSE_SCHEMA = "analytics"
# What readers may read: the marts (dim_, fct_) and the feature tables (feat_).
MART_PREFIXES = ("dim_", "fct_", "feat_")


class WarehouseTableMissing(FileNotFoundError):
    """A mart the caller needs has not been built (run the dbt build first)."""


class Warehouse(Protocol):
    """Where dbt's marts and feature tables are read from."""

    def read_table(
        self, name: str, columns: Sequence[str] | None = None, where: str | None = None
    ) -> pd.DataFrame: ...

    def has_table(self, name: str) -> bool: ...

    def marts(self) -> list[str]: ...

    def export_parquet(self, name: str, path: Path) -> None: ...

    def describe(self, name: str) -> str: ...


def _select(columns: Sequence[str] | None) -> str:
    return ", ".join(f'"{c}"' for c in columns) if columns else "*"


class ParquetExports:
    """The embedded warehouse: dbt-duckdb's Parquet exports of the marts."""

    def __init__(self, exports_dir: Path) -> None:
        self.exports_dir = Path(exports_dir)

    def _path(self, name: str) -> Path:
        path = self.exports_dir / f"{name}.parquet"
        if not path.exists():
            raise WarehouseTableMissing(
                f"warehouse table {name} is not built ({path} is missing): run the dbt build "
                "(`make dbt-build` or the pipeline's warehouse step) first"
            )
        return path

    def has_table(self, name: str) -> bool:
        return (self.exports_dir / f"{name}.parquet").exists()

    def marts(self) -> list[str]:
        return sorted(
            p.stem for p in self.exports_dir.glob("*.parquet") if p.stem.startswith(MART_PREFIXES)
        )

    def read_table(
        self, name: str, columns: Sequence[str] | None = None, where: str | None = None
    ) -> pd.DataFrame:
        import pandas as pd

        path = self._path(name)
        if where is None:
            return pd.read_parquet(path, columns=list(columns) if columns else None)
        import duckdb

        with duckdb.connect() as con:
            return con.execute(
                f"select {_select(columns)} from read_parquet(?) where {where}", [str(path)]
            ).df()

    def export_parquet(self, name: str, path: Path) -> None:
        shutil.copy2(self._path(name), path)

    def describe(self, name: str) -> str:
        return str(self.exports_dir / f"{name}.parquet")


class PostgresWarehouse:
    """The production warehouse: the dbt-postgres tables in the ``analytics`` schema."""

    def __init__(self, url: str, schema: str = WAREHOUSE_SCHEMA) -> None:
        self.url = url
        self.schema = schema
        self._engine = None

    @property
    def engine(self):
        if self._engine is None:
            from sqlalchemy import create_engine

            self._engine = create_engine(self.url, pool_pre_ping=True)
        return self._engine

    def has_table(self, name: str) -> bool:
        from sqlalchemy import inspect

        return inspect(self.engine).has_table(name, schema=self.schema)

    def marts(self) -> list[str]:
        from sqlalchemy import inspect

        names = inspect(self.engine).get_table_names(schema=self.schema)
        return sorted(n for n in names if n.startswith(MART_PREFIXES))

    def read_table(
        self, name: str, columns: Sequence[str] | None = None, where: str | None = None
    ) -> pd.DataFrame:
        return self._query(name, columns, where)

    def _query(
        self,
        name: str,
        columns: Sequence[str] | None,
        where: str | None,
        order_by: Sequence[str] = (),
    ) -> pd.DataFrame:
        import pandas as pd
        from sqlalchemy import text

        if not self.has_table(name):
            raise WarehouseTableMissing(
                f"warehouse table {self.describe(name)} is not built: run the dbt build "
                "(the pipeline's warehouse step, target postgres) first"
            )
        sql = f'select {_select(columns)} from "{self.schema}"."{name}"'
        if where:
            sql += f" where {where}"
        if order_by:
            sql += " order by " + ", ".join(f'"{c}"' for c in order_by)
        with self.engine.connect() as con:
            frame = pd.read_sql(text(sql), con)
        return _microsecond_timestamps(frame)

    def export_parquet(self, name: str, path: Path) -> None:
        """The table as a Parquet file, rows in key order, so equal content gives equal bytes."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        columns = self._columns(name)
        keys = [c for c in ("customer_id", "event_timestamp") if c in columns] or columns[:1]
        frame = self._query(name, None, None, order_by=keys)
        pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path)

    def _columns(self, name: str) -> list[str]:
        from sqlalchemy import inspect

        return [c["name"] for c in inspect(self.engine).get_columns(name, schema=self.schema)]

    def describe(self, name: str) -> str:
        return f"{self.schema}.{name} (Postgres warehouse)"


class SparkWarehouse:
    """The spark profile's warehouse: dbt-spark's tables, read by their directories with Spark.

    ``where`` is Spark SQL (the simple predicates callers write work on all three warehouses).
    """

    def __init__(self, settings: Settings, schema: str = WAREHOUSE_SCHEMA) -> None:
        self.settings = settings
        self.schema = schema
        self.root = settings.spark_warehouse_dir / f"{schema}.db"

    def _location(self, name: str) -> Path:
        location = self.root / name
        if not self.has_table(name):
            raise WarehouseTableMissing(
                f"warehouse table {self.describe(name)} is not built ({location} has no data): "
                "run the dbt build (the pipeline's warehouse step, target spark) first"
            )
        return location

    def has_table(self, name: str) -> bool:
        location = self.root / name
        return location.is_dir() and any(location.glob("*.parquet"))

    def marts(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(
            p.name
            for p in self.root.iterdir()
            if p.name.startswith(MART_PREFIXES) and self.has_table(p.name)
        )

    def read_table(
        self, name: str, columns: Sequence[str] | None = None, where: str | None = None
    ) -> pd.DataFrame:
        return self._query(name, columns, where)

    def _query(
        self,
        name: str,
        columns: Sequence[str] | None,
        where: str | None,
        order_by: Sequence[str] = (),
    ) -> pd.DataFrame:
        from orchestration.core.common.spark import spark_session

        location = self._location(name)  # an unbuilt table says so before a session starts
        frame = spark_session(self.settings).read.parquet(str(location))
        if where:
            frame = frame.where(where)
        if columns:
            frame = frame.select(*columns)
        if order_by:
            frame = frame.orderBy(*order_by)
        return _microsecond_timestamps(frame.toPandas())

    def export_parquet(self, name: str, path: Path) -> None:
        """The table as one Parquet file, rows in key order (equal content, equal bytes), written
        by Spark itself: a feature table is customers x snapshot days, and collecting it into
        the driver (``toPandas``) lost the task result at 1M customers with 2 GB of driver."""
        import tempfile

        from orchestration.core.common.spark import spark_session

        location = self._location(name)
        frame = spark_session(self.settings).read.parquet(str(location))
        keys = [c for c in ("customer_id", "event_timestamp") if c in frame.columns]
        path = Path(path)
        scratch = Path(tempfile.mkdtemp(prefix=f".{path.stem}-", dir=path.parent))
        try:
            out = scratch / "table"
            frame.repartition(1).sortWithinPartitions(*(keys or frame.columns[:1])).write.parquet(
                str(out)
            )
            (part,) = out.glob("part-*.parquet")
            part.replace(path)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    def describe(self, name: str) -> str:
        return f"{self.schema}.{name} (Spark warehouse, {self.root / name})"


def _microsecond_timestamps(frame: pd.DataFrame) -> pd.DataFrame:
    """Timestamps as the Parquet exports carry them: UTC, microseconds."""
    for column in frame.columns:
        dtype = frame[column].dtype
        if str(dtype).startswith("datetime64"):
            series = frame[column]
            if getattr(dtype, "tz", None) is None:
                series = series.dt.tz_localize("UTC")
            frame[column] = series.dt.tz_convert("UTC").astype("datetime64[us, UTC]")
    return frame


def open_warehouse(settings: Settings) -> Warehouse:
    """The warehouse of the configured profile."""
    if settings.is_production:
        return PostgresWarehouse(settings.postgres_database("warehouse"))
    if settings.is_spark:
        return SparkWarehouse(settings)
    return ParquetExports(settings.exports_dir)
