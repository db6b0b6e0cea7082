"""Sends: the selected rows go to the messaging gateway, exactly once per (campaign, customer,
channel, day)."""

import pandas as pd
from dagster import AssetExecutionContext, AssetKey, MaterializeResult, MetadataValue, asset

from orchestration.core.run_artifacts import DecisionBatch
from orchestration.resources import CampaignSettings, MessagingGateway

GROUP = "delivery"
OWNER = "team:crm"


@asset(
    deps=[AssetKey(["raw", "contact_points"])],
    group_name=GROUP,
    owners=[OWNER],
    kinds={"sqlite"},
    description=(
        "Hands each campaign's `send` decisions to the gateway. The ledger records a message as "
        "due before dispatch and delivered after; a second run on the same day sends nothing new. "
        "The kill switch (CAMPAIGN_SENDS_DISABLED=1), `enabled: false` and `dry_run: true` stop "
        "dispatch."
    ),
)
def campaign_sends(
    context: AssetExecutionContext,
    campaign_decisions: DecisionBatch,
    settings: CampaignSettings,
    gateway: MessagingGateway,
) -> MaterializeResult:
    from orchestration.core.campaigns import load_campaigns
    from orchestration.core.gateway.dispatch import KILL_SWITCH_ENV, deliver, kill_switch_on

    s = settings.get()
    decisions = pd.read_parquet(campaign_decisions.path)
    sends = decisions[decisions["decision"] == "send"] if len(decisions) else decisions
    if kill_switch_on():
        context.log.warning(f"{KILL_SWITCH_ENV} is set: nothing dispatched")
        return MaterializeResult(
            metadata={"kill_switch": True, "selected": len(sends), "delivered": 0}
        )
    campaigns = load_campaigns(s.campaigns_dir).campaigns
    live = [n for n, c in campaigns.items() if c.enabled and not c.dry_run]
    dry = sorted(set(sends["campaign"].unique()) - set(live)) if len(sends) else []
    for name in dry:
        context.log.info(f"campaign {name} is a dry run or disabled: its decisions are not sent")
    to_send = sends[sends["campaign"].isin(live)] if len(sends) else sends
    report = deliver(
        to_send[["campaign", "customer_id", "channel"]],
        send_date=campaign_decisions.send_date,
        run_id=context.run.run_id,
        ledger=gateway.ledger(s),
        provider=gateway.provider(s),
        raw_dir=s.raw_dir,
    )
    ledger_counts = gateway.ledger(s).counts(campaign_decisions.send_date)
    return MaterializeResult(
        metadata={
            **report.as_metadata(),
            "kill_switch": False,
            "dry_run_campaigns": ", ".join(dry) or "none",
            "send_date": campaign_decisions.send_date,
            "ledger_today": MetadataValue.json(ledger_counts),
            "provider": gateway.provider(s).name,
            "ledger": MetadataValue.path(str(s.gateway_dir / "ledger.db")),
        }
    )
