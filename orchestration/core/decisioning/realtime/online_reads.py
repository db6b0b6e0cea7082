"""Online features for a few customers, read in-process from the Feast store the service holds.

Two readers give the same frame (``FeatureReader.read``):

* ``FeastFeatureReader``: ``FeatureStore.get_online_features`` on the feature service, then
  ``to_dict``. The reference.
* ``DirectFeatureReader``: the online store's own read path (``OnlineStore.online_read``, one call
  per feature view of the service: the packed SQLite store's one ``SELECT``, Redis's ``HMGET``),
  decoded as Feast decodes it (``feast_value_type_to_python_type``; event times as the
  ``Timestamp`` seconds of the response). It skips what ``get_online_features`` does per call
  on top (registry lookups, request validation, the response protobuf and its conversion back
  to Python): ~0.1 ms a customer instead of ~1 ms. Feature views, features and the entity are
  resolved once, when the reader is built; the service builds a new reader when the registry
  changes. tests/features/test_direct_online_reads.py compares the two on both stores.

``feature_reader`` picks the direct reader unless the service uses what it does not reproduce
(aliased views, join-key maps, on-demand views, several join keys): then Feast's.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

import numpy as np
import pandas as pd

# Value fields returned as they are (what feast_value_type_to_python_type returns for them).
_SCALARS = frozenset({"double_val", "float_val", "int64_val", "int32_val", "bool_val"})


class FeatureReader(Protocol):
    columns: list[str]

    def read(self, customer_ids: Sequence[int]) -> pd.DataFrame:
        """customer_id, the feature columns and ``feature_timestamp`` (the oldest of the row's
        feature timestamps, NaT when any feature is missing), in the order asked."""
        ...


def response_frame(
    response: dict[str, list], columns: list[str], customer_ids: Sequence[int]
) -> pd.DataFrame:
    """The reader's frame from a ``to_dict(include_event_timestamps=True)``-shaped response."""
    ids = np.asarray(customer_ids, dtype=np.int64)
    shape = (len(columns), len(ids))
    try:  # numbers (None: missing) straight into one float64 block, as feature_matrix reads them
        values = np.array([response[c] for c in columns], dtype=np.float64).reshape(shape)
        data: dict[str, Any] = dict(zip(columns, values, strict=True))
    except (TypeError, ValueError):  # not all numbers: keep the values as they are
        data = {c: response[c] for c in columns}
    seconds = np.array([response[f"{c}__ts"] for c in columns], dtype=float).reshape(shape)
    seconds[~(seconds > 0)] = np.nan  # 0 (or none): no value for this feature
    oldest = seconds.min(axis=0) if len(columns) else np.full(len(ids), np.nan)
    data["customer_id"] = ids
    data["feature_timestamp"] = pd.to_datetime(oldest, unit="s", utc=True)
    return pd.DataFrame(data)  # one constructor call: a third cheaper than adding columns


def _service_columns(service: Any) -> list[str]:
    return [f.name for projection in service.feature_view_projections for f in projection.features]


class FeastFeatureReader:
    """Online reads through ``FeatureStore.get_online_features`` (one per service)."""

    def __init__(self, store: Any, service: str):
        self.store = store
        self._lock = threading.Lock()  # the requests' worker and the health check share it
        self.service = store.get_feature_service(service)
        self.columns = _service_columns(self.service)

    def read(self, customer_ids: Sequence[int]) -> pd.DataFrame:
        with self._lock:
            response = self.store.get_online_features(
                features=self.service, entity_rows=[{"customer_id": int(c)} for c in customer_ids]
            ).to_dict(include_event_timestamps=True)
        return response_frame(response, self.columns, customer_ids)


class DirectFeatureReader:
    """Online reads through the online store's ``online_read`` (see the module doc)."""

    def __init__(self, store: Any, service: str):
        from feast.infra.online_stores.helpers import get_online_store_from_config

        self.store = store
        self._lock = threading.Lock()
        self.service = store.get_feature_service(service)
        self.columns = _service_columns(self.service)
        self._config = store.config
        self._online = get_online_store_from_config(store.config.online_store)
        self._views = []  # (view, [(feature name, value type)])
        join_keys: set[tuple[str, Any]] = set()
        for projection in self.service.feature_view_projections:
            view = store.get_feature_view(projection.name)
            wanted = {f.name for f in projection.features}
            features = [
                (f.name, f.dtype.to_value_type()) for f in view.features if f.name in wanted
            ]
            self._views.append((view, features))
            join_keys |= {(c.name, c.dtype.to_value_type()) for c in view.entity_columns}
        if len(join_keys) != 1:
            raise ValueError(f"the direct reader reads one join key, the service has {join_keys}")
        self._join_key, self._key_type = next(iter(join_keys))

    @classmethod
    def supports(cls, store: Any, service: str) -> bool:
        """Whether the service is one this reader reproduces exactly (else: Feast's reader)."""
        fs = store.get_feature_service(service)
        for projection in fs.feature_view_projections:
            if projection.name_alias or projection.join_key_map:
                return False
            try:
                view = store.get_feature_view(projection.name)
            except Exception:  # noqa: BLE001 - an on-demand view, or none: Feast's reader
                return False
            if len(view.entity_columns) != 1:
                return False
        return True

    def _entity_keys(self, customer_ids: Sequence[int]) -> list[Any]:
        from feast.protos.feast.types.EntityKey_pb2 import EntityKey
        from feast.type_map import python_values_to_proto_values

        values = python_values_to_proto_values([int(c) for c in customer_ids], self._key_type)
        return [EntityKey(join_keys=[self._join_key], entity_values=[v]) for v in values]

    def read(self, customer_ids: Sequence[int]) -> pd.DataFrame:
        from feast.type_map import feast_value_type_to_python_type

        n = len(customer_ids)
        keys = self._entity_keys(customer_ids)
        response: dict[str, list] = {}
        with self._lock:
            rows_per_view = [
                self._online.online_read(self._config, view, keys, [f for f, _ in features])
                for view, features in self._views
            ]
        for (_, features), rows in zip(self._views, rows_per_view, strict=True):
            # every feature of a view carries the row's event time, found or not (Feast's response)
            seconds = [_seconds(ts) for ts, _ in rows]
            for name, value_type in features:
                column: list[Any] = [None] * n
                for i, (_, values) in enumerate(rows):
                    value = values.get(name) if values is not None else None
                    kind = value.WhichOneof("val") if value is not None else None
                    if kind in _SCALARS:
                        column[i] = getattr(value, kind)
                    elif kind is not None:
                        column[i] = feast_value_type_to_python_type(value, value_type)
                response[name] = column
                response[f"{name}__ts"] = seconds
        return response_frame(response, self.columns, customer_ids)


def _seconds(ts: datetime | None) -> int:
    """``Timestamp.FromDatetime(ts).seconds`` (a naive time is UTC), 0 for none."""
    if ts is None:
        return 0
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=UTC)
    return int(ts.timestamp() // 1)


def feature_reader(store: Any, service: str) -> FeatureReader:
    """The direct reader when it reproduces the service's reads, else Feast's own."""
    if DirectFeatureReader.supports(store, service):
        return DirectFeatureReader(store, service)
    return FeastFeatureReader(store, service)
