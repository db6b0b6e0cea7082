"""The packed online store (orchestration/core/features/online_store.py) against Feast's stock
SQLite store: the same feature tables materialized into both must read back identically.

Built once per module: a few hundred customers, two snapshots, the project's three feature views
(Int64 and Float64 features) plus a test-only view with the other scalar types (Bool, Float32,
Int32, String). Nulls, NaNs, negative and wide integers, customers missing from one view and a
customer missing from all of them are in the data on purpose.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from orchestration.settings import Settings
from tests.conftest import point_at

N_CUSTOMERS = 300
NEWEST = datetime(2026, 3, 2, tzinfo=UTC)
SNAPSHOTS = [NEWEST - timedelta(days=1), NEWEST]
IDS = (np.arange(1, N_CUSTOMERS + 1) * 7919).astype(np.int64)
ONLY_OLDER_SNAPSHOT = set(IDS[-10:-5].tolist())  # engagement: latest row is a day older
NO_CONSENT = set(IDS[-5:].tolist())  # absent from customer_consent altogether
MISSING = 123_456_789  # in no table at all
EXTRAS = "customer_extras"
PROJECT_VIEWS = ["customer_rfm", "customer_engagement", "customer_consent"]


def _int_column(rng: np.random.Generator, n: int) -> pa.Array:
    values = rng.integers(0, 60, n).astype(object)
    values[rng.random(n) < 0.1] = None
    values[-3:] = [-(2**40), 2**52 - 1, -1]  # negative and wide varints (newest snapshot rows)
    return pa.array(values.tolist(), pa.int64())


def _float_column(rng: np.random.Generator, n: int) -> pa.Array:
    values = rng.gamma(2.0, 30.0, n).astype(object)
    values[rng.random(n) < 0.1] = None
    values[-4:] = [float("nan"), 0.0, -0.0, float("inf")]
    return pa.array(values.tolist(), pa.float64(), from_pandas=False)  # keeps NaN apart from null


def _table_rows(view: str) -> tuple[list[int], list[datetime]]:
    ids, times = [], []
    for at in SNAPSHOTS:
        for customer in IDS.tolist():
            if view == "customer_consent" and customer in NO_CONSENT:
                continue
            if view == "customer_engagement" and at == NEWEST and customer in ONLY_OLDER_SNAPSHOT:
                continue
            ids.append(customer)
            times.append(at)
    return ids, times


def _write_tables(feature_dir: Path, views: dict) -> None:
    rng = np.random.default_rng(11)
    feature_dir.mkdir(parents=True, exist_ok=True)
    for name in PROJECT_VIEWS:
        ids, times = _table_rows(name)
        columns = {"customer_id": pa.array(ids, pa.int64())}
        for field in views[name].features:
            is_int = field.dtype.to_value_type().name == "INT64"
            columns[field.name] = (_int_column if is_int else _float_column)(rng, len(ids))
        columns["event_timestamp"] = pa.array(times, pa.timestamp("us", tz="UTC"))
        pq.write_table(pa.table(columns), feature_dir / f"feat_{name}.parquet")
    ids, times = _table_rows(EXTRAS)
    n = len(ids)
    flags = np.where(rng.random(n) < 0.5, True, False).astype(object)
    flags[rng.random(n) < 0.15] = None
    words = np.array([f"w{i}é" for i in range(n)], dtype=object)
    words[rng.random(n) < 0.15] = None
    extras = {
        "customer_id": pa.array(ids, pa.int64()),
        "is_flagged": pa.array(flags.tolist(), pa.bool_()),
        "score_f32": _float_column(rng, n),
        "rank_i32": pa.array(
            [
                None if i % 9 == 0 else int(v)
                for i, v in enumerate(rng.integers(-(2**31), 2**31, n))
            ],
            pa.int32(),
        ),
        "label": pa.array(words.tolist(), pa.string()),
        "event_timestamp": pa.array(times, pa.timestamp("us", tz="UTC")),
    }
    pq.write_table(pa.table(extras), feature_dir / "extras.parquet")


def _extras_view(customer, feature_dir: Path):
    from feast import FeatureView, Field, FileSource
    from feast.data_format import ParquetFormat
    from feast.types import Bool, Float32, Int32, String

    source = FileSource(
        name="extras_source",
        path=str(feature_dir / "extras.parquet"),
        file_format=ParquetFormat(),
        timestamp_field="event_timestamp",
    )
    return FeatureView(
        name=EXTRAS,
        entities=[customer],
        ttl=timedelta(days=2),
        schema=[
            Field(name="is_flagged", dtype=Bool),
            Field(name="score_f32", dtype=Float32),
            Field(name="rank_i32", dtype=Int32),
            Field(name="label", dtype=String),
        ],
        source=source,
        online=True,
    )


def _store(settings: Settings, feast_dir: Path, online: dict, engine: str | dict):
    """The project's feature_store.yaml with the online store and batch engine swapped."""
    from feast import FeatureStore
    from feast.repo_config import RepoConfig

    repo = settings.feature_repo_dir
    raw = yaml.safe_load((repo / "feature_store.yaml").read_text())
    raw["registry"]["path"] = str(feast_dir / "registry.db")
    raw["online_store"] = {**online, "path": str(feast_dir / "online_store.db")}
    raw["batch_engine"] = engine
    raw["materialization"] = {"online_write_batch_size": 64}  # several batches per view
    config = RepoConfig(**raw)
    config.repo_path = repo
    return FeatureStore(repo_path=str(repo), config=config)


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    """(stock store, packed store, settings, views), both materialized from the same tables."""
    import orchestration.core.features.online_store as packed
    from orchestration.core.features.feast_store import _import_repo_modules

    data_dir = tmp_path_factory.mktemp("online_parity") / "data"
    with pytest.MonkeyPatch.context() as mp:
        point_at(mp, data_dir)
        mp.setattr(packed, "BULK_CHUNK_ROWS", 50)  # the bulk writer's chunking is exercised too
        settings = Settings.from_env()
        objects = _import_repo_modules(settings.feature_repo_dir)
        # the real-time view (a push source, written by POST /v1/events) is never materialized
        views = {
            o.name: o
            for o in objects
            if type(o).__name__ == "FeatureView" and o.stream_source is None
        }
        customer = next(o for o in objects if type(o).__name__ == "Entity")
        feature_dir = settings.features_dir / "current"
        views[EXTRAS] = _extras_view(customer, feature_dir)
        _write_tables(feature_dir, views)
        service = next(o for o in objects if type(o).__name__ == "FeatureService")
        stock = _store(settings, data_dir / "feast_stock", {"type": "sqlite"}, "local")
        mine = _store(
            settings, settings.feast_dir, {"type": packed.STORE_TYPE}, {"type": packed.ENGINE_TYPE}
        )
        for store in (stock, mine):
            store.apply([customer, service, *views.values()])
            store.materialize(SNAPSHOTS[0] - timedelta(seconds=1), NEWEST + timedelta(seconds=1))
        yield {"stock": stock, "packed": mine, "settings": settings, "views": views}


def _refs(views: dict) -> list[str]:
    return [f"{name}:{f.name}" for name, view in views.items() for f in view.features]


def _read(store, features, ids):
    rows = [{"customer_id": int(c)} for c in ids]
    return store.get_online_features(features=features, entity_rows=rows, full_feature_names=True)


def test_online_features_match_the_stock_store(stores):
    ids = [*IDS.tolist(), MISSING, int(IDS[0])]  # every entity, a missing one, a repeated one
    refs = _refs(stores["views"])
    stock = _read(stores["stock"], refs, ids)
    packed = _read(stores["packed"], refs, ids)
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
    stock = _read(stores["stock"], service, ids)
    packed = _read(stores["packed"], stores["packed"].get_feature_service("uplift_model_v1"), ids)
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
    refs = _refs({EXTRAS: view})
    assert (
        _read(stores["packed"], refs, new_ids).proto == _read(stores["stock"], refs, new_ids).proto
    )
    # A partial row: the stock store then holds two event times for one entity and returns either
    # of them, so only the values are compared.
    got = _read(stores["packed"], refs, [int(IDS[1])]).to_dict()
    assert got == _read(stores["stock"], refs, [int(IDS[1])]).to_dict()
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
