"""From the gateway configuration to live routes: one provider, rate limit and breaker each.

A provider named by several channels is one object with one token bucket and one breaker, so
its rate limit and its health are shared, as they are at the real provider.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from orchestration.core.delivery.config import GatewayConfig, ProviderConfig
from orchestration.core.delivery.dispatch import Gateway, RetryPolicy, Route, make_breaker
from orchestration.core.delivery.http_provider import HttpProvider
from orchestration.core.delivery.ledger import SendLedger
from orchestration.core.delivery.outbox import OutboxProvider
from orchestration.core.delivery.providers import Provider
from orchestration.core.delivery.rate_limit import TokenBucket
from orchestration.core.delivery.smtp_provider import SmtpProvider


def make_provider(name: str, config: ProviderConfig, gateway_dir: Path) -> Provider:
    if config.type == "outbox":
        outbox = OutboxProvider(gateway_dir / "outbox.db")
        outbox.name = name if name != "outbox" else outbox.name
        return outbox
    if config.type == "http":
        return HttpProvider(config.url or "", config.token_env, config.timeout_seconds, name=name)
    return SmtpProvider(
        config.host or "",
        config.port,
        config.sender,
        config.timeout_seconds,
        config.starttls,
        config.username_env,
        config.password_env,
        name=name,
    )


def build_routes(config: GatewayConfig, gateway_dir: Path) -> dict[str, Route]:
    """channel -> Route, with the channel's fallback route attached when one is configured."""
    used = {r.provider for r in config.channels.values()} | {
        r.fallback for r in config.channels.values() if r.fallback
    }
    parts = {}
    for name in sorted(used):
        pc = config.providers[name]
        parts[name] = (
            make_provider(name, pc, gateway_dir),
            TokenBucket(pc.rate_per_second, capacity=pc.burst or max(pc.rate_per_second, 1)),
            make_breaker(name, config.breaker.failure_threshold, config.breaker.reset_seconds),
            pc.batch_size,
        )

    def route(name: str, fallback: Route | None = None) -> Route:
        provider, bucket, breaker, batch = parts[name]
        return Route(provider, bucket, breaker, batch, fallback)

    return {
        channel: route(r.provider, route(r.fallback) if r.fallback else None)
        for channel, r in config.channels.items()
    }


def build_gateway(
    config: GatewayConfig,
    ledger: SendLedger,
    raw_dir: Path,
    gateway_dir: Path,
    campaign_is_live: Callable[[str], bool],
    fallback_allowed: Callable[[str], bool],
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> Gateway:
    return Gateway(
        ledger,
        build_routes(config, gateway_dir),
        raw_dir,
        retry=RetryPolicy(
            config.retry.max_attempts,
            config.retry.base_delay_seconds,
            config.retry.max_delay_seconds,
        ),
        gateway_dir=gateway_dir,
        campaign_is_live=campaign_is_live,
        fallback_allowed=fallback_allowed,
        clock=clock,
    )
