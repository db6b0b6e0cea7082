"""Sends: each campaign's selected rows go through the messaging gateway, exactly once per
(campaign, customer, channel, day). A thin shell over ``orchestration.core.delivery``."""

from datetime import date, timedelta

import pandas as pd
from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetSelection,
    MaterializeResult,
    MetadataValue,
    ScheduleDefinition,
    asset,
    define_asset_job,
)

from orchestration.defs.run_artifacts import DecisionBatch
from orchestration.resources import CampaignSettings, MessagingGateway
from orchestration.settings import Settings

GROUP = "delivery"
OWNER = "team:crm"


def _audience_keys() -> list[AssetKey]:
    """Every campaign's audience asset (``defs/campaigns.py`` names them ``audience/<name>``)."""
    from orchestration.core.decisioning.campaigns import load_campaigns

    names = sorted(load_campaigns(Settings.from_env().campaigns_dir).campaigns)
    return [AssetKey(["audience", name]) for name in names]


@asset(
    deps=[
        AssetKey(["raw", "contact_points"]),
        AssetKey(["raw", "consent_events"]),
        AssetKey(["raw", "suppressions"]),
        *_audience_keys(),
    ],
    group_name=GROUP,
    owners=[OWNER],
    kinds={"sqlite"},
    description=(
        "Hands each live campaign's `send` and `deferred` decisions to the messaging gateway. The "
        "ledger records a message as due before dispatch and delivered after; uncertain messages "
        "are reconciled with the provider before any retry; 429/5xx/timeouts are retried with "
        "backoff, a circuit breaker defers the rest when a provider is down; consent and "
        "suppression are re-checked at dispatch. A second run on the same day sends nothing new. "
        "The kill switch (CAMPAIGN_SENDS_DISABLED=1 or the file data/gateway/SENDS_DISABLED), "
        "`enabled: false` and `dry_run: true` stop dispatch."
    ),
)
def campaign_sends(
    context: AssetExecutionContext,
    campaign_decisions: DecisionBatch,
    settings: CampaignSettings,
    gateway: MessagingGateway,
) -> MaterializeResult:
    from orchestration.core.decisioning.campaigns import load_campaigns
    from orchestration.core.delivery.build import build_gateway
    from orchestration.core.delivery.dispatch import KILL_SWITCH_ENV, kill_switch_on

    s = settings.get()
    decisions = pd.read_parquet(campaign_decisions.path)
    if kill_switch_on(s.gateway_dir):
        context.log.warning(f"kill switch on ({KILL_SWITCH_ENV} or SENDS_DISABLED): nothing sent")
        return MaterializeResult(metadata={"kill_switch": True, "delivered": 0})

    def live_campaigns() -> dict:
        loaded = load_campaigns(s.campaigns_dir).campaigns
        return {n: c for n, c in loaded.items() if c.enabled and not c.dry_run}

    live = live_campaigns()
    chosen = (
        decisions[decisions["decision"].isin(["send", "deferred"])] if len(decisions) else decisions
    )
    dry = sorted(set(chosen["campaign"].unique()) - set(live)) if len(chosen) else []
    for name in dry:
        context.log.info(f"campaign {name} is a dry run or disabled: its decisions are not sent")
    chosen = chosen[chosen["campaign"].isin(live)] if len(chosen) else chosen
    recipients = chosen[["campaign", "customer_id", "channel"]].copy()
    recipients["not_before"] = (
        pd.to_datetime(chosen["deferred_until"], utc=True) if "deferred_until" in chosen else pd.NaT
    )

    ledger = gateway.ledger(s)
    # A message not delivered within a day of its decision is stale: cancelled, never sent late.
    expired = ledger.expire_before(
        (date.fromisoformat(campaign_decisions.send_date) - timedelta(days=1)).isoformat()
    )
    config = gateway.config(s)
    dispatcher = build_gateway(
        config,
        ledger,
        s.raw_dir,
        s.gateway_dir,
        # re-read at each batch: `enabled: false` stops a dispatch already under way
        campaign_is_live=lambda name: name in live_campaigns(),
        fallback_allowed=lambda name: bool(getattr(live.get(name), "allow_fallback", False)),
        clock=s.now,
    )
    report = dispatcher.deliver(
        recipients,
        send_date=campaign_decisions.send_date,
        run_id=context.run.run_id,
        campaigns=sorted(live),
    )
    for alert in report.alerts:
        context.log.error(
            f"circuit breaker open for provider {alert['provider']}: remaining messages deferred"
        )
    return MaterializeResult(
        metadata={
            **report.as_metadata(),
            "expired_stale_messages": expired,
            "kill_switch": False,
            "dry_run_campaigns": ", ".join(dry) or "none",
            "send_date": campaign_decisions.send_date,
            "ledger_today": MetadataValue.json(ledger.counts(campaign_decisions.send_date)),
            "providers": ", ".join(
                f"{channel}={route.provider}"
                + (f" (fallback {route.fallback})" if route.fallback else "")
                for channel, route in sorted(config.channels.items())
            ),
            "ledger": MetadataValue.path(str(s.gateway_dir / "ledger.db")),
        }
    )


dispatch_due_messages = define_asset_job(
    name="dispatch_due_messages",
    selection=AssetSelection.assets(campaign_sends),
    description=(
        "Dispatch what the ledger holds as due (deferred for quiet hours, an open breaker or "
        "exhausted retries) without deciding anything new."
    ),
)

hourly_dispatch_schedule = ScheduleDefinition(
    name="hourly_dispatch_of_due_messages",
    job=dispatch_due_messages,
    cron_schedule="15 * * * *",
    execution_timezone="UTC",
    description="Every hour: deliver deferred messages whose time has come.",
)
