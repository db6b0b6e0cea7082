"""A send run in its own process, for the crash and concurrency tests.

``python -m tests.gateway.send_worker <ledger> <raw_dir> <provider_url> <run_id> <n>`` records
customers 1..n of campaign c1 as a released run would (due) and dispatches through the HTTP provider (batches of 20).
"""

from __future__ import annotations

import sys
from pathlib import Path

from orchestration.core.delivery.dispatch import Gateway, RetryPolicy, route_for
from orchestration.core.delivery.http_provider import HttpProvider
from orchestration.core.delivery.ledger import SendLedger
from tests.gateway.raw_world import recipients, release_and_dispatch


def main(ledger_path: str, raw_dir: str, url: str, run_id: str, n: str) -> None:
    provider = HttpProvider(url, token_env="STUB_PROVIDER_TOKEN", timeout_seconds=0.5)
    route = route_for(provider, batch_size=20, failure_threshold=50)
    gateway = Gateway(
        SendLedger(Path(ledger_path)),
        {"email": route},
        Path(raw_dir),
        retry=RetryPolicy(max_attempts=3, base_delay_seconds=0.01, max_delay_seconds=0.2),
    )
    print("ready", flush=True)  # imports done: the test kills from here on
    report = release_and_dispatch(gateway, recipients(range(1, int(n) + 1)), "2026-11-23", run_id)
    print(report.delivered, report.deferred_waiting, flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:6])
