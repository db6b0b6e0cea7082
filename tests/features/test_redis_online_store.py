"""The Redis online store's bulk writer (orchestration/core/features/redis_online_store.py)
against Feast's stock RedisOnlineStore, on a real redis-server (tests/support/redis_server.py).

Built once per module from the small feature world of ``online_world.py`` (every scalar feature
type, nulls, NaNs, customers missing from one view or from all): the stock store materializes it
with Feast's own engine (``online_write_batch``, one protobuf per cell) into one database, the
bulk store with ``ArrowOnlineWriteEngine`` (``online_write_arrow``) into another. The two must
hold the same hashes byte for byte and read back identically through the stock read path.
"""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd
import pytest

from orchestration.settings import Settings
from tests.conftest import point_at
from tests.features.online_world import (
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


def _connection(server, db: int) -> str:
    return f"127.0.0.1:{server.port},db={db}"


@pytest.fixture(scope="module")
def stores(tmp_path_factory, redis_server):
    import orchestration.core.features.online_store as packed
    import orchestration.core.features.redis_online_store as bulk

    data_dir = tmp_path_factory.mktemp("redis_parity") / "data"
    stock_db, bulk_db = redis_server.fresh_db(), redis_server.fresh_db()
    with pytest.MonkeyPatch.context() as mp:
        point_at(mp, data_dir)
        mp.setattr(bulk, "BULK_CHUNK_ROWS", 50)  # several encoding chunks ...
        mp.setattr(bulk, "PIPELINE_ROWS", 7)  # ... several pipelines per chunk ...
        mp.setattr(bulk, "SCRIPT_KEYS", 3)  # ... and several script calls per pipeline
        arrow_rows: list[int] = []
        write_arrow = bulk.BulkRedisOnlineStore.online_write_arrow

        def counting(self, config, table, data):
            arrow_rows.append(write_arrow(self, config, table, data))
            return arrow_rows[-1]

        mp.setattr(bulk.BulkRedisOnlineStore, "online_write_arrow", counting)
        settings = Settings.from_env()
        world = build_world(settings)
        stock_online = {"type": "redis", "connection_string": _connection(redis_server, stock_db)}
        bulk_online = {
            "type": bulk.STORE_TYPE,
            "connection_string": _connection(redis_server, bulk_db),
        }
        stock = feature_store(settings, data_dir / "feast_stock", stock_online, "local")
        mine = feature_store(
            settings, settings.feast_dir, bulk_online, {"type": packed.ENGINE_TYPE}
        )
        for store in (stock, mine):
            store.apply([world["customer"], world["service"], *world["views"].values()])
            materialize_all(store)
        yield {
            "stock": stock,
            "bulk": mine,
            "settings": settings,
            "views": world["views"],
            "server": redis_server,
            "dbs": (stock_db, bulk_db),
            "arrow_rows": list(arrow_rows),
        }


def _hashes(server, db: int) -> dict[bytes, dict[bytes, bytes]]:
    """Every hash of the database but the bulk writer's own record of its materializations."""
    client = server.client(db)
    keys = [k for k in client.scan_iter(count=1000) if not k.startswith(b"_materializations:")]
    return {key: client.hgetall(key) for key in keys}


def test_the_bulk_writer_writes_the_stock_hashes_byte_for_byte(stores):
    stock_db, bulk_db = stores["dbs"]
    stock, bulk = _hashes(stores["server"], stock_db), _hashes(stores["server"], bulk_db)
    assert bulk == stock
    # beside them, one hash: when each view's last bulk write ended
    marker = stores["server"].client(bulk_db).hgetall(b"_materializations:campaign_features:")
    assert set(marker) == {v.encode() for v in stores["views"]}
    assert sum(stores["arrow_rows"]) > N_CUSTOMERS  # written by the bulk writer, every view
    # what was compared: one hash per customer in any view, every view's fields in it
    assert len(bulk) == N_CUSTOMERS
    n_fields = sum(len(view.features) + 1 for view in stores["views"].values())
    consent = stores["views"]["customer_consent"]
    full = [fields for fields in bulk.values() if len(fields) == n_fields]
    assert len(full) == N_CUSTOMERS - len(NO_CONSENT)
    assert all(
        len(f) == n_fields - len(consent.features) - 1 for f in bulk.values() if f not in full
    )
    assert any(value == b"" for fields in bulk.values() for value in fields.values())  # nulls


def test_online_features_match_the_stock_store(stores):
    ids = [*IDS.tolist(), MISSING, int(IDS[0])]  # every entity, a missing one, a repeated one
    refs = feature_refs(stores["views"])
    stock = read(stores["stock"], refs, ids)
    bulk = read(stores["bulk"], refs, ids)
    assert bulk.proto == stock.proto  # values, statuses and event timestamps, all of them
    got = bulk.to_dict(include_event_timestamps=True)
    assert got == stock.to_dict(include_event_timestamps=True)
    missing_row = ids.index(MISSING)
    assert all(got[r.replace(":", "__")][missing_row] is None for r in refs)
    older = ids.index(next(iter(ONLY_OLDER_SNAPSHOT)))
    stamps = got["customer_engagement__count_opens_30d__ts"]
    assert stamps[older] == int(SNAPSHOTS[0].timestamp()) and stamps[0] == int(NEWEST.timestamp())
    service = stores["bulk"].get_feature_service("uplift_model_v1")
    assert read(stores["bulk"], service, ids).proto == read(stores["stock"], service, ids).proto


def test_materialize_records_its_intervals(stores):
    for view in stores["views"]:
        stock = stores["stock"].get_feature_view(view).materialization_intervals
        bulk = stores["bulk"].get_feature_view(view).materialization_intervals
        assert bulk and bulk == stock


def test_an_older_snapshot_does_not_overwrite_newer_values(stores):
    """Like the stock writer: a backfill of an older window leaves the newer rows in place."""
    stock_db, bulk_db = stores["dbs"]
    before = _hashes(stores["server"], bulk_db)
    for name in ("stock", "bulk"):
        stores[name].materialize(
            SNAPSHOTS[0] - timedelta(seconds=1), SNAPSHOTS[0] + timedelta(seconds=1)
        )
    after = _hashes(stores["server"], bulk_db)
    assert after == before == _hashes(stores["server"], stock_db)


def test_protobuf_writes_go_through_the_stock_writer(stores):
    """push / write_to_online_store are Feast's own path (inherited), readable like the bulk rows."""
    at = NEWEST + timedelta(hours=3)
    frame = pd.DataFrame(
        {
            "customer_id": [10**9, 10**9 + 1],
            "is_flagged": [True, None],
            "score_f32": [1.5, None],
            "rank_i32": [-(2**31), 7],
            "label": ["é", None],
            "event_timestamp": [at, at],
        }
    )
    refs = feature_refs({"customer_extras": stores["views"]["customer_extras"]})
    for name in ("stock", "bulk"):
        stores[name].write_to_online_store("customer_extras", frame)
    ids = frame["customer_id"].tolist()
    assert read(stores["bulk"], refs, ids).proto == read(stores["stock"], refs, ids).proto


def test_rows_for_one_entity_in_one_batch_keep_the_newest_like_the_stock_writer(stores):
    import pyarrow as pa
    from feast.infra.online_stores.redis import RedisOnlineStore
    from feast.utils import _convert_arrow_to_proto

    from orchestration.core.features.redis_online_store import BulkRedisOnlineStore

    view = stores["views"]["customer_extras"]
    at = NEWEST + timedelta(days=1)
    hours = [1, 3, 3, 0, 2]  # the first of the two newest rows must win
    table = pa.table(
        {
            "customer_id": pa.array([555] * 5 + [556], pa.int64()),
            "is_flagged": [True, False, True, None, False, True],
            "score_f32": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
            "rank_i32": pa.array([1, 2, 3, 4, 5, 6], pa.int32()),
            "label": ["a", "b", "c", "d", "e", "f"],
            "event_timestamp": pa.array(
                [at + timedelta(hours=h) for h in [*hours, 0]], pa.timestamp("us", tz="UTC")
            ),
        }
    )
    rows = _convert_arrow_to_proto(
        table, view, {"customer_id": view.entity_columns[0].dtype.to_value_type()}
    )
    RedisOnlineStore().online_write_batch(stores["stock"].config, view, rows, None)
    assert (
        BulkRedisOnlineStore().online_write_arrow(stores["bulk"].config, view, table) == 3
    )  # 555 twice, 556
    stock_db, bulk_db = stores["dbs"]
    assert _hashes(stores["server"], bulk_db) == _hashes(stores["server"], stock_db)
    got = read(stores["bulk"], ["customer_extras:score_f32"], [555]).to_dict()
    assert got["customer_extras__score_f32"] == [2.0]


@pytest.mark.parametrize("skip_dedup", [False, True])
def test_key_ttl_and_skip_dedup_behave_like_the_stock_writer(stores, tmp_path, skip_dedup):
    import pyarrow as pa
    from feast.infra.online_stores.redis import RedisOnlineStore
    from feast.utils import _convert_arrow_to_proto

    from orchestration.core.features.redis_online_store import STORE_TYPE, BulkRedisOnlineStore

    server, view = stores["server"], stores["views"]["customer_extras"]
    options = {"key_ttl_seconds": 3600, "skip_dedup": skip_dedup}
    dbs = server.fresh_db(), server.fresh_db()
    configs = [
        feature_store(
            stores["settings"],
            tmp_path / kind,
            {"type": kind, "connection_string": _connection(server, db), **options},
            "local",
        ).config
        for kind, db in zip(("redis", STORE_TYPE), dbs, strict=True)
    ]
    at = NEWEST + timedelta(days=2)
    table = pa.table(
        {
            "customer_id": pa.array([777, 777, 778], pa.int64()),
            "is_flagged": [True, False, None],
            "score_f32": [1.0, 2.0, 3.0],
            "rank_i32": pa.array([1, 2, 3], pa.int32()),
            "label": ["new", "old", "x"],
            "event_timestamp": pa.array(
                [at, at - timedelta(hours=5), at], pa.timestamp("us", tz="UTC")
            ),
        }
    )
    join_keys = {"customer_id": view.entity_columns[0].dtype.to_value_type()}
    RedisOnlineStore().online_write_batch(
        configs[0], view, _convert_arrow_to_proto(table, view, join_keys), None
    )
    BulkRedisOnlineStore().online_write_arrow(configs[1], view, table)
    stock, bulk = _hashes(server, dbs[0]), _hashes(server, dbs[1])
    assert bulk == stock and len(bulk) == 2
    client = server.client(dbs[1])
    assert all(0 < client.ttl(key) <= 3600 for key in bulk)
    labels = {value for fields in bulk.values() for value in fields.values() if b"old" in value}
    assert bool(labels) is skip_dedup  # with skip_dedup the last row wins, however old


# --- the online freshness gate on Redis ----------------------------------------------------------


def _redis_settings(stores, monkeypatch, db: int, now) -> Settings:
    server = stores["server"]
    monkeypatch.setenv("CAMPAIGN_DATA_DIR", str(stores["settings"].data_dir))
    monkeypatch.setenv("CAMPAIGN_ONLINE_STORE", "redis")
    monkeypatch.setenv("CAMPAIGN_REDIS_URL", server.url(db))
    monkeypatch.setenv("CAMPAIGN_WORLD_NOW", now.isoformat())
    return Settings.from_env()


def _run_gate(stores, monkeypatch, db: int, now):
    """The ``online_store_fresh`` asset check, on the customers who have every feature."""
    from orchestration.defs.features import online_store_fresh
    from orchestration.resources import CampaignSettings

    settings = _redis_settings(stores, monkeypatch, db, now)
    settings.exports_dir.mkdir(parents=True, exist_ok=True)
    complete = [c for c in IDS.tolist() if c not in NO_CONSENT]
    pd.DataFrame({"customer_id": complete}).to_parquet(
        settings.exports_dir / "dim_customers.parquet"
    )
    return online_store_fresh(settings=CampaignSettings())


def test_online_freshness_reads_the_redis_store_selected_by_settings(stores, monkeypatch):
    from orchestration.core.features.feast_store import open_feature_store
    from orchestration.core.features.online_freshness import measure_online_freshness
    from orchestration.core.features.redis_online_store import STORE_TYPE

    now = NEWEST + timedelta(hours=2)
    settings = _redis_settings(stores, monkeypatch, stores["dbs"][1], now)
    assert open_feature_store(settings).config.online_store.type == STORE_TYPE
    ids = np.array([*IDS.tolist(), MISSING])
    fresh = measure_online_freshness(settings, ids, window_hours=25, sample_size=10_000, now=now)
    assert fresh.sampled == len(ids)
    assert fresh.missing == 1 + len(NO_CONSENT)
    assert fresh.stale == 1 + len(NO_CONSENT) + len(ONLY_OLDER_SNAPSHOT)


def test_the_gate_passes_on_fresh_redis_data(stores, monkeypatch):
    result = _run_gate(stores, monkeypatch, stores["dbs"][1], NEWEST + timedelta(hours=2))
    assert result.passed is True
    assert result.metadata["stale"].value == 0


def test_the_gate_blocks_on_stale_redis_data(stores, monkeypatch):
    from orchestration.defs.features import online_store_fresh

    result = _run_gate(stores, monkeypatch, stores["dbs"][1], NEWEST + timedelta(days=3))
    assert result.passed is False and result.severity.name == "ERROR"
    assert result.metadata["stale_share"].value == 1.0
    assert all(spec.blocking for spec in online_store_fresh.check_specs)


def test_the_gate_blocks_when_redis_holds_no_features(stores, monkeypatch):
    empty = stores["server"].fresh_db()
    result = _run_gate(stores, monkeypatch, empty, NEWEST + timedelta(hours=2))
    assert result.passed is False
    assert result.metadata["missing"].value == result.metadata["sampled"].value > 0
