"""A Feast online store on SQLite with one row per entity and feature view, and a bulk writer.

Feast loads these classes by their path in ``feature_repo/feature_store.yaml``::

    online_store:
      type: orchestration.core.features.online_store.PackedSqliteOnlineStore
    batch_engine:
      type: orchestration.core.features.online_store.ArrowOnlineWriteEngine

Why: the stock SQLite store writes one row per entity *and feature*, after turning every cell
into a protobuf in Python (100 s for 100k customers, 12 min and 5.4 GB for 1M).

Layout: one table per feature view, named as Feast names it (``<project>_<view>``)::

    entity_key BLOB PRIMARY KEY   -- Feast's entity key serialization v3, byte for byte
    event_ts   INTEGER            -- epoch seconds (UTC), what the stock store keeps
    created_ts INTEGER            -- epoch seconds or NULL
    vals       BLOB               -- a serialized feast RepeatedValue: the features, schema order
    WITHOUT ROWID

The feature order is recorded in the table's own DDL (a ``/* packed-features ... */`` comment,
see ``sqlite_master.sql``), so no extra table exists next to the feature tables and a schema
change is detected: ``feast apply`` (``update``) recreates a table whose features changed.

Writes: ``ArrowOnlineWriteEngine`` is Feast's local compute engine with its output node replaced
(and its dedup skipped when the pulled rows have one per entity already): it hands each pulled
Arrow table to ``PackedSqliteOnlineStore.online_write_arrow``, which encodes keys and rows a
column at a time (``online_store_codec``) and upserts them in key order in one transaction per
view. ``FeatureStore.materialize`` still records its intervals. Writes that come
as protobufs (``push``, ``write_to_online_store``, the stock engine) go through
``online_write_batch``; a partial row there keeps the features it does not name.

Reads: ``online_read`` returns what the stock store returns (values, event time), so
``get_online_features`` and ``feast serve`` work unchanged. Vector and text search are not
supported (use the stock store for those).

To go back to the stock store: ``type: sqlite`` in feature_store.yaml (the batch engine may stay:
for a store without ``online_write_arrow`` it writes like Feast's own engine), then apply.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, Literal

import pyarrow as pa
from feast.infra.common.materialization_job import MaterializationJobStatus
from feast.infra.compute_engines.local.arrow_table_value import ArrowTableValue
from feast.infra.compute_engines.local.compute import (
    LocalComputeEngine,
    LocalComputeEngineConfig,
)
from feast.infra.compute_engines.local.feature_builder import LocalFeatureBuilder
from feast.infra.compute_engines.local.job import LocalMaterializationJob
from feast.infra.compute_engines.local.nodes import LocalDedupNode, LocalOutputNode
from feast.infra.key_encoding_utils import serialize_entity_key
from feast.infra.online_stores.helpers import compute_table_id
from feast.infra.online_stores.sqlite import SqliteOnlineStore, SqliteOnlineStoreConfig
from feast.protos.feast.types.Value_pb2 import RepeatedValue
from feast.protos.feast.types.Value_pb2 import Value as ValueProto

from orchestration.core.features.online_store_codec import (
    encode_entity_keys,
    encode_rows,
    epoch_seconds,
    key_order,
)

STORE_TYPE = "orchestration.core.features.online_store.PackedSqliteOnlineStore"
ENGINE_TYPE = "orchestration.core.features.online_store.ArrowOnlineWriteEngine"
# Rows encoded at a time by the bulk writer (bounds memory; ~100 MB per 100k rows x 25 features).
BULK_CHUNK_ROWS = 100_000
# Rows per INSERT statement of the bulk writer (4 variables each; SQLite allows 32,766).
ROWS_PER_INSERT = 250
# Entity keys per SELECT ... IN (...) on reads (below SQLite's variable limit).
READ_CHUNK_KEYS = 500
_LAYOUT = re.compile(r"/\* packed-features v1: (.*?) \*/")


class PackedSqliteOnlineStoreConfig(SqliteOnlineStoreConfig):
    """The stock SQLite config (``path``), selecting the packed layout."""

    type: Literal["orchestration.core.features.online_store.PackedSqliteOnlineStore"] = (
        "orchestration.core.features.online_store.PackedSqliteOnlineStore"
    )


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _features(table: Any) -> list[tuple[str, str]]:
    """(feature name, Feast value type name) in schema order."""
    return [(f.name, f.dtype.to_value_type().name) for f in table.features]


def _layout_comment(features: list[tuple[str, str]]) -> str:
    spec = ",".join(f"{name}:{value_type}" for name, value_type in features)
    if "*/" in spec:
        raise ValueError(f"feature names may not contain '*/': {spec}")
    return f"/* packed-features v1: {spec} */"


def _epoch(ts: datetime | None) -> int | None:
    """Epoch seconds; a naive datetime is UTC (Feast's convention)."""
    if ts is None:
        return None
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=UTC)
    return int(ts.timestamp())


def _insert_rows(conn: sqlite3.Connection, name: str, rows: list[tuple]) -> None:
    """Upsert (entity_key, event_ts, created_ts, vals) rows, ``ROWS_PER_INSERT`` a statement;
    SQLite takes a statement's rows in order, so a later duplicate still wins."""
    columns = f"insert or replace into {_quote(name)} (entity_key, event_ts, created_ts, vals)"
    whole = len(rows) - len(rows) % ROWS_PER_INSERT
    if whole:
        many = f"{columns} values " + ",".join(["(?, ?, ?, ?)"] * ROWS_PER_INSERT)
        flat = [cell for row in rows[:whole] for cell in row]
        step = 4 * ROWS_PER_INSERT
        conn.executemany(many, (flat[i : i + step] for i in range(0, len(flat), step)))
    conn.executemany(f"{columns} values (?, ?, ?, ?)", rows[whole:])


class PackedSqliteOnlineStore(SqliteOnlineStore):
    """SQLite online store keeping one row per entity and feature view (see the module doc)."""

    # -- tables -------------------------------------------------------------------------------

    def _table_name(self, config: Any, table: Any) -> str:
        versioning = config.registry.enable_online_feature_view_versioning
        return compute_table_id(config.project, table, versioning)

    @staticmethod
    def _stored_layout(conn: sqlite3.Connection, name: str) -> list[str] | None:
        """The feature names a table's rows hold, in order (None: no packed table of that name).

        Read from the schema on every call (microseconds), so a long-lived reader such as
        ``feast serve`` follows a table another process re-created.
        """
        row = conn.execute(
            "select sql from sqlite_master where type = 'table' and name = ?", (name,)
        ).fetchone()
        match = _LAYOUT.search(row[0]) if row else None
        return [item.rsplit(":", 1)[0] for item in match.group(1).split(",")] if match else None

    def _ensure_table(self, conn: sqlite3.Connection, name: str, table: Any) -> None:
        comment = _layout_comment(_features(table))
        row = conn.execute(
            "select sql from sqlite_master where type = 'table' and name = ?", (name,)
        ).fetchone()
        if row and comment in row[0]:
            return
        if row:  # another layout (the stock store's, or other features): its rows cannot be read
            conn.execute(f"drop table {_quote(name)}")
        conn.execute(
            f"create table {_quote(name)} (entity_key BLOB PRIMARY KEY, event_ts INTEGER, "
            f"created_ts INTEGER, vals BLOB {comment}) WITHOUT ROWID"
        )

    def update(
        self,
        config: Any,
        tables_to_delete: Sequence[Any],
        tables_to_keep: Sequence[Any],
        entities_to_delete: Sequence[Any],
        entities_to_keep: Sequence[Any],
        partial: bool,
    ) -> None:
        if config.online_store.vector_enabled or config.online_store.text_search_enabled:
            raise NotImplementedError(
                "the packed SQLite online store has no vector or text search; use type: sqlite"
            )
        conn = self._get_conn(config)
        with conn:
            for table in tables_to_keep:
                self._ensure_table(conn, self._table_name(config, table), table)
            for table in tables_to_delete:
                conn.execute(f"drop table if exists {_quote(self._table_name(config, table))}")

    def plan(self, config: Any, desired_registry_proto: Any) -> list[Any]:
        # The stock store plans SqliteTable objects, which would create its own layout; this
        # store creates and migrates its tables in update().
        return []

    def _writable(self, conn: sqlite3.Connection, config: Any, table: Any) -> tuple[str, list[str]]:
        name = self._table_name(config, table)
        names = [feature for feature, _ in _features(table)]
        if self._stored_layout(conn, name) != names:
            with conn:
                self._ensure_table(conn, name, table)
        return name, names

    # -- writes -------------------------------------------------------------------------------

    def online_write_arrow(self, config: Any, table: Any, data: pa.Table) -> int:
        """Upsert the rows of a pulled Arrow table (Feast's column names); returns rows written.

        SQLite's inserts are most of the cost (about 6 us a row), so: the rows go in in the
        order of their encoded keys over the whole table (B-tree appends; sorted per chunk
        only, each chunk landed all over the tree), ``ROWS_PER_INSERT`` rows per statement.
        Both together: 0.86 of the time before at 3M customers, no measurable change at 1M
        (paired runs of scripts/bench_online_store.py)."""
        conn = self._get_conn(config)
        name, _ = self._writable(conn, config, table)
        features = _features(table)
        source = table.batch_source
        chunk_rows = max(
            config.materialization_config.online_write_batch_size or 0, BULK_CHUNK_ROWS
        )
        keys = self._entity_keys(table, data, chunk_rows)
        # stable: the last of duplicate keys stays last, so it wins as it does in the stock store
        order = key_order(keys)
        with conn:
            for start in range(0, data.num_rows, chunk_rows):
                taken = order.slice(start, chunk_rows)
                batch = data.take(taken).combine_chunks().to_batches()[0]
                vals = encode_rows([(batch.column(f), t) for f, t in features])
                event = epoch_seconds(batch.column(source.timestamp_field)).tolist()
                created = (
                    epoch_seconds(batch.column(source.created_timestamp_column)).tolist()
                    if source.created_timestamp_column
                    else [None] * batch.num_rows
                )
                rows = zip(
                    keys.take(taken).to_pylist(), event, created, vals.to_pylist(), strict=True
                )
                _insert_rows(conn, name, list(rows))
        return data.num_rows

    @staticmethod
    def _entity_keys(table: Any, data: pa.Table, chunk_rows: int) -> pa.Array:
        """Feast's serialized entity key of every row, one array (encoded a chunk at a time;
        64-bit offsets, so 50M keys of 40 bytes still fit)."""
        join_keys = [(c.name, c.dtype.to_value_type().name) for c in table.entity_columns]
        chunks = [
            encode_entity_keys([(k, batch.column(k), t) for k, t in join_keys]).cast(
                pa.large_binary()
            )
            for batch in data.to_batches(max_chunksize=chunk_rows)
        ]
        return pa.concat_arrays(chunks) if chunks else pa.array([], pa.large_binary())

    def online_write_batch(
        self,
        config: Any,
        table: Any,
        data: list[tuple[Any, dict[str, ValueProto], datetime, datetime | None]],
        progress: Callable[[int], Any] | None,
    ) -> None:
        """Feast's protobuf write path, one packed row per entity."""
        conn = self._get_conn(config)
        name, names = self._writable(conn, config, table)
        version = config.entity_key_serialization_version
        with conn:
            for entity_key, values, event_ts, created_ts in data:
                key = serialize_entity_key(entity_key, entity_key_serialization_version=version)
                if not set(names) <= set(values):
                    values = {**self._read_values(conn, name, names, key), **values}
                vals = RepeatedValue(val=[values.get(f, ValueProto()) for f in names])
                conn.execute(
                    f"insert or replace into {_quote(name)} (entity_key, event_ts, created_ts, "
                    "vals) values (?, ?, ?, ?)",
                    (key, _epoch(event_ts), _epoch(created_ts), vals.SerializeToString()),
                )
                if progress:
                    progress(1)

    # -- reads --------------------------------------------------------------------------------

    @staticmethod
    def _read_values(
        conn: sqlite3.Connection, name: str, names: list[str], key: bytes
    ) -> dict[str, ValueProto]:
        row = conn.execute(
            f"select vals from {_quote(name)} where entity_key = ?", (key,)
        ).fetchone()
        return dict(zip(names, RepeatedValue.FromString(row[0]).val, strict=True)) if row else {}

    def online_read(
        self,
        config: Any,
        table: Any,
        entity_keys: list[Any],
        requested_features: list[str] | None = None,
    ) -> list[tuple[datetime | None, dict[str, ValueProto] | None]]:
        conn = self._get_conn(config)
        name = self._table_name(config, table)
        names = self._stored_layout(conn, name)
        if names is None:
            raise sqlite3.OperationalError(
                f"no packed online table {name!r}: run feast apply (and materialize) first"
            )
        version = config.entity_key_serialization_version
        keys = [
            serialize_entity_key(k, entity_key_serialization_version=version) for k in entity_keys
        ]
        unique = list(dict.fromkeys(keys))
        found: dict[bytes, tuple[int, bytes]] = {}
        for start in range(0, len(unique), READ_CHUNK_KEYS):
            chunk = unique[start : start + READ_CHUNK_KEYS]
            cursor = conn.execute(
                f"select entity_key, event_ts, vals from {_quote(name)} "
                f"where entity_key in ({','.join('?' * len(chunk))})",
                chunk,
            )
            for key, event_ts, vals in cursor:
                found[key] = (event_ts, vals)
        result: list[tuple[datetime | None, dict[str, ValueProto] | None]] = []
        for key in keys:
            row = found.get(key)
            if row is None:
                result.append((None, None))
                continue
            values = RepeatedValue.FromString(row[1]).val
            result.append(
                (datetime.fromtimestamp(row[0], tz=UTC), dict(zip(names, values, strict=True)))
            )
        return result

    def retrieve_online_documents(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError("the packed SQLite online store has no vector search")

    def retrieve_online_documents_v2(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError("the packed SQLite online store has no vector or text search")


# -- the batch engine: Feast's local engine, its output node handing Arrow to the store ----------


class ArrowOnlineWriteEngineConfig(LocalComputeEngineConfig):
    """Feast's local compute engine config, selecting the Arrow output node."""

    type: Literal["orchestration.core.features.online_store.ArrowOnlineWriteEngine"] = (  # type: ignore[assignment]
        "orchestration.core.features.online_store.ArrowOnlineWriteEngine"
    )


class _ArrowOutputNode(LocalOutputNode):
    """Writes the pulled table through ``online_write_arrow`` when the store has one."""

    def execute(self, context: Any) -> ArrowTableValue:
        store = context.online_store
        if not (self.feature_view.online and hasattr(store, "online_write_arrow")):
            return super().execute(context)
        table = self.get_single_table(context).data
        output = ArrowTableValue(data=table)
        context.node_outputs[self.name] = output
        if table.num_rows == 0:
            return output
        store.online_write_arrow(context.repo_config, self.feature_view, table)
        if self.feature_view.offline:
            context.offline_store.offline_write_batch(
                config=context.repo_config,
                feature_view=self.feature_view,
                table=table,
                progress=lambda _: None,
            )
        return output


class _ArrowDedupNode(LocalDedupNode):
    """Feast's dedup (latest row per join key, through pandas), skipped when the join keys are
    already unique, as Feast's pull of the latest rows leaves them: the pandas round trip cost
    ~19 s of the 10M-customer load and changed nothing."""

    def execute(self, context: Any) -> ArrowTableValue:
        table = self.get_single_table(context).data
        keys = self.column_info.join_keys_columns
        if keys and len(table.select(keys).group_by(keys).aggregate([])) < table.num_rows:
            return super().execute(context)
        output = ArrowTableValue(data=table)
        context.node_outputs[self.name] = output
        return output


class _ArrowFeatureBuilder(LocalFeatureBuilder):
    def build_dedup_node(self, view: Any, input_node: Any) -> _ArrowDedupNode:
        column_info = self.get_column_info(view)
        node = _ArrowDedupNode("dedup", column_info, self.backend, inputs=[input_node])
        self.nodes.append(node)
        return node

    def build_output_nodes(self, view: Any, input_node: Any) -> _ArrowOutputNode:
        node = _ArrowOutputNode("output", self.dag_root.view, inputs=[input_node])
        self.nodes.append(node)
        return node


class ArrowOnlineWriteEngine(LocalComputeEngine):
    """Feast's local compute engine whose materialization writes Arrow tables to the store."""

    def _materialize_one(self, registry: Any, task: Any, **kwargs: Any) -> LocalMaterializationJob:
        job_id = f"{task.feature_view.name}-{task.start_time}-{task.end_time}"
        context = self.get_execution_context(registry, task)
        try:
            builder = _ArrowFeatureBuilder(registry, task, backend=self._get_backend(context))
            builder.build().execute(context)
        except Exception as error:  # reported through the job, as Feast's own engine does
            return LocalMaterializationJob(
                job_id=job_id, status=MaterializationJobStatus.ERROR, error=error
            )
        return LocalMaterializationJob(job_id=job_id, status=MaterializationJobStatus.SUCCEEDED)
