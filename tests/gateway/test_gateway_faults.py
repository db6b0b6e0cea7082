"""Exactly-once delivery through the HTTP provider under injected faults, crashes and concurrency.

The stub provider (127.0.0.1) deduplicates by idempotency key like a real provider, and counts
what it accepted as new and what it saw again. Exactly-once means: every due message accepted
once, none lost, and the gateway did not even need the provider's dedup (reconciliation asked
first).
"""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd

from orchestration.core.delivery.dispatch import Gateway, RetryPolicy, route_for
from orchestration.core.delivery.http_provider import HttpProvider, parse_retry_after
from orchestration.core.delivery.ledger import SendLedger, idempotency_key
from orchestration.core.delivery.outbox import OutboxProvider
from orchestration.settings import PROJECT_DIR
from tests.gateway.raw_world import recipients, release, release_and_dispatch, write_raw

SEND_DATE = "2026-11-23"


class FakeClock:
    """Time that the gateway's backoff sleeps move forward, so retries cost no wall time."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)

    def advance(self, **kwargs) -> None:
        self.now += timedelta(**kwargs)


def _keys(ids, campaign="c1"):
    return {idempotency_key(campaign, i, "email", SEND_DATE) for i in ids}


def _gateway(tmp_path, stub, clock, timeout=0.3, failure_threshold=50, max_attempts=3, **kw):
    provider = HttpProvider(stub.url, token_env="STUB_PROVIDER_TOKEN", timeout_seconds=timeout)
    route = route_for(
        provider, batch_size=25, failure_threshold=failure_threshold, reset_seconds=0.5, **kw
    )
    return Gateway(
        SendLedger(tmp_path / "ledger.db"),
        {"email": route},
        tmp_path / "raw",
        retry=RetryPolicy(max_attempts=max_attempts, base_delay_seconds=0.05),
        clock=clock,
        sleep=clock.sleep,
        seed=1,
    )


def _drain(gateway: Gateway, clock: FakeClock, rounds: int = 30) -> None:
    """Later runs (the clock moves an hour between them) until nothing is due."""
    empty = recipients([])
    for _ in range(rounds):
        clock.advance(hours=1)
        report = release_and_dispatch(gateway, empty, SEND_DATE, "drain", campaigns=["c1"])
        if report.deferred_waiting == 0 and gateway.ledger.counts().get("due", 0) == 0:
            return
    raise AssertionError(f"still due after {rounds} runs: {gateway.ledger.counts()}")


def test_the_http_provider_sends_auth_and_an_idempotency_key(tmp_path, stub):
    write_raw(tmp_path / "raw", 30)
    clock = FakeClock()
    report = release_and_dispatch(
        _gateway(tmp_path, stub, clock), recipients(range(1, 31)), SEND_DATE, "r1"
    )
    assert report.delivered == 30
    assert set(stub.accepted) == _keys(range(1, 31))
    assert stub.requests == 2  # batches of 25
    assert all(len(k) == 32 for k in stub.batch_keys)
    assert stub.addresses[idempotency_key("c1", 7, "email", SEND_DATE)] == "u7@example.com"


def test_each_batch_and_message_carries_the_releasing_runs_traceparent(tmp_path, stub):
    from orchestration.core.observability.tracing import parse_traceparent, trace_id_for_run

    run_id = "0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0"
    write_raw(tmp_path / "raw", 30)
    gateway = _gateway(tmp_path, stub, FakeClock())
    release_and_dispatch(gateway, recipients(range(1, 31)), SEND_DATE, run_id)
    trace_id = trace_id_for_run(run_id)
    assert [parse_traceparent(h)[0] for h in stub.traceparents] == [trace_id, trace_id]
    assert {parse_traceparent(h)[0] for h in stub.message_traceparents.values()} == {trace_id}
    assert set(gateway.ledger.frame()["trace_id"]) == {trace_id}


def test_with_30_percent_faults_every_message_arrives_exactly_once(tmp_path, stub):
    write_raw(tmp_path / "raw", 1000)
    stub.faults.error_rate = 0.10
    stub.faults.throttle_rate = 0.10
    stub.faults.accept_then_timeout_rate = 0.10
    stub.faults.timeout_hold = 0.6
    clock = FakeClock()
    gateway = _gateway(tmp_path, stub, clock)
    first = release_and_dispatch(gateway, recipients(range(1, 1001)), SEND_DATE, "r1")
    _drain(gateway, clock)
    assert set(stub.accepted) == _keys(range(1, 1001))
    assert max(stub.accepted.values()) == 1
    assert sum(stub.duplicates.values()) == 0, "a message was sent again after it was accepted"
    assert gateway.ledger.counts() == {"delivered": 1000}
    # the faults really happened and were handled the intended way
    assert first.retried > 0
    assert first.reconciled > 0  # accepted-then-timed-out batches were looked up, not re-sent


def test_429_waits_at_least_retry_after(tmp_path, stub):
    write_raw(tmp_path / "raw", 5)
    stub.faults.script = ["429", "ok"]
    stub.faults.retry_after = 2.5
    clock = FakeClock()
    start = clock.now
    report = release_and_dispatch(
        _gateway(tmp_path, stub, clock), recipients(range(1, 6)), SEND_DATE, "r1"
    )
    assert report.delivered == 5 and report.retried == 5
    assert (clock.now - start).total_seconds() >= 2.5
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # in the past
    assert parse_retry_after("soon") is None


def test_permanent_rejection_fails_the_message_with_the_providers_answer(tmp_path, stub):
    write_raw(tmp_path / "raw", 3)
    stub.token = "another-token"  # every request answered 401
    clock = FakeClock()
    gateway = _gateway(tmp_path, stub, clock)
    report = release_and_dispatch(gateway, recipients([1, 2, 3]), SEND_DATE, "r1")
    assert (report.delivered, report.failed, report.retried) == (0, 3, 0)
    assert gateway.ledger.frame()["last_error"].str.contains("HTTP 401").all()


def test_breaker_opens_defers_the_rest_alerts_and_a_later_run_delivers(tmp_path, stub):
    write_raw(tmp_path / "raw", 200)
    stub.faults.outage = True
    clock = FakeClock()
    gateway = _gateway(tmp_path, stub, clock, failure_threshold=3, max_attempts=2)
    report = release_and_dispatch(gateway, recipients(range(1, 201)), SEND_DATE, "r1")
    assert report.delivered == 0
    assert report.deferred == 200 and report.deferred_waiting == 200
    assert report.breaker_state == {"http": "open"}
    assert [a["kind"] for a in report.alerts] == ["circuit_breaker"]
    assert stub.requests <= 3 + 1, "the open breaker must stop calls to the provider"
    assert gateway.ledger.counts() == {"due": 200}

    stub.faults.outage = False  # the provider recovers; the next scheduled run
    later = _gateway(tmp_path, stub, clock, failure_threshold=3)
    clock.advance(minutes=10)
    again = release_and_dispatch(later, recipients(range(1, 201)), SEND_DATE, "r2")
    assert again.newly_due == 0 and again.delivered == 200
    assert again.breaker_state == {"http": "closed"}
    assert set(stub.accepted) == _keys(range(1, 201)) and sum(stub.duplicates.values()) == 0


def test_open_breaker_uses_the_fallback_only_for_campaigns_that_allow_it(tmp_path, stub):
    write_raw(tmp_path / "raw", 40)
    stub.faults.outage = True
    clock = FakeClock()
    outbox = OutboxProvider(tmp_path / "outbox.db")
    provider = HttpProvider(stub.url, token_env="STUB_PROVIDER_TOKEN", timeout_seconds=0.3)
    route = route_for(
        provider,
        batch_size=10,
        failure_threshold=2,
        fallback=route_for(outbox, batch_size=10),
    )
    gateway = Gateway(
        SendLedger(tmp_path / "ledger.db"),
        {"email": route},
        tmp_path / "raw",
        retry=RetryPolicy(max_attempts=1, base_delay_seconds=0.0),
        fallback_allowed=lambda campaign: campaign == "urgent",
        clock=clock,
        sleep=clock.sleep,
    )
    both = pd.concat([recipients(range(1, 21), "urgent"), recipients(range(21, 41), "weekly")])
    report = release_and_dispatch(gateway, both, SEND_DATE, "r1")
    ledger = gateway.ledger.frame()
    urgent = ledger[ledger["campaign"] == "urgent"]
    weekly = ledger[ledger["campaign"] == "weekly"]
    # the batch that tripped the breaker is deferred; later urgent batches go to the outbox
    assert report.sent_by_fallback == outbox.received() > 0
    assert set(urgent.loc[urgent["status"] == "delivered", "provider"]) == {"outbox"}
    assert (weekly["status"] == "due").all()
    assert weekly["last_error"].str.startswith("breaker_open").sum() + weekly[
        "last_error"
    ].str.contains("retries_exhausted").sum() == len(weekly)


def test_opt_out_between_decision_and_dispatch_wins(tmp_path, stub):
    raw = write_raw(tmp_path / "raw", 10)
    clock = FakeClock()
    gateway = _gateway(tmp_path, stub, clock)
    release(gateway.ledger, recipients(range(1, 11)), SEND_DATE, "decided")
    consents = pd.read_parquet(raw / "consent_events.parquet")
    opt_out = pd.DataFrame(
        {
            "consent_event_id": [99],
            "customer_id": [3],
            "channel": ["email"],
            "is_opted_in": [False],
            "source": ["unsubscribe_link"],
            "consented_at": [pd.Timestamp(clock.now - timedelta(minutes=1))],
        }
    )
    pd.concat([consents, opt_out]).to_parquet(raw / "consent_events.parquet")
    report = release_and_dispatch(gateway, recipients(range(1, 11)), SEND_DATE, "dispatch")
    assert report.delivered == 9 and report.cancelled == 1
    assert idempotency_key("c1", 3, "email", SEND_DATE) not in stub.accepted
    row = gateway.ledger.frame().set_index("customer_id").loc[3]
    assert (row["status"], row["last_error"]) == ("cancelled", "consent_withdrawn_before_dispatch")


def test_kill_switch_and_disabled_campaign_stop_dispatch(tmp_path, stub, monkeypatch):
    write_raw(tmp_path / "raw", 10)
    clock = FakeClock()
    gateway = _gateway(tmp_path, stub, clock)
    monkeypatch.setenv("CAMPAIGN_SENDS_DISABLED", "1")
    stopped = release_and_dispatch(gateway, recipients(range(1, 11)), SEND_DATE, "r1")
    assert stopped.stopped_by_kill_switch and stub.requests == 0
    assert gateway.ledger.counts() == {"due": 10}  # recorded, not lost
    monkeypatch.delenv("CAMPAIGN_SENDS_DISABLED")
    gateway.campaign_is_live = lambda name: False  # enabled: false since the decision
    disabled = release_and_dispatch(gateway, recipients(range(1, 11)), SEND_DATE, "r2")
    assert disabled.cancelled == 10 and stub.requests == 0


# --- separate processes: SIGKILL and concurrency ---------------------------------------


def _worker(tmp_path: Path, url: str, run_id: str, n: int) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(PROJECT_DIR)}
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.gateway.send_worker",
            str(tmp_path / "ledger.db"),
            str(tmp_path / "raw"),
            url,
            run_id,
            str(n),
        ],
        cwd=PROJECT_DIR,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_sigkill_at_random_points_then_rerun_delivers_each_message_once(tmp_path, stub):
    n = 4000
    write_raw(tmp_path / "raw", n)
    stub.faults.latency = 0.05  # ~400 messages/s: a kill lands mid-dispatch
    stub.faults.error_rate = 0.05
    stub.faults.accept_then_timeout_rate = 0.05
    stub.faults.timeout_hold = 0.8
    rng = random.Random(20261124)
    kills = attempts = 0
    while kills < 20 and attempts < 40:
        attempts += 1
        worker = _worker(tmp_path, stub.url, f"run-{attempts}", n)
        assert worker.stdout.readline().strip() == "ready", worker.stderr.read()
        time.sleep(rng.uniform(0.02, 0.6))
        if worker.poll() is None:
            worker.send_signal(signal.SIGKILL)
            kills += 1
        worker.wait(timeout=30)
    assert kills >= 20, f"only {kills} kills landed while dispatching"
    clock = FakeClock()
    gateway = _gateway(tmp_path, stub, clock, timeout=0.5)
    stub.faults.latency = 0.0
    release_and_dispatch(gateway, recipients([]), SEND_DATE, "final", campaigns=["c1"])
    stub.faults.error_rate = stub.faults.accept_then_timeout_rate = 0.0
    _drain(gateway, clock)
    assert set(stub.accepted) == _keys(range(1, n + 1)), "a message was lost"
    assert max(stub.accepted.values()) == 1
    assert sum(stub.duplicates.values()) == 0, "a message was sent twice after a crash"
    assert gateway.ledger.counts() == {"delivered": n}


def test_two_send_runs_started_together_send_nothing_twice(tmp_path, stub):
    n = 2000
    write_raw(tmp_path / "raw", n)
    stub.faults.latency = 0.005
    workers = [_worker(tmp_path, stub.url, f"run-{i}", n) for i in range(2)]
    outputs = [w.communicate(timeout=120) for w in workers]
    assert [w.returncode for w in workers] == [0, 0], outputs
    delivered = [int(out.split()[-2]) for out, _ in outputs]
    assert sum(delivered) == n, delivered  # each message delivered by exactly one run
    assert set(stub.accepted) == _keys(range(1, n + 1))
    assert sum(stub.duplicates.values()) == 0
    ledger = SendLedger(tmp_path / "ledger.db")
    assert ledger.counts() == {"delivered": n}


def test_smtp_provider_delivers_to_a_local_smtp_server(tmp_path):
    from aiosmtpd.controller import Controller

    from orchestration.core.delivery.smtp_provider import SmtpProvider

    received = []

    class Handler:
        async def handle_DATA(self, server, session, envelope):  # noqa: N802
            received.append(envelope)
            return "250 OK"

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        write_raw(tmp_path / "raw", 3)
        smtp = SmtpProvider("127.0.0.1", port, sender="campaigns@example.org")
        ledger = SendLedger(tmp_path / "ledger.db")
        gateway = Gateway(ledger, {"email": route_for(smtp)}, tmp_path / "raw")
        report = release_and_dispatch(gateway, recipients([1, 2, 3]), SEND_DATE, "r1")
    finally:
        controller.stop()
    assert report.delivered == 3
    assert sorted(e.rcpt_tos[0] for e in received) == [f"u{i}@example.com" for i in (1, 2, 3)]
    key = idempotency_key("c1", 1, "email", SEND_DATE)
    assert any(f"Message-ID: <{key}@campaigns.invalid>" in e.content.decode() for e in received)
