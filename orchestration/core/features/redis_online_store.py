"""Feast's Redis online store with a bulk writer: whole Arrow batches, pipelined, no protobufs.

Selected by ``CAMPAIGN_ONLINE_STORE=redis`` (``open_feature_store`` builds the config from
``CAMPAIGN_REDIS_URL``), or in feature_store.yaml::

    online_store:
      type: orchestration.core.features.redis_online_store.BulkRedisOnlineStore
      connection_string: 127.0.0.1:6379,db=0
    batch_engine:
      type: orchestration.core.features.online_store.ArrowOnlineWriteEngine

The layout is Feast's own, documented as its public Redis format (docs/specs/
online_store_format.md), so the stock ``RedisOnlineStore`` reads what this writes and this class
inherits every read, delete and teardown unchanged: one hash per (project, entity key), its key
the serialized entity key (v3) followed by the project name, with a field ``mmh3("<view>:<feature>")``
per feature holding the serialized ``Value`` (empty for a null) and ``_ts:<view>`` holding the
event time as a serialized ``google.protobuf.Timestamp``.

Why: the stock writer turns every cell into a protobuf in Python and queues one HSET per entity
with a dict per row. ``online_write_arrow`` (called by ``ArrowOnlineWriteEngine``) encodes keys,
values and timestamps a column at a time (``online_store_codec``) and sends the HSETs in
redis-py pipelines of ``PIPELINE_ROWS`` entities. It keeps the stock writer's rule that an
older event time never overwrites a newer one (unless ``skip_dedup``): it reads the stored
``_ts:<view>`` of the batch's entities first (one pipelined HMGET) and, of several rows for one
entity, writes the newest (the first of equal ones). ``key_ttl_seconds`` is honoured as well.
"""

from __future__ import annotations

from itertools import chain
from typing import Any, Literal
from urllib.parse import unquote, urlsplit

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from feast.infra.online_stores.helpers import _mmh3
from feast.infra.online_stores.redis import (
    RedisOnlineStore,
    RedisOnlineStoreConfig,
    _versioned_fv_name,
)
from google.protobuf.timestamp_pb2 import Timestamp

from orchestration.core.features.online_store_codec import (
    encode_entity_keys,
    encode_timestamps,
    encode_values,
    epoch_micros,
)

STORE_TYPE = "orchestration.core.features.redis_online_store.BulkRedisOnlineStore"
# Rows encoded at a time (bounds memory, as in the packed SQLite store).
BULK_CHUNK_ROWS = 100_000
# Entities per pipeline round trip (~1 MB of commands per 1k entities x 25 features).
PIPELINE_ROWS = 5_000


def feast_connection_string(url: str) -> str:
    """Feast's ``host:port,db=N,...`` connection string of a ``redis://`` / ``rediss://`` URL."""
    parts = urlsplit(url)
    items = [f"{parts.hostname}:{parts.port or 6379}"]
    db = parts.path.strip("/")
    if db:
        items.append(f"db={int(db)}")
    for name, value in (("username", parts.username), ("password", parts.password)):
        if value:
            value = unquote(value)
            if "," in value:
                raise ValueError(
                    f"CAMPAIGN_REDIS_URL: the Redis {name} may not contain ',' (Feast's "
                    "connection string separates its parameters with commas)"
                )
            items.append(f"{name}={value}")
    if parts.scheme == "rediss":
        items.append("ssl=true")
    return ",".join(items)


class BulkRedisOnlineStoreConfig(RedisOnlineStoreConfig):
    """The stock Redis config (``connection_string``, ``key_ttl_seconds``, ``skip_dedup``, ...)."""

    type: Literal["orchestration.core.features.redis_online_store.BulkRedisOnlineStore"] = (  # type: ignore[assignment]
        "orchestration.core.features.redis_online_store.BulkRedisOnlineStore"
    )


def _newest_per_key(keys: pa.Array, micros: np.ndarray) -> np.ndarray:
    """Row indices keeping one row per key: the newest, the first of equal ones (stock rule)."""
    order = pa.table({"k": keys, "t": micros, "i": np.arange(len(micros))}).sort_by(
        [("k", "ascending"), ("t", "descending"), ("i", "ascending")]
    )
    sorted_keys = order.column("k").combine_chunks()
    first = np.ones(len(sorted_keys), dtype=bool)
    if len(sorted_keys) > 1:
        first[1:] = np.asarray(
            pc.not_equal(sorted_keys.slice(1), sorted_keys.slice(0, len(sorted_keys) - 1))
        )
    return np.sort(np.asarray(order.column("i"))[first])


def _stored_nanos(raw: list[bytes | None]) -> np.ndarray:
    """Stored ``_ts`` Timestamps as epoch nanoseconds (0: none), as the stock writer compares."""
    out = np.zeros(len(raw), dtype=np.int64)
    for i, value in enumerate(raw):
        if value:
            stamp = Timestamp.FromString(value)
            out[i] = stamp.seconds * 1_000_000_000 + stamp.nanos
    return out


class BulkRedisOnlineStore(RedisOnlineStore):
    """Feast's Redis online store with ``online_write_arrow`` (see the module doc)."""

    def online_write_arrow(self, config: Any, table: Any, data: pa.Table) -> int:
        """Write the rows of a pulled Arrow table (Feast's column names); returns rows written."""
        store_config = config.online_store
        client = self._get_client(store_config)
        view = _versioned_fv_name(table, config)
        features = [(f.name, f.dtype.to_value_type().name) for f in table.features]
        fields = [_mmh3(f"{view}:{name}") for name, _ in features]
        ts_field = f"_ts:{view}".encode()
        join_keys = [(c.name, c.dtype.to_value_type().name) for c in table.entity_columns]
        project = pa.scalar(config.project.encode("utf8"), pa.binary())
        batch_size = config.materialization_config.online_write_batch_size or 0
        written = 0
        for batch in data.to_batches(max_chunksize=max(batch_size, BULK_CHUNK_ROWS)):
            keys = encode_entity_keys([(k, batch.column(k), t) for k, t in join_keys])
            keys = pc.binary_join_element_wise(keys, project, pa.scalar(b"", pa.binary()))
            micros = epoch_micros(batch.column(table.batch_source.timestamp_field))
            rows = np.arange(batch.num_rows)
            if not store_config.skip_dedup:
                rows = _newest_per_key(keys, micros)
                rows = rows[
                    self._newer_than_stored(client, keys.take(rows), micros[rows], ts_field)
                ]
            if len(rows) == 0:
                continue
            columns = [encode_timestamps(micros[rows]).to_pylist()]
            columns += [
                encode_values(batch.column(name).take(rows), value_type).to_pylist()
                for name, value_type in features
            ]
            names = [ts_field, *fields]
            self._send(client, keys.take(rows).to_pylist(), names, columns, store_config)
            written += len(rows)
        return written

    @staticmethod
    def _newer_than_stored(
        client: Any, keys: pa.Array, micros: np.ndarray, ts_field: bytes
    ) -> np.ndarray:
        """Which rows are newer than what the store holds for their entity (none held: all)."""
        stored: list[bytes | None] = []
        key_list = keys.to_pylist()
        for start in range(0, len(key_list), PIPELINE_ROWS):
            with client.pipeline(transaction=False) as pipe:
                for key in key_list[start : start + PIPELINE_ROWS]:
                    pipe.hget(key, ts_field)
                stored.extend(pipe.execute())
        previous = _stored_nanos(stored)
        return (previous == 0) | (micros * 1000 > previous)

    @staticmethod
    def _send(
        client: Any,
        keys: list[bytes],
        names: list[bytes],
        columns: list[list[bytes]],
        store_config: Any,
    ) -> None:
        """One HSET per entity (the timestamp field first, then the features in schema order)."""
        ttl = store_config.key_ttl_seconds
        for start in range(0, len(keys), PIPELINE_ROWS):
            stop = min(start + PIPELINE_ROWS, len(keys))
            rows = zip(keys[start:stop], *(column[start:stop] for column in columns), strict=True)
            with client.pipeline(transaction=False) as pipe:
                for key, *values in rows:
                    pipe.execute_command(
                        "HSET", key, *chain.from_iterable(zip(names, values, strict=True))
                    )
                    if ttl:
                        pipe.expire(key, ttl)
                pipe.execute()
