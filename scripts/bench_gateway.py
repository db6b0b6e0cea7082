"""Gateway throughput: messages/s into the local outbox and into the local HTTP stub (batched).

Each figure is one release of N fresh messages and one ``Gateway.dispatch_due`` (consent re-check, address join, rate
limit, dispatch, ledger marks) of N fresh messages, rate limits set out of the way. The stub
runs in this process on 127.0.0.1 (threaded http.server), so the HTTP figure includes the
stub's own JSON work.

    python scripts/bench_gateway.py --messages 100000 --batch 500
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from orchestration.core.delivery.dispatch import Gateway, route_for  # noqa: E402
from orchestration.core.delivery.http_provider import HttpProvider  # noqa: E402
from orchestration.core.delivery.ledger import SendLedger  # noqa: E402
from orchestration.core.delivery.outbox import OutboxProvider  # noqa: E402
from tests.gateway.raw_world import (  # noqa: E402
    recipients,
    release_and_dispatch,
    write_raw,
)
from tests.gateway.stub_provider import StubProvider  # noqa: E402


def run(name: str, provider, root: Path, n: int, batch: int) -> None:
    route = route_for(provider, rate_per_second=1e9, batch_size=batch)
    gateway = Gateway(SendLedger(root / f"{name}_ledger.db"), {"email": route}, root / "raw")
    started = time.perf_counter()
    report = release_and_dispatch(
        gateway, recipients(range(1, n + 1)), "2026-11-24", f"bench-{name}"
    )
    seconds = time.perf_counter() - started
    print(
        f"{name:8s} {report.delivered:>9,d} delivered in {seconds:6.1f} s = "
        f"{report.delivered / seconds:>8,.0f} msg/s  (batch {batch}, provider p50 "
        f"{report.latency_p50_ms:.1f} ms, p99 {report.latency_p99_ms:.1f} ms per batch)"
    )
    assert report.delivered == n, report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=500)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_raw(root / "raw", args.messages)
        print(f"gateway benchmark: {args.messages:,} messages, {os.cpu_count()} cores")
        run("outbox", OutboxProvider(root / "outbox.db"), root, args.messages, args.batch)
        stub = StubProvider(token="bench")
        stub.start()
        os.environ["BENCH_STUB_TOKEN"] = "bench"
        try:
            http = HttpProvider(stub.url, token_env="BENCH_STUB_TOKEN", timeout_seconds=30)
            run("http", http, root, args.messages, args.batch)
        finally:
            stub.stop()


if __name__ == "__main__":
    main()
