"""The packed online store (orchestration/core/features/online_store.py) against Feast's stock
SQLite store: the same feature tables materialized into both must read back identically.

Built once per module from the small feature world of ``online_world.py`` (every scalar feature
type, nulls, NaNs, customers missing from one view or from all).
"""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest

from orchestration.settings import Settings
from tests.conftest import point_at
from tests.features.online_world import (
    EXTRAS,
    IDS,
    MISSING,
    N_CUSTOMERS,
    NEWEST,
    NO_CONSENT,
    ONLY_OLDER_SNAPSHOT,
    SNAPSHOTS,
    build_world,
    feature_refs,
    feature_store,
    materialize_all,
    read,
)


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    """(stock store, packed store, settings, views), both materialized from the same tables."""
    import orchestration.core.features.online_store as packed

    data_dir = tmp_path_factory.mktemp("online_parity") / "data"
    with pytest.MonkeyPatch.context() as mp:
        point_at(mp, data_dir)
        mp.setattr(packed, "BULK_CHUNK_ROWS", 50)  # the bulk writer's chunking is exercised too
        mp.setattr(packed, "ROWS_PER_INSERT", 7)  # and its multi-row statements (and the rest)
        settings = Settings.from_env()
        world = build_world(settings)
        stock = feature_store(settings, data_dir / "feast_stock", {"type": "sqlite"}, "local")
        mine = feature_store(
            settings, settings.feast_dir, {"type": packed.STORE_TYPE}, {"type": packed.ENGINE_TYPE}
        )
        for store in (stock, mine):
            store.apply([world["customer"], *world["services"], *world["views"].values()])
            materialize_all(store)
        yield {
            "stock": stock,
            "packed": mine,
            "settings": settings,
            "views": world["views"],
            "customer": world["customer"],
        }


def test_online_features_match_the_stock_store(stores):
    ids = [*IDS.tolist(), MISSING, int(IDS[0])]  # every entity, a missing one, a repeated one
    refs = feature_refs(stores["views"])
    stock = read(stores["stock"], refs, ids)
    packed = read(stores["packed"], refs, ids)
    assert packed.proto == stock.proto  # values, statuses and event timestamps, all of them
    got = packed.to_dict(include_event_timestamps=True)
    assert got == stock.to_dict(include_event_timestamps=True)

    # the comparison covered what it is meant to cover
    assert len(got["customer_id"]) == N_CUSTOMERS + 2
    assert all(len(got[r.replace(":", "__")]) == len(ids) for r in refs)
    missing_row = ids.index(MISSING)
    assert all(got[r.replace(":", "__")][missing_row] is None for r in refs)
    for ref in refs:  # nulls in every feature column, values too
        column = got[ref.replace(":", "__")][:N_CUSTOMERS]
        assert any(v is None for v in column) and any(v is not None for v in column), ref
    assert any(isinstance(v, bool) for v in got["customer_extras__is_flagged"])
    assert float("inf") in got["customer_rfm__days_since_last_order"]
    older = ids.index(next(iter(ONLY_OLDER_SNAPSHOT)))
    stamps = got["customer_engagement__count_opens_30d__ts"]
    assert stamps[older] == int(SNAPSHOTS[0].timestamp()) and stamps[0] == int(NEWEST.timestamp())
    no_consent = ids.index(next(iter(NO_CONSENT)))
    assert got["customer_consent__is_email_opted_in"][no_consent] is None


def test_feature_service_reads_match(stores):
    service = stores["stock"].get_feature_service("uplift_model_v1")
    ids = [int(c) for c in IDS[::7]] + [MISSING]
    stock = read(stores["stock"], service, ids)
    packed = read(stores["packed"], stores["packed"].get_feature_service("uplift_model_v1"), ids)
    assert packed.proto == stock.proto


def _rows(db: Path, table: str, columns: str) -> list[tuple]:
    with sqlite3.connect(db) as con:
        return con.execute(f'select {columns} from "{table}"').fetchall()


def test_entity_keys_and_event_ts_match_feast(stores):
    from feast.infra.key_encoding_utils import serialize_entity_key
    from feast.protos.feast.types.EntityKey_pb2 import EntityKey
    from feast.protos.feast.types.Value_pb2 import RepeatedValue, Value

    packed_db = Path(stores["packed"].config.online_store.path)
    stock_db = Path(stores["stock"].config.online_store.path)
    with sqlite3.connect(packed_db) as con:
        tables = {r[0] for r in con.execute("select name from sqlite_master where type='table'")}
    assert tables == {f"campaign_features_{v}" for v in stores["views"]}  # nothing else in the file
    expected = {
        serialize_entity_key(
            EntityKey(join_keys=["customer_id"], entity_values=[Value(int64_val=int(c))]),
            entity_key_serialization_version=3,
        ): int(c)
        for c in IDS.tolist()
    }
    for view in stores["views"]:
        table = f"campaign_features_{view}"
        rows = _rows(packed_db, table, "entity_key, event_ts, typeof(event_ts), vals")
        stock = dict(_rows(stock_db, table, "distinct entity_key, event_ts"))
        assert {key: ts for key, ts, _, _ in rows} == stock  # same keys, same epoch seconds
        assert set(stock) <= set(expected)
        assert {kind for _, _, kind, _ in rows} == {"integer"}
        n_features = len(stores["views"][view].features)
        for *_, vals in rows:  # a canonical RepeatedValue, one Value per feature
            decoded = RepeatedValue.FromString(vals)
            assert len(decoded.val) == n_features and decoded.SerializeToString() == vals
    assert len(_rows(packed_db, "campaign_features_customer_consent", "entity_key")) == (
        N_CUSTOMERS - len(NO_CONSENT)
    )


def test_materialize_records_its_intervals(stores):
    for view in stores["views"]:
        stock = stores["stock"].get_feature_view(view).materialization_intervals
        packed = stores["packed"].get_feature_view(view).materialization_intervals
        assert packed and packed == stock


def test_protobuf_writes_match_including_partial_rows(stores):
    """push / write_to_online_store go through online_write_batch, not the Arrow writer."""
    import pandas as pd
    from feast.infra.online_stores.sqlite import SqliteOnlineStore
    from feast.protos.feast.types.EntityKey_pb2 import EntityKey
    from feast.protos.feast.types.Value_pb2 import Value

    from orchestration.core.features.online_store import PackedSqliteOnlineStore

    new_ids = [10**9 + i for i in range(5)]
    at = NEWEST + timedelta(hours=3)
    frame = pd.DataFrame(
        {
            "customer_id": new_ids,
            "is_flagged": [True, False, None, True, False],
            "score_f32": [1.5, None, 0.25, -3.0, 7.0],
            "rank_i32": [1, -2, 3, -(2**31), 2**31 - 1],
            "label": ["a", None, "c", "", "é"],
            "event_timestamp": [at] * 5,
        }
    )
    partial = [
        (
            EntityKey(join_keys=["customer_id"], entity_values=[Value(int64_val=int(IDS[1]))]),
            {"rank_i32": Value(int32_val=-7)},
            at,
            None,
        )
    ]
    view = stores["views"][EXTRAS]
    for name, cls in (("stock", SqliteOnlineStore), ("packed", PackedSqliteOnlineStore)):
        stores[name].write_to_online_store(EXTRAS, frame)
        cls().online_write_batch(stores[name].config, view, partial, None)
    refs = feature_refs({EXTRAS: view})
    assert read(stores["packed"], refs, new_ids).proto == read(stores["stock"], refs, new_ids).proto
    # A partial row: the stock store then holds two event times for one entity and returns either
    # of them, so only the values are compared.
    got = read(stores["packed"], refs, [int(IDS[1])]).to_dict()
    assert got == read(stores["stock"], refs, [int(IDS[1])]).to_dict()
    assert got["customer_extras__rank_i32"] == [-7]
    assert got["customer_extras__score_f32"] != [None]  # the partial row kept its other values


def test_online_freshness_gate_reads_the_packed_store(stores):
    """The project's default store is the packed one, and the gate (and the e2e drill's SQL that
    ages every table by three days) work on it."""
    from orchestration.core.features.feast_store import open_feature_store
    from orchestration.core.features.online_freshness import measure_online_freshness
    from orchestration.core.features.online_store import STORE_TYPE

    settings = stores["settings"]
    assert open_feature_store(settings).config.online_store.type == STORE_TYPE
    ids = np.array([*IDS.tolist(), MISSING])
    now = NEWEST + timedelta(hours=2)
    fresh = measure_online_freshness(settings, ids, window_hours=25, sample_size=10_000, now=now)
    # stale: the missing customer, those without consent, and those whose engagement is 26 h old
    assert fresh.sampled == len(ids)
    assert fresh.missing == 1 + len(NO_CONSENT)
    assert fresh.stale == 1 + len(NO_CONSENT) + len(ONLY_OLDER_SNAPSHOT)
    db = settings.feast_dir / "online_store.db"
    shift = 3 * 86400
    with sqlite3.connect(db) as con:  # exactly what tests/e2e/test_pipeline.py runs
        names = [r[0] for r in con.execute("select name from sqlite_master where type = 'table'")]
        for table in names:
            con.execute(f'update "{table}" set event_ts = event_ts - {shift}')
    try:
        aged = measure_online_freshness(settings, ids, window_hours=25, sample_size=10_000, now=now)
        assert aged.stale_share == 1.0
        assert aged.oldest_age_hours == pytest.approx(2 + 24 + 72)
    finally:
        with sqlite3.connect(db) as con:
            for table in names:
                con.execute(f'update "{table}" set event_ts = event_ts + {shift}')


@pytest.mark.parametrize(
    ("chunk_rows", "rows_per_insert"),
    [(50, 250), (1000, 201)],  # 64-row chunks (the batch size wins); one chunk, one statement
)
def test_the_bulk_writer_keeps_the_last_of_a_key_written_twice_rows_apart(
    stores, tmp_path, monkeypatch, chunk_rows, rows_per_insert
):
    """The writer reorders the rows (key order over the whole table, many to a statement): a
    key that comes twice, its rows far apart, still keeps the later row, as the stock store
    does."""
    import pyarrow as pa

    import orchestration.core.features.online_store as packed

    monkeypatch.setattr(packed, "BULK_CHUNK_ROWS", chunk_rows)
    monkeypatch.setattr(packed, "ROWS_PER_INSERT", rows_per_insert)
    view = stores["views"][EXTRAS]
    store = feature_store(
        stores["settings"], tmp_path, {"type": packed.STORE_TYPE}, {"type": packed.ENGINE_TYPE}
    )
    store.apply([stores["customer"], view])
    ids = [*range(1, 201), 7]  # customer 7 again, 194 rows after its first row
    at = pa.array([NEWEST] * len(ids), pa.timestamp("us", tz="UTC"))
    data = pa.table(
        {
            "customer_id": pa.array(ids, pa.int64()),
            "is_flagged": pa.array([i % 2 == 0 for i in ids]),
            "score_f32": pa.array([i / 4 for i in ids], pa.float32()),
            "rank_i32": pa.array([*range(1, 201), -7], pa.int32()),
            "label": pa.array([f"c{i}" for i in ids]),
            "event_timestamp": at,
        }
    )
    online = store._get_provider().online_store
    assert online.online_write_arrow(store.config, view, data) == len(ids)
    got = read(store, [f"{EXTRAS}:rank_i32", f"{EXTRAS}:label"], range(1, 201)).to_dict()
    expected = [-7 if i == 7 else i for i in range(1, 201)]
    assert got[f"{EXTRAS}__rank_i32"] == expected
    assert got[f"{EXTRAS}__label"] == [f"c{i}" for i in range(1, 201)]
