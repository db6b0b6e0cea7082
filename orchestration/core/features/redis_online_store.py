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

Why: the stock writer turns every cell into a protobuf in Python, then per entity queues an HMGET
of the stored event time and an HSET built from a dict: two commands, each through redis-py's
per-command Python layers. ``online_write_arrow`` (called by ``ArrowOnlineWriteEngine``) encodes
keys, values and timestamps a column at a time (``online_store_codec``) and sends them in
redis-py pipelines of one small Lua script call per ``SCRIPT_KEYS`` entities, which HSETs each
entity's fields in the same order the stock writer does. The script keeps the stock rule that
an older event time never overwrites a newer one (``skip_dedup`` turns it off), reading and
writing in one atomic step, and honours ``key_ttl_seconds``. On Redis Cluster (a script may
only touch one hash slot) it runs one entity per call. While a script runs Redis serves nobody
else: ``SCRIPT_KEYS`` keeps that to a millisecond or two.
"""

from __future__ import annotations

import time
from typing import Any, Literal
from urllib.parse import unquote, urlsplit

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from feast.infra.online_stores.helpers import _mmh3
from feast.infra.online_stores.redis import (
    RedisOnlineStore,
    RedisOnlineStoreConfig,
    RedisType,
    _versioned_fv_name,
)

from orchestration.core.features.online_store_codec import (
    encode_entity_keys,
    encode_timestamps,
    encode_values,
    epoch_micros,
)

STORE_TYPE = "orchestration.core.features.redis_online_store.BulkRedisOnlineStore"
# A hash per project beside the entity hashes: view name -> when its last bulk write ended (epoch
# ns). Readers elsewhere (the decision API) see a rematerialization without the writer's
# registry. Its key does not end in the project's name, so Feast's scans of entity hashes
# (``<entity key prefix>*<project>``) never match it.
MATERIALIZATIONS_KEY = "_materializations:{project}:"
# Rows encoded at a time (bounds memory, as in the packed SQLite store).
BULK_CHUNK_ROWS = 100_000
# Entities per call of the write script (Redis runs one script at a time: ~1-2 ms of other
# clients' waiting per call) and per pipeline round trip.
SCRIPT_KEYS = 500
PIPELINE_ROWS = 10_000


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


def _materializations_key(project: str) -> str:
    return MATERIALIZATIONS_KEY.format(project=project)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class BulkRedisOnlineStoreConfig(RedisOnlineStoreConfig):
    """The stock Redis config (``connection_string``, ``key_ttl_seconds``, ``skip_dedup``, ...)."""

    type: Literal["orchestration.core.features.redis_online_store.BulkRedisOnlineStore"] = (  # type: ignore[assignment]
        "orchestration.core.features.redis_online_store.BulkRedisOnlineStore"
    )


# One call writes many entities: KEYS are their hashes; ARGV = m, the m field names (``_ts:<view>``
# first), the key TTL (0: none), 1 to keep newer stored rows (0: skip_dedup), then per key its
# event time (seconds, nanos) and its m values. Like the stock writer, a row is skipped when the
# hash already holds an event time at or after its own; rows are applied in order, so of several
# rows for one entity the newest (the first of equal ones) stays. Unlike the stock writer the
# read and the write are one atomic step.
_WRITE_SCRIPT = """
local function stored_time(raw)
  local seconds, nanos, i = 0, 0, 1
  while i <= #raw do
    local tag = string.byte(raw, i)
    local value, scale = 0, 1
    i = i + 1
    repeat
      local byte = string.byte(raw, i)
      i = i + 1
      value = value + (byte % 128) * scale
      scale = scale * 128
    until byte < 128
    if tag == 8 then seconds = value elseif tag == 16 then nanos = value end
  end
  return seconds, nanos
end
local m = tonumber(ARGV[1])
local ttl = tonumber(ARGV[m + 2])
local keep_newer = ARGV[m + 3] == '1'
local written = 0
local fields = {}
for i, key in ipairs(KEYS) do
  local at = m + 4 + (i - 1) * (m + 2)
  local seconds, nanos = tonumber(ARGV[at]), tonumber(ARGV[at + 1])
  local write = true
  if keep_newer then
    local raw = redis.call('HGET', key, ARGV[2])
    if raw then
      local old_seconds, old_nanos = stored_time(raw)
      if (old_seconds ~= 0 or old_nanos ~= 0) and (seconds < old_seconds
          or (seconds == old_seconds and nanos <= old_nanos)) then
        write = false
      end
    end
  end
  if write then
    for j = 1, m do
      fields[2 * j - 1] = ARGV[1 + j]
      fields[2 * j] = ARGV[at + 1 + j]
    end
    redis.call('HSET', key, unpack(fields))
    if ttl > 0 then redis.call('EXPIRE', key, ttl) end
    written = written + 1
  end
end
return written
"""


class BulkRedisOnlineStore(RedisOnlineStore):
    """Feast's Redis online store with ``online_write_arrow`` (see the module doc)."""

    def online_write_arrow(self, config: Any, table: Any, data: pa.Table) -> int:
        """Write the rows of a pulled Arrow table (Feast's column names); returns rows written."""
        store_config = config.online_store
        client = self._get_client(store_config)
        view = _versioned_fv_name(table, config)
        features = [(f.name, f.dtype.to_value_type().name) for f in table.features]
        names = [f"_ts:{view}".encode(), *(_mmh3(f"{view}:{name}") for name, _ in features)]
        join_keys = [(c.name, c.dtype.to_value_type().name) for c in table.entity_columns]
        project = pa.scalar(config.project.encode("utf8"), pa.binary())
        batch_size = config.materialization_config.online_write_batch_size or 0
        # Redis Cluster runs a script only on keys of one slot: one entity per call there.
        per_call = 1 if store_config.redis_type == RedisType.redis_cluster else SCRIPT_KEYS
        header = [len(names), *names, store_config.key_ttl_seconds or 0]
        header.append(0 if store_config.skip_dedup else 1)
        script = client.register_script(_WRITE_SCRIPT)
        written = 0
        for batch in data.to_batches(max_chunksize=max(batch_size, BULK_CHUNK_ROWS)):
            keys = encode_entity_keys([(k, batch.column(k), t) for k, t in join_keys])
            keys = pc.binary_join_element_wise(keys, project, pa.scalar(b"", pa.binary()))
            micros = epoch_micros(batch.column(table.batch_source.timestamp_field))
            seconds = np.floor_divide(micros, 1_000_000)
            # One row of script arguments per entity: seconds, nanos, then the field values.
            rows = np.empty((batch.num_rows, len(names) + 2), dtype=object)
            rows[:, 0] = seconds.tolist()
            rows[:, 1] = ((micros - seconds * 1_000_000) * 1000).tolist()
            rows[:, 2] = encode_timestamps(micros).to_pylist()
            for j, (name, value_type) in enumerate(features, start=3):
                rows[:, j] = encode_values(batch.column(name), value_type).to_pylist()
            written += self._send(client, script, keys.to_pylist(), header, rows, per_call)
        client.hset(_materializations_key(config.project), view, str(time.time_ns()))
        return written

    def materializations(self, config: Any) -> dict[str, str]:
        """Per feature view, when its last bulk write ended (epoch ns, as text): changes with
        every materialization into this Redis, whichever registry recorded it."""
        client = self._get_client(config.online_store)
        stored = client.hgetall(_materializations_key(config.project))
        return {_text(k): _text(v) for k, v in sorted(stored.items())}

    @staticmethod
    def _send(
        client: Any, script: Any, keys: list[bytes], header: list, rows: np.ndarray, per_call: int
    ) -> int:
        """The write script over ``per_call`` entities a call, ``PIPELINE_ROWS`` entities a round
        trip; returns the entities written."""
        written = 0
        for start in range(0, len(keys), PIPELINE_ROWS):
            stop = min(start + PIPELINE_ROWS, len(keys))
            with client.pipeline(transaction=False) as pipe:
                for first in range(start, stop, per_call):
                    last = min(first + per_call, stop)
                    args = header + rows[first:last].ravel().tolist()
                    script(keys=keys[first:last], args=args, client=pipe)
                written += sum(pipe.execute())
        return written
