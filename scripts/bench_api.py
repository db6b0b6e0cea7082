"""Benchmark the real-time decision API: latency at batch 1 and throughput at 1, 8 and 32
concurrent clients, over 127.0.0.1, on the configured data directory (Feast's packed SQLite
online store, the MLflow registry, the ledger), and with ``--store redis`` on Redis: the script
starts its own redis-server on 127.0.0.1 (tests/support/redis_server.py), materializes the
data directory's current feature version into it (its bulk writer; the registry is a copy, so
the data directory is not changed) and serves the API with ``CAMPAIGN_ONLINE_STORE=redis``.

The API runs in its own process (uvicorn, the app of ``create_app``) with a throw-away token file
and decisions store (nothing is written into the data directory's API store); the clients are
threads in this process with keep-alive connections. Each level is bounded by a request count
and a time limit. Needs a data directory with a finished run (`make run`).

    python scripts/bench_api.py [--requests 2000] [--seconds 30] [--clients 1 8 32]
                                [--store sqlite redis]

Targets: p99 <= 20 ms at 1 client; >= 300 decisions/s.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import socket
import statistics
import sys
import tempfile
import threading
import time
from datetime import timedelta
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

P99_TARGET_MS = 20.0
THROUGHPUT_TARGET = 300.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve(port: int, work_dir: str) -> None:
    """The API process: the data directory's state, a throw-away token file and store."""
    import uvicorn

    from orchestration.api.app import create_app
    from orchestration.core.decisioning.realtime import ApiDecisionStore, DecisionService
    from orchestration.settings import Settings

    settings = Settings.from_env()
    store = ApiDecisionStore(Path(work_dir) / "decisions.db")
    service = DecisionService(settings, store=store)
    app = create_app(
        settings,
        service=service,
        tokens_file=Path(work_dir) / "tokens.json",
        rate_per_second=1e6,
        burst=1e6,
    )
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def _wait_healthy(url: str, process, timeout: float = 180.0) -> dict:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not process.is_alive():
            raise SystemExit("the API process ended before it answered /v1/health")
        try:
            response = httpx.get(f"{url}/v1/health", timeout=2)
            if response.status_code == 200:
                return response.json()
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise SystemExit(f"no answer from {url}/v1/health within {timeout:.0f} s")


def _level(url, token, campaign, customers, clients, requests, seconds, tag):
    """``requests`` decisions (at most ``seconds``) from ``clients`` threads, each on its own
    keep-alive connection (the standard library's client: a lean client measures the server)."""
    from http.client import HTTPConnection
    from urllib.parse import urlsplit

    address = urlsplit(url)

    latencies: list[float] = []
    stages: list[dict] = []
    errors: list[str] = []
    lock = threading.Lock()
    counter = iter(range(requests))
    deadline = time.monotonic() + seconds
    rng = np.random.default_rng(clients)
    ids = rng.choice(customers, size=requests)

    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    def client() -> None:
        http = HTTPConnection(address.hostname, address.port, timeout=30)
        try:
            while time.monotonic() < deadline:
                with lock:
                    i = next(counter, None)
                if i is None:
                    return
                body = {
                    "request_id": f"{tag}-{i}",
                    "customer_id": int(ids[i]),
                    "campaign": campaign,
                }
                started = time.perf_counter()
                http.request("POST", "/v1/decisions", json.dumps(body), headers)
                response = http.getresponse()
                text = response.read()
                elapsed = (time.perf_counter() - started) * 1000
                with lock:
                    if response.status != 200:
                        errors.append(f"{response.status} {text[:200]!r}")
                        continue
                    latencies.append(elapsed)
                    stages.append(json.loads(text).get("latency_ms") or {})
        finally:
            http.close()

    threads = [threading.Thread(target=client) for _ in range(clients)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    return latencies, stages, errors, wall


def _load_redis(settings, url: str, work_dir: Path) -> float:
    """Materialize the current feature version's snapshot into Redis at ``url`` (as the
    ``online_features`` asset does, on a copy of the registry); returns the seconds it took."""
    import shutil

    from feast import FeatureStore
    from feast.data_source import PushSource

    from orchestration.core.features.feast_store import open_feature_store
    from orchestration.core.features.publishing import current_feature_version
    from orchestration.core.features.tables import snapshot_times

    current = current_feature_version(settings.features_dir)
    if current is None:
        raise SystemExit(f"no published feature version under {settings.features_dir}")
    redis_settings = settings.model_copy(update={"online_store": "redis", "redis_url": url})
    config = open_feature_store(redis_settings).config
    registry = work_dir / "registry.db"
    shutil.copyfile(settings.feast_dir / "registry.db", registry)
    config.registry.path = str(registry)
    store = FeatureStore(repo_path=str(settings.feature_repo_dir), config=config)
    newest = snapshot_times(current.path)[-1]
    # as materialize_online: the push-source views have no batch rows to load
    views = [
        v.name for v in store.list_feature_views() if not isinstance(v.stream_source, PushSource)
    ]
    started = time.perf_counter()
    store.materialize(
        newest - timedelta(seconds=1), newest + timedelta(seconds=1), feature_views=views
    )
    return time.perf_counter() - started


def _bench_store(kind, args, settings, customers, campaign, work_dir: Path) -> list[dict]:
    """Serve the API on the online store ``kind`` and run every client level against it."""
    from orchestration.api.tokens import TokenStore

    _, token = TokenStore(work_dir / "tokens.json").create(["decide"], "bench")
    redis = None
    if kind == "redis":
        from tests.support.redis_server import RedisServer

        redis = RedisServer(work_dir / "redis").start()
        seconds = _load_redis(settings, redis.url(0), work_dir)
        print(
            f"redis: {len(customers):,} customers materialized in {seconds:.1f} s, "
            f"used_memory {redis.used_memory() / 2**20:,.0f} MB"
        )
    # The API process (spawned) reads its settings from this environment.
    os.environ["CAMPAIGN_ONLINE_STORE"] = kind
    if redis is not None:
        os.environ["CAMPAIGN_REDIS_URL"] = redis.url(0)
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    process = multiprocessing.get_context("spawn").Process(
        target=_serve, args=(port, str(work_dir)), daemon=True
    )
    process.start()
    rows = []
    try:
        health = _wait_healthy(url, process)
        print(
            f"API up on {kind}: models {health['models']}, released {health['released']}, "
            f"online store {health['online_store'].get('sampled', 0)} sampled / "
            f"{health['online_store'].get('stale', '?')} stale; campaign {campaign}; "
            f"{len(customers):,} customers; {os.cpu_count()} CPUs"
        )
        _level(url, token, campaign, customers, 1, args.warmup, 60, "warmup")
        for clients in args.clients:
            lat, stages, errors, wall = _level(
                url, token, campaign, customers, clients, args.requests, args.seconds, f"c{clients}"
            )
            if errors:
                print(f"{clients} clients: {len(errors)} errors, first: {errors[0]}")
            rows.append({"store": kind, **_row(clients, lat, stages, errors, wall)})
    finally:
        process.terminate()
        process.join(timeout=10)
        if redis is not None:
            redis.stop()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000, help="decisions per level")
    parser.add_argument("--seconds", type=float, default=30.0, help="time limit per level")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument(
        "--store", nargs="+", choices=["sqlite", "redis"], default=["sqlite"], help="online stores"
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args()

    import pandas as pd

    from orchestration.core.decisioning.campaigns import load_campaigns
    from orchestration.settings import Settings

    settings = Settings.from_env()
    customers_file = settings.raw_dir / "customers.parquet"
    if not customers_file.exists():
        raise SystemExit(f"{customers_file} is missing: run the pipeline first (`make run`)")
    customers = pd.read_parquet(customers_file, columns=["customer_id"])["customer_id"].to_numpy()
    enabled = [c for c in load_campaigns(settings.campaigns_dir).campaigns.values() if c.enabled]
    if not enabled:
        raise SystemExit(f"no enabled campaign under {settings.campaigns_dir}")
    campaign = sorted(enabled, key=lambda c: c.name)[0].name

    rows: list[dict] = []
    for kind in args.store:
        with tempfile.TemporaryDirectory(prefix=f"bench-api-{kind}-") as work_dir:
            rows += _bench_store(kind, args, settings, customers, campaign, Path(work_dir))
    _print(rows)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


def _row(clients, lat, stages, errors, wall) -> dict:
    def p(values, q):
        return float(np.percentile(values, q)) if values else float("nan")

    def stage(name):
        values = [s[name] for s in stages if name in s]
        return statistics.median(values) if values else float("nan")

    return {
        "clients": clients,
        "decisions": len(lat),
        "errors": len(errors),
        "seconds": round(wall, 2),
        "p50_ms": round(p(lat, 50), 2),
        "p99_ms": round(p(lat, 99), 2),
        "max_ms": round(max(lat), 2) if lat else float("nan"),
        "per_second": round(len(lat) / wall, 1) if wall else 0.0,
        "features_ms": round(stage("features"), 2),
        "score_ms": round(stage("score"), 2),
        "policy_ms": round(stage("policy"), 2),
        "server_total_ms": round(stage("total"), 2),
    }


def _print(rows: list[dict]) -> None:
    header = (
        f"{'store':<7} {'clients':>7} {'decisions':>9} {'err':>4} {'p50 ms':>7} {'p99 ms':>7} {'max ms':>7} "
        f"{'dec/s':>7} | server p50: {'features':>8} {'score':>6} {'policy':>6} {'total':>6}"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        print(
            f"{r['store']:<7} {r['clients']:>7} {r['decisions']:>9} {r['errors']:>4} {r['p50_ms']:>7.2f} "
            f"{r['p99_ms']:>7.2f} {r['max_ms']:>7.2f} {r['per_second']:>7.1f} |"
            f"              {r['features_ms']:>8.2f} {r['score_ms']:>6.2f} "
            f"{r['policy_ms']:>6.2f} {r['server_total_ms']:>6.2f}"
        )
    for store in dict.fromkeys(r["store"] for r in rows):
        mine = [r for r in rows if r["store"] == store]
        single = next((r for r in mine if r["clients"] == 1), None)
        best = max((r["per_second"] for r in mine), default=0.0)
        if single:
            verdict = "met" if single["p99_ms"] <= P99_TARGET_MS else "MISSED"
            print(
                f"{store}: p99 at 1 client: {single['p99_ms']:.2f} ms "
                f"(target <= {P99_TARGET_MS:g}): {verdict}"
            )
        verdict = "met" if best >= THROUGHPUT_TARGET else "MISSED"
        print(
            f"{store}: best throughput: {best:.0f} decisions/s "
            f"(target >= {THROUGHPUT_TARGET:g}): {verdict}"
        )


if __name__ == "__main__":
    main()
