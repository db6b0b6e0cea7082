"""Deliver released messages exactly once, whatever fails: the gateway's dispatch loop.

For every batch of due messages of a standing release it claims from the ledger:

1. stop at once if the kill switch is on or the campaign was disabled since the decision;
2. re-check consent and suppression as of now (an opt-out after the decision wins);
3. reconcile messages an earlier attempt handed to the provider without recording the outcome
   (ask the provider by idempotency key; never re-send what it already holds);
4. join contact details (here and nowhere else), wait for the provider's rate limit, record the
   batch as dispatched, and send it through the channel's circuit breaker, retrying 429/5xx/
   timeouts with exponential backoff and jitter, honouring ``Retry-After``;
5. record each message's outcome. What cannot go now (breaker open, retries exhausted, quiet
   hours) stays due with a ``not_before`` time: deferred, never dropped.

Contact details go to the provider only: the report carries counts and figures, never addresses.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pybreaker

from orchestration.core.delivery.consent_guard import ConsentGuard
from orchestration.core.delivery.ledger import (
    CANCELLED,
    DELIVERED,
    FAILED,
    DueMessage,
    SendLedger,
    worker_id,
)
from orchestration.core.delivery.providers import (
    OutgoingMessage,
    Provider,
    ProviderError,
    ProviderResult,
)
from orchestration.core.delivery.pseudonyms import recipient_ref
from orchestration.core.delivery.rate_limit import TokenBucket
from orchestration.core.world.contract import raw_path
from orchestration.settings import Settings

KILL_SWITCH_ENV = "CAMPAIGN_SENDS_DISABLED"
KILL_SWITCH_FILE = "SENDS_DISABLED"
NO_CONTACT_POINT = "no_verified_contact_point"
UNCONFIRMED = "outcome_unknown_provider_cannot_confirm"


def kill_switch_on(gateway_dir: Path | None = None) -> bool:
    """The environment variable (for a deployment) or a file (to stop a dispatch already running:
    ``touch data/gateway/SENDS_DISABLED``)."""
    if Settings.from_env().sends_disabled:  # KILL_SWITCH_ENV, read at each check
        return True
    return gateway_dir is not None and (Path(gateway_dir) / KILL_SWITCH_FILE).exists()


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 4
    base_delay_seconds: float = 0.5
    max_delay_seconds: float = 30.0

    def delay(self, attempt: int, retry_after: float | None, rng: random.Random) -> float:
        """Full-jitter exponential backoff; a provider's ``Retry-After`` is a floor."""
        ceiling = min(self.max_delay_seconds, self.base_delay_seconds * 2 ** (attempt - 1))
        return max(retry_after or 0.0, rng.uniform(0, ceiling))


@dataclass
class Route:
    """How one channel is delivered: a provider behind its rate limit and circuit breaker."""

    provider: Provider
    bucket: TokenBucket
    breaker: pybreaker.CircuitBreaker
    batch_size: int = 500
    fallback: Route | None = None


def make_breaker(
    name: str, failure_threshold: int, reset_seconds: float
) -> pybreaker.CircuitBreaker:
    """Consecutive transient failures open it; a permanent (4xx) answer is not the provider's
    fault and does not count."""
    return pybreaker.CircuitBreaker(
        fail_max=failure_threshold,
        reset_timeout=reset_seconds,
        exclude=[lambda exc: isinstance(exc, ProviderError) and not exc.transient],
        name=name,
    )


def route_for(
    provider: Provider,
    rate_per_second: float = 1e6,
    batch_size: int = 500,
    failure_threshold: int = 5,
    reset_seconds: float = 300.0,
    fallback: Route | None = None,
) -> Route:
    return Route(
        provider=provider,
        bucket=TokenBucket(rate_per_second, capacity=max(rate_per_second, batch_size)),
        breaker=make_breaker(provider.name, failure_threshold, reset_seconds),
        batch_size=batch_size,
        fallback=fallback,
    )


@dataclass
class DeliveryReport:
    requested: int = 0
    newly_due: int = 0
    already_in_ledger: int = 0
    attempted: int = 0
    delivered: int = 0
    deferred: int = 0
    failed: int = 0
    cancelled: int = 0
    retried: int = 0
    duplicates_prevented: int = 0
    reconciled: int = 0
    sent_by_fallback: int = 0
    # Due messages of these campaigns still waiting for a later time after this run.
    deferred_waiting: int = 0
    stopped_by_kill_switch: bool = False
    seconds: float = 0.0
    failures_by_reason: dict[str, int] = field(default_factory=dict)
    breaker_state: dict[str, str] = field(default_factory=dict)
    alerts: list[dict] = field(default_factory=list)
    latencies_ms: list[float] = field(default_factory=list, repr=False)

    def count_failure(self, reason: str, n: int = 1) -> None:
        self.failures_by_reason[reason] = self.failures_by_reason.get(reason, 0) + n

    @property
    def latency_p50_ms(self) -> float:
        return float(np.percentile(self.latencies_ms, 50)) if self.latencies_ms else 0.0

    @property
    def latency_p99_ms(self) -> float:
        return float(np.percentile(self.latencies_ms, 99)) if self.latencies_ms else 0.0

    def as_metadata(self) -> dict[str, int | float | str]:
        out: dict[str, int | float | str] = {
            k: v
            for k, v in self.__dict__.items()
            if isinstance(v, int | float)
            and not isinstance(v, bool)
            # what was enqueued is the release's to report (campaign_release metadata)
            and k not in ("requested", "newly_due", "already_in_ledger")
        }
        out["seconds"] = round(self.seconds, 3)
        out["stopped_by_kill_switch"] = str(self.stopped_by_kill_switch)
        out["provider_latency_p50_ms"] = round(self.latency_p50_ms, 2)
        out["provider_latency_p99_ms"] = round(self.latency_p99_ms, 2)
        out["breaker_state"] = (
            ", ".join(f"{k}={v}" for k, v in sorted(self.breaker_state.items())) or "none"
        )
        out.update({f"failed_{k}": v for k, v in self.failures_by_reason.items()})
        return out


class AddressBook:
    """Verified addresses per (customer, channel), read from the contact table.

    Loaded once into an in-memory DuckDB table (reloaded when the file changes) so each batch is
    a small join, not a scan of the whole contact table.
    """

    def __init__(self, raw_dir: Path):
        self.path = raw_path(raw_dir, "contact_points")
        self._con = None
        self._stamp: float | None = None

    def _load(self) -> None:
        import duckdb

        stamp = self.path.stat().st_mtime
        if self._con is not None and stamp == self._stamp:
            return
        if self._con is None:
            self._con = duckdb.connect()
        self._con.execute(
            "create or replace table contacts as select customer_id, channel, address"
            " from read_parquet($path) where is_verified",
            {"path": str(self.path)},
        )
        self._stamp = stamp

    def lookup(self, customer_ids: list[int], channel: str) -> dict[int, str]:
        if not customer_ids:
            return {}
        self._load()
        assert self._con is not None
        self._con.register("wanted", pd.DataFrame({"customer_id": customer_ids}))
        rows = self._con.execute(
            "select c.customer_id, c.address from contacts c join wanted using (customer_id)"
            " where c.channel = $channel",
            {"channel": channel},
        ).fetchall()
        self._con.unregister("wanted")
        return {int(cid): address for cid, address in rows}


Outcome = tuple[str, str, str, str | None, str | None]


class Gateway:
    """Dispatches what the ledger holds as due, through the route of each message's channel."""

    def __init__(
        self,
        ledger: SendLedger,
        routes: dict[str, Route],
        raw_dir: Path,
        retry: RetryPolicy | None = None,
        gateway_dir: Path | None = None,
        campaign_is_live: Callable[[str], bool] = lambda name: True,
        fallback_allowed: Callable[[str], bool] = lambda name: False,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        sleep: Callable[[float], None] = time.sleep,
        seed: int | None = None,
    ):
        self.ledger = ledger
        self.routes = routes
        self.raw_dir = Path(raw_dir)
        self.retry = retry or RetryPolicy()
        self.gateway_dir = gateway_dir
        self.campaign_is_live = campaign_is_live
        self.fallback_allowed = fallback_allowed
        self.clock = clock
        self.sleep = sleep
        self.rng = random.Random(seed)
        self.guard = ConsentGuard(self.raw_dir, clock=clock)
        self.addresses = AddressBook(self.raw_dir)

    # --- the loop -----------------------------------------------------------------------
    def dispatch_due(self, run_id: str, campaigns: list[str]) -> DeliveryReport:
        """Dispatch every due message of these campaigns whose time has come, under a standing
        release (the ledger claims nothing else), including rows a crashed or failed dispatch
        left behind. Nothing here records messages: only a release enqueues them."""
        started = time.perf_counter()
        report = DeliveryReport()
        names = sorted(set(campaigns))
        worker = worker_id(run_id)
        tried: set[str] = set()
        batch = max(r.batch_size for r in self.routes.values()) if self.routes else 500
        while names:
            if kill_switch_on(self.gateway_dir):
                report.stopped_by_kill_switch = True
                break
            claimed = self.ledger.claim_due(worker, limit=batch, campaigns=names, now=self.clock())
            # One attempt per message per run: what this run deferred waits for a later run.
            again = [m.idempotency_key for m in claimed if m.idempotency_key in tried]
            if again:
                self.ledger.release(again)
            fresh = [m for m in claimed if m.idempotency_key not in tried]
            if not fresh:
                break
            tried.update(m.idempotency_key for m in fresh)
            self._dispatch(fresh, report)
        report.deferred_waiting = self.ledger.deferred(names, now=self.clock()) if names else 0
        for route in self.routes.values():
            report.breaker_state[route.provider.name] = route.breaker.current_state
        report.seconds = time.perf_counter() - started
        return report

    def _dispatch(self, claimed: list[DueMessage], report: DeliveryReport) -> None:
        outcomes: list[Outcome] = []
        # asked once per campaign and batch: the answer may read campaign files
        is_live = {name: self.campaign_is_live(name) for name in {m.campaign for m in claimed}}
        live = [m for m in claimed if is_live[m.campaign]]
        stopped = [m for m in claimed if not is_live[m.campaign]]
        for m in stopped:
            outcomes.append((m.idempotency_key, CANCELLED, "", None, "campaign_disabled"))
        report.cancelled += len(stopped)
        if stopped:
            report.count_failure("campaign_disabled", len(stopped))

        blocked = self.guard.blocked(
            pd.DataFrame(
                [(m.customer_id, m.channel) for m in live], columns=["customer_id", "channel"]
            )
        )
        sendable = []
        for m in live:
            reason = blocked.get((m.customer_id, m.channel))
            if reason:
                outcomes.append((m.idempotency_key, CANCELLED, "", None, reason))
                report.cancelled += 1
                report.count_failure(reason)
            else:
                sendable.append(m)
        self.ledger.mark(outcomes)

        by_channel: dict[str, list[DueMessage]] = {}
        for m in sendable:
            by_channel.setdefault(m.channel, []).append(m)
        for channel, messages in by_channel.items():
            route = self.routes.get(channel)
            if route is None:
                self._fail(messages, f"no_route_for_{channel}", "", report)
                continue
            for start in range(0, len(messages), route.batch_size):
                self._send_through(route, messages[start : start + route.batch_size], report)

    # --- one batch on one route --------------------------------------------------------
    def _fail(self, messages: list, reason: str, provider: str, report) -> None:
        self.ledger.mark([(m.idempotency_key, FAILED, provider, None, reason) for m in messages])
        report.failed += len(messages)
        report.count_failure(reason, len(messages))

    def _defer(self, messages: list[DueMessage], seconds: float, reason: str, report) -> None:
        if not messages:
            return
        self.ledger.defer(
            [m.idempotency_key for m in messages],
            self.clock() + timedelta(seconds=seconds),
            reason,
        )
        report.deferred += len(messages)

    def _reconcile(
        self, route: Route, messages: list[DueMessage], report: DeliveryReport
    ) -> list[DueMessage]:
        """Messages an earlier attempt may have delivered: ask before sending them again."""
        uncertain = [m for m in messages if m.dispatched_at]
        if not uncertain:
            return messages
        provider = route.provider
        if not provider.supports_lookup:
            self._fail(uncertain, UNCONFIRMED, provider.name, report)
            return [m for m in messages if not m.dispatched_at]
        found = self._accept_held(provider, uncertain, report)
        return [m for m in messages if m.idempotency_key not in found]

    def _send_through(self, route: Route, messages: list[DueMessage], report) -> None:
        provider = route.provider
        if route.breaker.current_state == pybreaker.STATE_OPEN:
            # Not tried on this route now; only messages no attempt ever handed over may fall back.
            clean = [m for m in messages if not m.dispatched_at]
            unsure = [m for m in messages if m.dispatched_at]
            self._breaker_open(route, clean, unsure, report)
            return
        try:
            messages = self._reconcile(route, messages, report)
        except ProviderError as exc:
            # Cannot ask now: the uncertain ones wait (still uncertain), the rest may go.
            uncertain = [m for m in messages if m.dispatched_at]
            self._defer(uncertain, self._backoff(1, exc.retry_after), "reconcile_failed", report)
            messages = [m for m in messages if not m.dispatched_at]
        if not messages:
            return
        addresses = self.addresses.lookup([m.customer_id for m in messages], messages[0].channel)
        unreachable = [m for m in messages if m.customer_id not in addresses]
        if unreachable:
            self._fail(unreachable, NO_CONTACT_POINT, provider.name, report)
        pending = [
            OutgoingMessage(
                m.idempotency_key,
                m.campaign,
                m.customer_id,
                m.channel,
                addresses[m.customer_id],
                template=m.template or m.campaign,
                recipient_ref=recipient_ref(m.customer_id),
                trace_id=m.trace_id,
            )
            for m in messages
            if m.customer_id in addresses
        ]
        due_by_key = {m.idempotency_key: m for m in messages}
        attempt = 0
        while pending:
            attempt += 1
            route.bucket.acquire(len(pending))
            self.ledger.mark_dispatched([m.idempotency_key for m in pending])
            report.attempted += len(pending) if attempt == 1 else 0
            started = time.perf_counter()
            try:
                results = route.breaker.call(provider.send_batch, pending)
            except pybreaker.CircuitBreakerError as err:
                self._tripped(route, pending, started, err.__cause__, due_by_key, report)
                return
            except ProviderError as exc:
                pending = self._retry_or_settle(
                    route, pending, started, exc, attempt, due_by_key, report
                )
                continue
            report.latencies_ms.append((time.perf_counter() - started) * 1000)
            self._record(results, provider.name, report)
            pending = []

    def _unanswered(
        self,
        route: Route,
        pending: list[OutgoingMessage],
        started: float,
        error: ProviderError | None,
        report: DeliveryReport,
    ) -> list[OutgoingMessage]:
        """After a failed attempt: record its latency and whatever the provider answered before
        ``error`` (none when the cause is unknown); the messages still unanswered."""
        report.latencies_ms.append((time.perf_counter() - started) * 1000)
        if error is None:
            return pending
        self._record(error.partial, route.provider.name, report)
        answered = {r.idempotency_key for r in error.partial}
        return [m for m in pending if m.idempotency_key not in answered]

    def _tripped(
        self,
        route: Route,
        pending: list[OutgoingMessage],
        started: float,
        cause: BaseException | None,
        due_by_key: dict[str, DueMessage],
        report: DeliveryReport,
    ) -> None:
        """The attempt opened the breaker: what the provider may hold is settled first (after a
        timeout), the rest fall back or wait (:meth:`_breaker_open`)."""
        error = cause if isinstance(cause, ProviderError) else None
        pending = self._unanswered(route, pending, started, error, report)
        unsure: list[OutgoingMessage] = []
        if error is not None and error.uncertain:
            unsure = self._settle_uncertain(route, pending, report)
            pending = []
        self._breaker_open(
            route,
            [due_by_key[m.idempotency_key] for m in pending],
            [due_by_key[m.idempotency_key] for m in unsure],
            report,
        )

    def _retry_or_settle(
        self,
        route: Route,
        pending: list[OutgoingMessage],
        started: float,
        exc: ProviderError,
        attempt: int,
        due_by_key: dict[str, DueMessage],
        report: DeliveryReport,
    ) -> list[OutgoingMessage]:
        """The attempt failed without opening the breaker: the messages to send again (after the
        retry delay, already slept), or none when they failed, were deferred or were held."""
        provider = route.provider
        pending = self._unanswered(route, pending, started, exc, report)
        if not exc.transient:
            self._fail(
                [due_by_key[m.idempotency_key] for m in pending],
                f"rejected: {exc}",
                provider.name,
                report,
            )
            return []
        if exc.uncertain:
            pending = self._settle_uncertain(route, pending, report)
        if not pending:
            return []
        waiting = [due_by_key[m.idempotency_key] for m in pending]
        if attempt >= self.retry.max_attempts:
            self._defer(
                waiting,
                self._backoff(attempt, exc.retry_after),
                "retries_exhausted",
                report,
            )
            return []
        delay = self.retry.delay(attempt, exc.retry_after, self.rng)
        if delay > self.retry.max_delay_seconds:
            # The provider asked for longer than we wait inside a run.
            self._defer(waiting, delay, "provider_retry_after", report)
            return []
        report.retried += len(pending)
        self.sleep(delay)
        return pending

    def _settle_uncertain(
        self, route: Route, pending: list[OutgoingMessage], report: DeliveryReport
    ) -> list[OutgoingMessage]:
        """After a timeout the provider may hold the batch: ask before any retry."""
        provider = route.provider
        if not provider.supports_lookup:
            self._fail(pending, UNCONFIRMED, provider.name, report)
            return []
        try:
            found = self._accept_held(provider, pending, report)
        except ProviderError:
            return pending  # still unknown: the retry goes out with the same keys (provider dedups)
        return [m for m in pending if m.idempotency_key not in found]

    def _accept_held(self, provider: Provider, messages: list, report: DeliveryReport) -> set[str]:
        """Ask the provider which of ``messages`` it already holds; record those as delivered."""
        found = provider.lookup([m.idempotency_key for m in messages])
        self.ledger.mark([(k, DELIVERED, provider.name, found[k], None) for k in sorted(found)])
        report.reconciled += len(found)
        report.duplicates_prevented += len(found)
        report.delivered += len(found)
        return set(found)

    def _record(self, results: list[ProviderResult], provider: str, report) -> None:
        outcomes: list[Outcome] = []
        for r in results:
            report.duplicates_prevented += int(r.duplicate)
            if r.accepted:
                outcomes.append(
                    (r.idempotency_key, DELIVERED, provider, r.provider_message_id, None)
                )
                report.delivered += 1
            else:
                outcomes.append((r.idempotency_key, FAILED, provider, None, r.error))
                report.failed += 1
                report.count_failure(r.error or "rejected")
        self.ledger.mark(outcomes)

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        """How long a deferred message waits before a later run may try it (at least 1 s)."""
        return max(1.0, retry_after or 0.0, self.retry.base_delay_seconds * 2**attempt)

    def _breaker_open(
        self,
        route: Route,
        clean: list[DueMessage],
        unsure: list[DueMessage],
        report: DeliveryReport,
    ) -> None:
        """The provider is down: raise the alert, send ``clean`` messages (certainly not held by
        the provider) through the fallback where the campaign allows it, defer everything else."""
        name = route.provider.name
        if not any(a["provider"] == name for a in report.alerts):
            report.alerts.append(
                {
                    "kind": "circuit_breaker",
                    "provider": name,
                    "state": "open",
                    "failures": route.breaker.fail_counter,
                    "reset_seconds": route.breaker.reset_timeout,
                }
            )
        held = list(unsure)
        if route.fallback is not None:
            allowed = [m for m in clean if self.fallback_allowed(m.campaign)]
            held += [m for m in clean if not self.fallback_allowed(m.campaign)]
            if allowed:
                before = report.delivered
                self._send_through(route.fallback, allowed, report)
                report.sent_by_fallback += report.delivered - before
        else:
            held += clean
        self._defer(held, route.breaker.reset_timeout, f"breaker_open:{name}", report)
