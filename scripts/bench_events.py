"""Benchmark the events path's own cost: record an event, recount the customer's sessions from the
event store, push ``customer_sessions_rt`` to Feast (``PushMode.ONLINE``, the embedded packed
SQLite online store) and read it back through Feast, per event, in-process.

The decision itself (the policy engine per customer) is what ``scripts/bench_api.py`` measures;
this is what an event adds in front of it. Runs on a throw-away data directory (only the Feast
registry is applied; nothing else is needed).

    python scripts/bench_events.py [--events 1000] [--customers 200]
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _ms(values: list[float]) -> tuple[float, float]:
    array = np.asarray(values) * 1000
    return float(np.percentile(array, 50)), float(np.percentile(array, 99))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--customers", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["CAMPAIGN_DATA_DIR"] = str(Path(tmp) / "data")
        from orchestration.core.decisioning.realtime.event_store import EventStore
        from orchestration.core.decisioning.realtime.session_features import (
            SESSION_EVENT,
            FeastSessionFeatures,
            SessionFeatures,
        )
        from orchestration.core.features.feast_store import apply_feature_definitions
        from orchestration.settings import Settings

        settings = Settings.from_env()
        started = time.perf_counter()
        apply_feature_definitions(settings)
        apply_s = time.perf_counter() - started
        events = EventStore(settings.decisions_dir / "api" / "events.db")
        features = FeastSessionFeatures(settings)
        features.read(1)  # open the store once, as the service does at its first event
        rng = np.random.default_rng(0)
        now = datetime(2026, 3, 2, 12, tzinfo=UTC)
        stages: dict[str, list[float]] = {"record": [], "recount": [], "push": [], "read": []}
        totals = []
        for i in range(args.events):
            customer = int(rng.integers(1, args.customers + 1))
            at = now + timedelta(seconds=i)
            t0 = time.perf_counter()
            events.record(f"e-{i}", customer, SESSION_EVENT, at, at)
            t1 = time.perf_counter()
            as_of, last, count = events.sessions(customer, SESSION_EVENT)
            t2 = time.perf_counter()
            features.push(SessionFeatures(customer, last, count, as_of))
            t3 = time.perf_counter()
            read = features.read(customer)
            t4 = time.perf_counter()
            assert read is not None and read.sessions_24h == count
            for name, seconds in zip(stages, (t1 - t0, t2 - t1, t3 - t2, t4 - t3), strict=True):
                stages[name].append(seconds)
            totals.append(t4 - t0)
        events.close()
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"events={args.events} customers={args.customers} feast apply={apply_s:.1f}s")
    print(f"{'stage':<10} {'p50 ms':>8} {'p99 ms':>8}")
    for name, values in [*stages.items(), ("total", totals)]:
        p50, p99 = _ms(values)
        print(f"{name:<10} {p50:>8.2f} {p99:>8.2f}")
    print(f"events/s (one thread): {args.events / sum(totals):.0f}")
    print(f"peak RSS: {peak_mb:.0f} MB")


if __name__ == "__main__":
    main()
