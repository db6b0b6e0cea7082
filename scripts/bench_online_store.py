"""Benchmark: Feast materialize into the online store, stock vs bulk writers, SQLite and Redis.

    .venv/bin/python scripts/bench_online_store.py      # SQLite: stock 100k, packed 100k + 1M;
                                                        # Redis: stock 100k, bulk 100k + 1M
    .venv/bin/python scripts/bench_online_store.py --packed 100000 --stock --redis 100000 --redis-stock

Synthetic feature tables with the project's schema (the four views of feature_repo/: 25 Int64 and
Float64 features and the declared attributes' columns, ~5 % nulls), one snapshot per customer,
written as Parquet where the pipeline publishes them. Each case runs in its own process (so peak RSS is that case's own: the Feast
import, apply, materialize and 200 reads): it applies the project's feature repo with the
project's feature_store.yaml, the online store (and batch engine) swapped for the case, and
materializes the snapshot window, as the ``online_features`` asset does. Prints seconds of
``FeatureStore.materialize`` (and of the packed store's own writer inside it), peak RSS, the
online store's file size and the per-request read latency (1 customer x 25 features, SDK).
The Redis cases run against a redis-server this script starts on 127.0.0.1 (Debian's package, no
persistence; tests/support/redis_server.py), emptied before each case; they print the server's
``used_memory`` after the load instead of a file size.

Target: 1M customers x all views in <= 30 s and <= 2 GB peak RSS on 2 cores. The stock store at
1M is not run by default (728 s and a 5.4 GB file measured before); ``--stock 1000000`` runs it.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

PROJECT_DIR = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_DIR))  # the project's packages (orchestration, tests.support)
SNAPSHOT = datetime(2026, 3, 2, tzinfo=UTC)
STOCK_1M_BEFORE = "not run (728 s measured before)"
FLOAT_FEATURES = {
    "days_since_last_order",
    "sum_amount_90d",
    "sum_amount_365d",
    "avg_order_amount_365d",
    "click_through_rate_90d",
    "days_since_last_engagement",
}
VIEWS = {
    "feat_customer_rfm": [
        "days_since_last_order",
        "count_orders_30d",
        "count_orders_90d",
        "count_orders_365d",
        "count_orders_mens_365d",
        "count_orders_womens_365d",
        "count_orders_web_365d",
        "count_orders_phone_365d",
        "sum_amount_90d",
        "sum_amount_365d",
        "avg_order_amount_365d",
        "tenure_days",
    ],
    "feat_customer_engagement": [
        "count_opens_30d",
        "count_clicks_30d",
        "count_dismisses_30d",
        "count_sessions_30d",
        "count_opens_90d",
        "count_clicks_90d",
        "count_dismisses_90d",
        "click_through_rate_90d",
        "days_since_last_engagement",
    ],
    "feat_customer_consent": [
        "is_email_opted_in",
        "is_sms_opted_in",
        "is_push_opted_in",
        "count_channels_opted_in",
    ],
}


def _views() -> tuple[dict[str, list[str]], set[str]]:
    """(feature table -> columns, the Float64 columns): the three fixed views and the declared
    attributes' (config/attributes.yaml, as the feature repo reads it)."""
    from orchestration.core.world.attributes import load_attributes
    from orchestration.settings import Settings

    declared = load_attributes(Settings.from_env().attributes_file).feature_columns()
    floats = FLOAT_FEATURES | {c.name for c in declared if c.dtype == "float64"}
    if not declared:
        return VIEWS, floats
    return {**VIEWS, "feat_customer_attributes": [c.name for c in declared]}, floats


def write_feature_tables(directory: Path, customers: int, seed: int = 0) -> None:
    """One snapshot row per customer for each feature table (the project's columns and types)."""
    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True, exist_ok=True)
    ids = pa.array(np.arange(1, customers + 1, dtype=np.int64))
    stamps = pa.array(np.full(customers, SNAPSHOT), pa.timestamp("us", tz="UTC"))
    views, floats = _views()
    for table, features in views.items():
        columns: dict[str, pa.Array] = {"customer_id": ids}
        for name in features:
            nulls = rng.random(customers) < 0.05
            if name in floats:
                values = pa.array(rng.gamma(2.0, 40.0, customers), mask=nulls)
            else:
                values = pa.array(rng.poisson(3.0, customers).astype(np.int64), mask=nulls)
            columns[name] = values
        columns["event_timestamp"] = stamps
        pq.write_table(pa.table(columns), directory / f"{table}.parquet")


def _online_config(settings, kind: str) -> tuple[dict, str]:
    """(online_store block, batch engine type) of a case."""
    from orchestration.core.features.online_store import ENGINE_TYPE, STORE_TYPE

    path = str(settings.feast_dir / "online_store.db")
    if kind == "stock":
        return {"type": "sqlite", "path": path}, "local"
    if kind == "packed":
        return {"type": STORE_TYPE, "path": path}, ENGINE_TYPE
    from orchestration.core.features.redis_online_store import (
        STORE_TYPE as REDIS_BULK,
    )
    from orchestration.core.features.redis_online_store import (
        feast_connection_string,
    )

    connection = feast_connection_string(settings.redis_url)
    if kind == "redis-stock":
        return {"type": "redis", "connection_string": connection}, "local"
    return {"type": REDIS_BULK, "connection_string": connection}, ENGINE_TYPE


def _store(settings, kind: str):
    """The project's feature store config with the online store (and batch engine) of ``kind``."""
    import yaml
    from feast import FeatureStore
    from feast.repo_config import RepoConfig

    repo = settings.feature_repo_dir
    raw = yaml.safe_load((repo / "feature_store.yaml").read_text())
    raw["registry"]["path"] = str(settings.feast_dir / "registry.db")
    raw["online_store"], engine = _online_config(settings, kind)
    raw["batch_engine"] = {"type": engine}
    config = RepoConfig(**raw)
    config.repo_path = repo
    return FeatureStore(repo_path=str(repo), config=config)


def _timed_writer() -> list[float]:
    """Accumulates the seconds spent in the bulk stores' own Arrow writers."""
    from orchestration.core.features.online_store import PackedSqliteOnlineStore
    from orchestration.core.features.redis_online_store import BulkRedisOnlineStore

    spent: list[float] = []
    for cls in (PackedSqliteOnlineStore, BulkRedisOnlineStore):
        original = cls.online_write_arrow

        def timed(self, *args, _original=original, **kwargs):
            started = time.perf_counter()
            try:
                return _original(self, *args, **kwargs)
            finally:
                spent.append(time.perf_counter() - started)

        cls.online_write_arrow = timed
    return spent


def run_case(kind: str, customers: int) -> dict:
    """One case, in this process (the parent runs it in a child): apply, materialize, read."""
    from feast import Entity, FeatureService, FeatureView
    from feast.data_source import PushSource

    from orchestration.core.features.feast_store import _import_repo_modules
    from orchestration.settings import Settings

    settings = Settings.from_env()
    objects = _import_repo_modules(settings.feature_repo_dir)
    store = _store(settings, kind)
    store.apply([o for o in objects if isinstance(o, Entity | FeatureView | FeatureService)])
    spent = _timed_writer()
    started = time.perf_counter()
    # as the pipeline does (feast_store.materialize_online): push-source views are not loaded
    views = [
        v.name for v in store.list_feature_views() if not isinstance(v.stream_source, PushSource)
    ]
    store.materialize(
        SNAPSHOT - timedelta(seconds=1), SNAPSHOT + timedelta(seconds=1), feature_views=views
    )
    seconds = time.perf_counter() - started
    service = store.get_feature_service("uplift_model_v1")
    rng = np.random.default_rng(1)
    latencies = []
    for customer in rng.integers(1, customers + 1, 200).tolist():
        began = time.perf_counter()
        store.get_online_features(features=service, entity_rows=[{"customer_id": customer}])
        latencies.append((time.perf_counter() - began) * 1000)
    db = settings.feast_dir / "online_store.db"
    return {
        "seconds": seconds,
        "writer_seconds": sum(spent) if spent else None,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "file_mb": db.stat().st_size / 2**20 if db.exists() else None,
        "read_p50_ms": float(np.percentile(latencies, 50)),
        "read_p99_ms": float(np.percentile(latencies, 99)),
    }


def _child(kind: str, customers: int, redis=None) -> dict:
    with tempfile.TemporaryDirectory(prefix=f"bench_online_{kind}_") as tmp:
        data_dir = Path(tmp) / "data"
        write_feature_tables(data_dir / "features" / "current", customers)
        env = {**os.environ, "CAMPAIGN_DATA_DIR": str(data_dir)}
        if redis is not None:
            redis.client().flushall()
            env["CAMPAIGN_REDIS_URL"] = redis.url(0)
        done = subprocess.run(
            [sys.executable, __file__, "--child", kind, str(customers)],
            env=env,
            cwd=PROJECT_DIR,
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise SystemExit(f"{kind} at {customers:,} failed:\n{done.stderr[-4000:]}")
        figures = json.loads(done.stdout.strip().splitlines()[-1])
        if redis is not None:
            figures["redis_mb"] = redis.used_memory() / 2**20
            redis.client().flushall()
        return figures


def _redis_server(directory: Path):
    from tests.support.redis_server import RedisServer

    return RedisServer(directory).start()


def _mb(value: float | None) -> str:
    return f"{value:,.0f}" if value is not None else "-"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stock", type=int, nargs="*", default=[100_000])
    parser.add_argument("--packed", type=int, nargs="*", default=[100_000, 1_000_000])
    parser.add_argument("--redis", type=int, nargs="*", default=[100_000, 1_000_000])
    parser.add_argument("--redis-stock", type=int, nargs="*", default=[100_000])
    parser.add_argument("--child", nargs=2, metavar=("KIND", "CUSTOMERS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_case(args.child[0], int(args.child[1]))))
        return
    views = len(_views()[0])
    print(
        f"{'store':<12} {'entities':>10} {'views':>5} {'seconds':>8} {'writer s':>8} "
        f"{'peak RSS MB':>11} {'file MB':>8} {'redis MB':>8} {'read p50/p99 ms':>16}"
    )
    cases = [("stock", n) for n in args.stock] + [("packed", n) for n in args.packed]
    cases += [("redis-stock", n) for n in args.redis_stock] + [("redis", n) for n in args.redis]
    with tempfile.TemporaryDirectory(prefix="bench_online_redis_") as tmp:
        redis = _redis_server(Path(tmp)) if args.redis or args.redis_stock else None
        try:
            for kind, customers in cases:
                figures = _child(kind, customers, redis if kind.startswith("redis") else None)
                writer = figures["writer_seconds"]
                print(
                    f"{kind:<12} {customers:>10,} {views:>5} {figures['seconds']:>8.1f} "
                    f"{(f'{writer:.1f}' if writer is not None else '-'):>8} "
                    f"{figures['peak_rss_mb']:>11,.0f} {_mb(figures['file_mb']):>8} "
                    f"{_mb(figures.get('redis_mb')):>8} "
                    f"{figures['read_p50_ms']:>7.2f}/{figures['read_p99_ms']:<8.2f}",
                    flush=True,
                )
        finally:
            if redis is not None:
                redis.stop()
    if 1_000_000 not in args.stock:
        print(f"{'stock':<12} {1_000_000:>10,} {views:>5} {STOCK_1M_BEFORE}")


if __name__ == "__main__":
    main()
