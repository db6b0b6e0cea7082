"""Check raw Parquet files against the raw data contract, with errors a person can act on.

Every problem is one line that names the file, the column, an example (row number and key) and
what to do, e.g.::

    raw/orders.parquet: column 'amount' is missing (expected double); add it or map your source
    column to it

Row numbers count from 0 in file order (as pandas and pyarrow number them). The checks: the file
exists and reads as Parquet; every contract column is present with a type that casts to the
contract type; no nulls (except in the contract's ``nullable`` columns), in particular none in
the primary key; primary keys unique; closed-set columns hold only allowed values; no timestamp
in the future (later than now + ``FUTURE_TOLERANCE``, 5 minutes: the clock skew tolerated);
every ``customer_id`` exists in ``customers``; every customer's ``time_zone`` is an IANA zone
that ``zoneinfo`` knows (``Mars/Olympus`` would otherwise reach the policy engine); every order
``amount`` is finite and not negative. The optional tables (``contract.OPTIONAL_TABLES``, e.g.
``suppression_lifts``) are checked the same way when their file is there.

``customer_attributes`` is checked against the attribute declaration (``config/attributes.yaml``,
see ``orchestration.core.world.attributes``): a column that is not a declared attribute, a
categorical value outside its declared ``values``, a numeric value that is not a finite number
and a boolean that is not true/false are each reported with the file, the column (the attribute),
the first row and its key. Numeric and boolean attributes may be exported as text (a CSV-shaped
source): they are then checked value by value.

The checks run in DuckDB straight on the files (one scan per file for the row-wise checks, plus
one for duplicates and one for orphans), so they stay fast on 10M-customer worlds.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa

from orchestration.core.world.contract import (
    ARM_NAME_PATTERN,
    CAMPAIGN_EXPOSURES,
    CUSTOMER_ATTRIBUTES,
    CUSTOMERS,
    OPTIONAL_TABLES,
    ORDERS,
    RawTable,
    contract_tables,
    customer_attributes_table,
    raw_path,
)

if TYPE_CHECKING:
    import duckdb

    from orchestration.core.world.attributes import AttributeDeclaration

# Timestamps up to this far past now are accepted (clock skew between systems). The dispatch-time
# consent re-check (core/delivery/consent_guard.py) reads events with the same tolerance.
FUTURE_TOLERANCE = timedelta(minutes=5)
_ROW = "__file_row"  # the file row number column of the checked view

_INTEGER_TYPES = {"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "UTINYINT", "USMALLINT", "UINTEGER"}
_FLOAT_TYPES = {"FLOAT", "DOUBLE"}


class RawDataError(ValueError):
    """The raw data does not match the contract; ``problems`` maps each table to its problems."""

    def __init__(self, raw_dir: Path, problems: dict[str, list[str]]) -> None:
        self.raw_dir = Path(raw_dir)
        self.problems = {table: found for table, found in problems.items() if found}
        lines = [line for found in self.problems.values() for line in found]
        message = (
            f"raw data in {self.raw_dir} does not match the raw data contract "
            f"({len(lines)} problem{'s' if len(lines) != 1 else ''}):\n"
            + "\n".join(f"  - {line}" for line in lines)
            + "\n(the contract: orchestration/core/world/contract.py)"
        )
        super().__init__(message)


@functools.cache
def known_time_zones() -> frozenset[str]:
    """The IANA time zone names ``zoneinfo`` can load on this machine."""
    from zoneinfo import available_timezones

    return frozenset(available_timezones())


def _expected(arrow_type: pa.DataType) -> str:
    if pa.types.is_timestamp(arrow_type):
        return "timestamp (UTC, microseconds)"
    if pa.types.is_int64(arrow_type):
        return "int64"
    if pa.types.is_float64(arrow_type):
        return "double"
    if pa.types.is_string(arrow_type):
        return "string"
    if pa.types.is_boolean(arrow_type):
        return "boolean"
    return str(arrow_type)


def _castable(duckdb_type: str, arrow_type: pa.DataType) -> bool:
    """Whether a column of this DuckDB type casts losslessly enough to the contract type."""
    t = duckdb_type.upper()
    if pa.types.is_timestamp(arrow_type):
        return t.startswith("TIMESTAMP") or t == "DATE"
    if pa.types.is_int64(arrow_type):
        return t in _INTEGER_TYPES
    if pa.types.is_float64(arrow_type):
        return t in _INTEGER_TYPES or t in _FLOAT_TYPES or t.startswith("DECIMAL")
    if pa.types.is_string(arrow_type):
        return t == "VARCHAR" or t.startswith("ENUM")
    if pa.types.is_boolean(arrow_type):
        return t == "BOOLEAN"
    return False


def _schema_text(table: RawTable) -> str:
    return ", ".join(f"{f.name} {_expected(f.type)}" for f in table.schema)


def _sql_string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _label(path: Path) -> str:
    return f"{path.parent.name}/{path.name}" if path.parent.name else path.name


def _show(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    return repr(value)


class _Checker:
    """The checks of one file on one DuckDB connection."""

    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        path: Path,
        table: RawTable,
        now: datetime,
        attributes: Declared | None = None,
    ):
        self.con = con
        self.path = path
        self.table = table
        self.now = now
        self.attributes = attributes
        self.label = _label(path)
        self.problems: list[str] = []
        self._as_text: dict[str, str] = {}  # attribute column -> its type, when given as text

    def add(self, message: str) -> None:
        self.problems.append(f"{self.label}: {message}")

    def run(self) -> list[str]:
        if not self.path.exists():
            columns = ", ".join(self.table.schema.names)
            self.add(
                f"file is missing (expected the '{self.table.name}' table with columns "
                f"{columns}); generate the synthetic world (`campaign generate`) or export "
                "your source table to this path"
            )
            return self.problems
        columns = self._columns()
        if columns is None:
            return self.problems
        usable = self._check_types(columns)
        if not usable:
            return self.problems
        self._usable = usable
        try:
            self._create_view(usable)
            self._check_rows(usable)
            if all(c in usable for c in self.table.primary_key):
                self._check_duplicates()
            if "customer_id" in usable and self.table.name != CUSTOMERS.name:
                self._check_orphans()
        except Exception as exc:  # e.g. a value that does not cast (text in a number column)
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            self.add(
                f"could not be checked ({reason}); convert its columns to the contract types "
                f"({_schema_text(self.table)}) when you export it"
            )
        return self.problems

    # --- schema ------------------------------------------------------------------------------
    def _columns(self) -> dict[str, str] | None:
        try:
            rows = self.con.execute(
                f"DESCRIBE SELECT * FROM read_parquet({_sql_string(str(self.path))})"
            ).fetchall()
        except Exception as exc:  # duckdb raises its own exception types
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            self.add(
                f"cannot be read as Parquet ({reason}); write it with a Parquet writer "
                "(pandas.DataFrame.to_parquet, pyarrow.parquet.write_table or DuckDB COPY ... "
                "(FORMAT parquet))"
            )
            return None
        return {name: col_type for name, col_type, *_ in rows}

    def _check_types(self, columns: dict[str, str]) -> list[str]:
        usable = []
        for field in self.table.schema:
            expected = _expected(field.type)
            actual = columns.get(field.name)
            if actual is None:
                self.add(
                    f"column '{field.name}' is missing (expected {expected}); add it or map "
                    "your source column to it"
                )
            elif self._attribute_as_text(field.name, actual):
                usable.append(field.name)
            elif not _castable(actual, field.type):
                self.add(
                    f"column '{field.name}' has type {actual}, which does not cast to "
                    f"{expected}; convert it to {expected} when you export the table"
                )
            else:
                usable.append(field.name)
        if self.attributes is not None:
            self._check_undeclared(columns)
        return usable

    def _attribute_as_text(self, name: str, actual: str) -> bool:
        """A numeric or boolean attribute exported as text (or a boolean as 0/1): checked value
        by value instead (``_value_checks``)."""
        declared = self.attributes.declaration.get(name) if self.attributes else None
        t = actual.upper()
        if declared is None or declared.type == "categorical":
            return False
        if t == "VARCHAR" or (declared.type == "boolean" and t in _INTEGER_TYPES):
            self._as_text[name] = declared.type
            return True
        return False

    def _check_undeclared(self, columns: dict[str, str]) -> None:
        declared = self.attributes.declaration.names
        for name in columns:
            if name not in self.table.schema.names:
                listed = ", ".join(declared) if declared else "none"
                self.add(
                    f"column '{name}' is not a declared attribute (declared: {listed}); "
                    f"declare it in {self.attributes.source} or leave it out of the export"
                )

    def _create_view(self, usable: list[str]) -> None:
        select = []
        for field in self.table.schema:
            if field.name not in usable:
                continue
            if pa.types.is_timestamp(field.type):
                select.append(f'CAST("{field.name}" AS TIMESTAMPTZ) AS "{field.name}"')
            else:
                select.append(f'"{field.name}"')
        self.con.execute(
            f"CREATE OR REPLACE TEMP VIEW checked AS SELECT file_row_number AS {_ROW}, "
            f"{', '.join(select)} "
            f"FROM read_parquet({_sql_string(str(self.path))}, file_row_number = true)"
        )

    def _key_sql(self) -> str:
        """The primary key of a row as a struct (formatted by ``_format_key``), for examples."""
        parts = [f'"{c}" := "{c}"' for c in self.table.primary_key if c in self._usable]
        return f"struct_pack({', '.join(parts)})" if parts else "NULL"

    @staticmethod
    def _format_key(key: object) -> str:
        if not isinstance(key, dict):
            return ""
        return ", ".join(f"{name}={_show(value)}" for name, value in key.items())

    # --- row-wise checks, one scan -------------------------------------------------------------
    def _check_rows(self, usable: list[str]) -> None:
        key = self._key_sql()
        allowed = dict(self.table.allowed_values)
        checks: list[tuple[str, str, str]] = []  # (kind, column, condition)
        for field in self.table.schema:
            name = field.name
            if name not in usable:
                continue
            col = f'"{name}"'
            if name not in self.table.nullable:
                checks.append(("null", name, f"{col} IS NULL"))
            if name in allowed:
                values = ", ".join(_sql_string(v) for v in allowed[name])
                checks.append(("value", name, f"{col} IS NOT NULL AND {col} NOT IN ({values})"))
            if pa.types.is_timestamp(field.type):
                checks.append(("future", name, f"{col} > $limit"))
        checks.extend(self._value_checks(usable))
        if not checks:
            return
        limit = self.now + FUTURE_TOLERANCE
        counts = self.con.execute(
            f"SELECT {', '.join(f'count_if({cond})' for _, _, cond in checks)} FROM checked",
            {"limit": limit},
        ).fetchone()
        for (kind, name, cond), count in zip(checks, counts, strict=True):
            if not count:
                continue
            row, example_key, value = self.con.execute(
                f'SELECT {_ROW}, {key}, "{name}" FROM checked WHERE {cond} ORDER BY {_ROW} LIMIT 1',
                {"limit": limit} if "$limit" in cond else None,
            ).fetchone()
            shown_key = self._format_key(example_key)
            where = f"row {row}" + (f" ({shown_key})" if shown_key else "")
            if kind == "null" and name in self.table.primary_key:
                self.add(
                    f"primary key column '{name}' has {count:,} null value(s), first at {where}; "
                    f"every row needs a {name}: fill it or drop those rows"
                )
            elif kind == "null":
                may = (
                    f"only {', '.join(self.table.nullable)} may be null"
                    if self.table.nullable
                    else "no column of this table may be null"
                )
                self.add(
                    f"column '{name}' has {count:,} null value(s), first at {where}; {may}: "
                    "fill them or drop those rows"
                )
            elif kind == "value":
                options = ", ".join(allowed[name])
                self.add(
                    f"column '{name}' has {count:,} value(s) outside the allowed set "
                    f"({options}), e.g. {_show(value)} at {where}; map them to one of the "
                    "allowed values"
                )
            elif kind == "zone":
                self.add(
                    f"column '{name}' has {count:,} value(s) that are not IANA time zones, e.g. "
                    f"{_show(value)} at {where}; use a name from the IANA time zone database "
                    "(e.g. Europe/Berlin, America/New_York, UTC) or map it when you export the "
                    "table"
                )
            elif kind == "attr_numeric":
                self.add(
                    f"column '{name}' has {count:,} value(s) that are not finite numbers, e.g. "
                    f"{_show(value)} at {where}; attribute '{name}' is declared numeric in "
                    f"{self.attributes.source}: export numbers (or null when unknown)"
                )
            elif kind == "attr_boolean":
                self.add(
                    f"column '{name}' has {count:,} value(s) that are not booleans, e.g. "
                    f"{_show(value)} at {where}; attribute '{name}' is declared boolean in "
                    f"{self.attributes.source}: export true/false (or 1/0, null when unknown)"
                )
            elif kind == "arm":
                self.add(
                    f"column '{name}' has {count:,} arm name(s) that are not identifiers, e.g. "
                    f"{_show(value)} at {where}; an arm is 'control' or a treatment's name in "
                    "lower-case letters, digits and '_' (e.g. treatment, womens_email): rename "
                    "them when you export the table"
                )
            elif kind == "amount":
                self.add(
                    f"column '{name}' has {count:,} negative or non-finite value(s) (NaN or "
                    f"infinity), e.g. {_show(value)} at {where}; an amount is what was paid, a "
                    "finite number >= 0: fix the export, or leave refunds out of this table"
                )
            else:
                self.add(
                    f"column '{name}' has {count:,} timestamp(s) in the future (later than "
                    f"{limit.isoformat()}), e.g. {_show(value)} at {where}; timestamps must be "
                    "UTC and not later than now: check the time-zone conversion of your export"
                )

    def _value_checks(self, usable: list[str]) -> list[tuple[str, str, str]]:
        """Checks of values the type and the closed sets do not catch: time zone names, amounts."""
        checks: list[tuple[str, str, str]] = []
        if self.table.name == CUSTOMERS.name and "time_zone" in usable:
            present = self.con.execute(
                'SELECT DISTINCT "time_zone" FROM checked WHERE "time_zone" IS NOT NULL'
            ).fetchall()
            unknown = sorted(str(v) for (v,) in present if str(v) not in known_time_zones())
            if unknown:
                values = ", ".join(_sql_string(v) for v in unknown)
                checks.append(("zone", "time_zone", f'"time_zone" IN ({values})'))
        if self.table.name == CAMPAIGN_EXPOSURES.name and "arm" in usable:
            pattern = _sql_string(ARM_NAME_PATTERN)
            bad_arm = f'"arm" IS NOT NULL AND NOT regexp_full_match("arm", {pattern})'
            checks.append(("arm", "arm", bad_arm))
        if self.table.name == ORDERS.name and "amount" in usable:
            bad = '"amount" < 0 OR NOT isfinite(CAST("amount" AS DOUBLE))'
            checks.append(("amount", "amount", f'"amount" IS NOT NULL AND ({bad})'))
        if self.table.name == CUSTOMER_ATTRIBUTES.name:
            checks.extend(self._attribute_value_checks(usable))
        return checks

    def _attribute_value_checks(self, usable: list[str]) -> list[tuple[str, str, str]]:
        """Numeric attributes hold finite numbers, boolean ones true/false (text or 0/1 too)."""
        checks: list[tuple[str, str, str]] = []
        declaration = self.attributes.declaration if self.attributes else None
        for name in usable:
            declared = declaration.get(name) if declaration else None
            if declared is None:
                continue
            col = f'"{name}"'
            if declared.type == "numeric":
                number = f"TRY_CAST({col} AS DOUBLE)"
                bad = f"{number} IS NULL OR NOT isfinite({number})"
                checks.append(("attr_numeric", name, f"{col} IS NOT NULL AND ({bad})"))
            elif declared.type == "boolean" and name in self._as_text:
                text = f"lower(trim(CAST({col} AS VARCHAR)))"
                allowed = "('true', 'false', '1', '0')"
                checks.append(
                    ("attr_boolean", name, f"{col} IS NOT NULL AND {text} NOT IN {allowed}")
                )
        return checks

    # --- primary key uniqueness ----------------------------------------------------------------
    def _check_duplicates(self) -> None:
        pk = self.table.primary_key
        if len(pk) == 1 and _strictly_increasing(self.path, pk[0]):
            return  # the common case (ids in file order) proven in one cheap pass
        cols = ", ".join(f'"{c}"' for c in pk)
        not_null = " AND ".join(f'"{c}" IS NOT NULL' for c in pk)
        key = self._key_sql()
        keys, extra, example, first, last = self.con.execute(
            f"""
            WITH duplicated AS (
                SELECT {key} AS key, count(*) AS n, min({_ROW}) AS first_row,
                       max({_ROW}) AS last_row
                FROM checked
                WHERE {not_null}
                GROUP BY {cols}
                HAVING count(*) > 1
            )
            SELECT count(*), sum(n - 1), arg_min(key, first_row), min(first_row),
                   arg_min(last_row, first_row)
            FROM duplicated
            """
        ).fetchone()
        if keys:
            self.add(
                f"primary key ({', '.join(pk)}) is not unique: {keys:,} key value(s) appear more "
                f"than once ({int(extra):,} extra row(s)), e.g. {self._format_key(example)} at "
                f"rows {first} and {last}; keep one row per key (deduplicate the export)"
            )

    # --- references to customers ----------------------------------------------------------------
    def _check_orphans(self) -> None:
        customers = raw_path(self.path.parent, CUSTOMERS)
        if not customers.exists():
            return  # reported on customers.parquet itself
        try:
            described = self.con.execute(
                f"DESCRIBE SELECT customer_id FROM read_parquet({_sql_string(str(customers))})"
            ).fetchall()
            ids_type = {name: col_type for name, col_type, *_ in described}.get("customer_id")
        except Exception:
            return  # unreadable or no customer_id: reported on customers.parquet itself
        if ids_type is None or not _castable(ids_type, pa.int64()):
            return
        dense = _dense_id_range(customers)
        if dense is not None and _within_statistics(self.path, "customer_id", *dense):
            return  # every customer_id lies in the contiguous range of known customers
        orphans = f"""
            FROM checked
            ANTI JOIN read_parquet({_sql_string(str(customers))}) AS known
                ON checked.customer_id = known.customer_id
            WHERE checked.customer_id IS NOT NULL
        """
        (count,) = self.con.execute(f"SELECT count(*) {orphans}").fetchone()
        if not count:
            return
        row, example_key, customer_id = self.con.execute(
            f"SELECT {_ROW}, {self._key_sql()}, checked.customer_id {orphans} "
            f"ORDER BY {_ROW} LIMIT 1"
        ).fetchone()
        if count:
            self.add(
                f"column 'customer_id' has {count:,} row(s) whose customer is not in "
                f"{customers.name}, e.g. customer_id={customer_id} at row {row} "
                f"({self._format_key(example_key)}); "
                f"add those customers to {customers.name} or drop the rows"
            )


def _dense_id_range(customers: Path) -> tuple[int, int] | None:
    """(first, last) when customers.customer_id is exactly first, first + 1, ..., last."""
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(customers)
        rows = parquet.metadata.num_rows
        if rows == 0 or not _strictly_increasing(customers, "customer_id"):
            return None
        first = parquet.read_row_group(0, columns=["customer_id"]).column(0)[0].as_py()
        last_group = parquet.read_row_group(parquet.num_row_groups - 1, columns=["customer_id"])
        last = last_group.column(0)[-1].as_py()
    except Exception:
        return None
    return (first, last) if last - first + 1 == rows else None


def _within_statistics(path: Path, column: str, low: int, high: int) -> bool:
    """Whether the Parquet row-group statistics prove every value of ``column`` is in [low, high]."""
    import pyarrow.parquet as pq

    parquet = pq.ParquetFile(path)
    metadata = parquet.metadata
    index = parquet.schema_arrow.get_field_index(column)
    if index < 0 or not pa.types.is_integer(parquet.schema_arrow.field(index).type):
        return False
    for group in range(metadata.num_row_groups):
        chunk = metadata.row_group(group).column(index)
        stats = chunk.statistics
        if metadata.row_group(group).num_rows == 0:
            continue
        if stats is None or not stats.has_min_max:
            return False
        if stats.min < low or stats.max > high:
            return False
    return True


def _strictly_increasing(path: Path, column: str) -> bool:
    """Whether an integer column has no nulls and rises strictly in file order (so it is unique).

    One streaming pass over the column, far cheaper than a hash aggregate of 100M+ keys.
    """
    import numpy as np
    import pyarrow.parquet as pq

    parquet = pq.ParquetFile(path)
    if not pa.types.is_integer(parquet.schema_arrow.field(column).type):
        return False
    previous = None
    for group in range(parquet.num_row_groups):
        values = parquet.read_row_group(group, columns=[column]).column(0)
        if values.null_count:
            return False
        array = values.to_numpy()
        if array.size == 0:
            continue
        if previous is not None and array[0] <= previous:
            return False
        if not np.all(array[1:] > array[:-1]):
            return False
        previous = array[-1]
    return True


def _connect() -> duckdb.DuckDBPyConnection:
    import duckdb

    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")  # timestamps without a zone are read as UTC
    return con


def _now(now: datetime | None) -> datetime:
    if now is None:
        return datetime.now(UTC)
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    return now.astimezone(UTC)


@dataclass(frozen=True)
class Declared:
    """The attribute declaration the raw data is checked against, and the file it came from."""

    declaration: AttributeDeclaration
    source: str


def _declared(attributes: AttributeDeclaration | Path | str | None) -> Declared:
    """``attributes`` as a :class:`Declared`: a declaration, a file, or None (the default file)."""
    from orchestration.core.world.attributes import AttributeDeclaration, load_attributes
    from orchestration.settings import ATTRIBUTES_FILE

    if isinstance(attributes, AttributeDeclaration):
        return Declared(attributes, "the attribute declaration")
    path = Path(attributes) if attributes is not None else ATTRIBUTES_FILE
    return Declared(load_attributes(path), _label(path))


def validate_raw_file(
    path: Path,
    table: RawTable,
    now: datetime | None = None,
    attributes: AttributeDeclaration | Path | str | None = None,
) -> list[str]:
    """The contract problems of one raw file (empty when it conforms). ``attributes`` (a
    declaration or its file; default config/attributes.yaml) is used for customer_attributes."""
    con = _connect()
    try:
        declared = _declared(attributes) if table.name == CUSTOMER_ATTRIBUTES.name else None
        if declared is not None:
            table = customer_attributes_table(declared.declaration)
        return _Checker(con, Path(path), table, _now(now), declared).run()
    finally:
        con.close()


def validate_raw_dir(
    raw_dir: Path,
    now: datetime | None = None,
    attributes: AttributeDeclaration | Path | str | None = None,
) -> dict[str, list[str]]:
    """The problems of every contract table in ``raw_dir`` (table -> problems; empty is fine),
    and of each optional table whose file is there. ``customer_attributes`` is checked against
    ``attributes`` (a declaration or its file; default config/attributes.yaml)."""
    moment = _now(now)
    declared = _declared(attributes)
    con = _connect()
    try:
        problems = {
            table.name: _Checker(
                con,
                raw_path(raw_dir, table),
                table,
                moment,
                declared if table.name == CUSTOMER_ATTRIBUTES.name else None,
            ).run()
            for table in contract_tables(declared.declaration)
        }
        for table in OPTIONAL_TABLES:  # checked only when the file is there
            if raw_path(raw_dir, table).exists():
                problems[table.name] = _Checker(con, raw_path(raw_dir, table), table, moment).run()
        return problems
    finally:
        con.close()


def require_valid_raw(
    raw_dir: Path,
    now: datetime | None = None,
    attributes: AttributeDeclaration | Path | str | None = None,
) -> None:
    """Raise :class:`RawDataError` listing every problem when ``raw_dir`` breaks the contract."""
    problems = validate_raw_dir(raw_dir, now, attributes)
    if any(problems.values()):
        raise RawDataError(Path(raw_dir), problems)
