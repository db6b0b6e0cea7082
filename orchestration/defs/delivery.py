"""Release and sends: a run's decisions pass the release door into the ledger only when every
gate of that run passed; the sends dispatch only released due messages through the messaging
gateway, exactly once per (campaign, customer, channel, day). A thin shell over
``orchestration.core.delivery``."""

from datetime import timedelta

import pandas as pd
from dagster import (
    AssetExecutionContext,
    AssetIn,
    AssetKey,
    AssetSelection,
    Failure,
    MaterializeResult,
    MetadataValue,
    ScheduleDefinition,
    asset,
    define_asset_job,
)

from orchestration.defs.run_artifacts import DecisionBatch, ScoringBatch
from orchestration.defs.run_checks import (
    blocking_checks_before,
    run_check_evaluations,
    whole_graph,
)
from orchestration.resources import CampaignSettings, MessagingGateway
from orchestration.settings import Settings

GROUP = "delivery"
OWNER = "team:crm"


def _audience_keys() -> list[AssetKey]:
    """Every campaign's audience asset (``defs/campaigns.py`` names them ``audience/<name>``)."""
    from orchestration.core.decisioning.campaigns import load_campaigns

    loaded = load_campaigns(Settings.from_env().campaigns_dir).campaigns
    # a triggered campaign has no batch audience (defs/campaigns.py leaves it out)
    return [AssetKey(["audience", n]) for n, c in sorted(loaded.items()) if not c.is_triggered]


def _live_campaigns(s: Settings) -> dict:
    from orchestration.core.decisioning.campaigns import load_campaigns

    loaded = load_campaigns(s.campaigns_dir).campaigns
    return {n: c for n, c in loaded.items() if c.enabled and not c.dry_run}


# What the release reads of the decisions; the rest (scores, reasons) it never looks at.
RELEASE_COLUMNS = (
    "campaign",
    "customer_id",
    "channel",
    "decision",
    "deferred_until",
    "template",
    "model_version",
    "policy_version",
)


def _release_columns(path: str) -> pd.DataFrame:
    """The decisions' columns a release needs (those the file has)."""
    import pyarrow.parquet as pq

    present = set(pq.read_schema(path).names)
    return pd.read_parquet(path, columns=[c for c in RELEASE_COLUMNS if c in present])


def _approval_holds(s: Settings, live: dict, decisions: pd.DataFrame):
    """What approvals hold back (CAMPAIGN_REQUIRE_APPROVALS): nothing when they are off."""
    from orchestration.core.decisioning.campaigns import load_campaigns
    from orchestration.core.governance.approvals import ReleaseHolds, governance_for, release_holds

    if not s.require_approvals:
        return ReleaseHolds({}, ())
    sources = load_campaigns(s.campaigns_dir).sources
    decided = decisions.get("policy_version", pd.Series(dtype=str)).dropna().astype(str)
    return release_holds(
        governance_for(s), {n: sources[n] for n in live}, s.policy_file, set(decided)
    )


@asset(
    ins={
        "campaign_decisions": AssetIn(AssetKey("campaign_decisions")),
        "scoring_features": AssetIn(AssetKey("scoring_features")),
    },
    deps=[*_audience_keys(), AssetKey("online_features")],
    group_name=GROUP,
    owners=[OWNER],
    kinds={"sqlite"},
    description=(
        "The one door to the send ledger. Runs only when every blocking check in front of the "
        "sends passed in this same run (Dagster skips it otherwise, and it re-checks the run's "
        "own evaluations, so a re-execution of a subset cannot release). Records the run id, "
        "each check's result, the model, policy, feature and campaign-file versions and a "
        "digest of the released decisions, and enqueues the live campaigns' send/deferred "
        "decisions as due, in one transaction. With CAMPAIGN_REQUIRE_APPROVALS, a campaign whose "
        "file (or the policy's) current hash has no four-eyes approval is held: decided, "
        "recorded, nothing enqueued (status awaiting_approval when nothing is left to release). "
        "`campaign release revoke <run>` cancels what a release has not yet delivered."
    ),
)
def campaign_release(
    context: AssetExecutionContext,
    campaign_decisions: DecisionBatch,
    scoring_features: ScoringBatch,
    settings: CampaignSettings,
    gateway: MessagingGateway,
) -> MaterializeResult:
    from orchestration.core.decisioning.campaigns import campaign_files
    from orchestration.core.delivery.releases import (
        build_release,
        file_hashes,
        gate_verdict,
        sendable,
    )
    from orchestration.core.world.safety_tables import record_release_fingerprint

    s = settings.get()
    run_id = context.run.run_id
    expected = blocking_checks_before(whole_graph(context), context.asset_key)
    verdict = gate_verdict(expected, run_check_evaluations(context.instance, run_id))
    if not verdict.passed:
        raise Failure(description=f"release refused, nothing enqueued: {verdict.explain()}")
    decisions = _release_columns(campaign_decisions.path)
    live = _live_campaigns(s)
    messages = sendable(decisions, live)
    is_live = decisions["campaign"].isin(live)  # all live (the usual case): no copy, 4.8 s at 10M
    live_decisions = decisions if is_live.all() else decisions[is_live]
    holds = _approval_holds(s, live, live_decisions)
    for name, why in holds.campaigns.items():
        context.log.warning(f"campaign {name} held, nothing enqueued: {why}")
    release = build_release(
        run_id=run_id,
        released_at=s.now().isoformat(),
        send_date=campaign_decisions.send_date,
        verdict=verdict,
        decisions=live_decisions,
        messages=messages,
        feature_version=scoring_features.feature_version,
        campaign_files=file_hashes([*campaign_files(s.campaigns_dir), s.policy_file]),
        held=holds.campaigns,
        held_files=holds.files,
    )
    newly_due = gateway.ledger(s).record_release(release, messages)
    # the baseline of safety_tables_only_grow: what this release's raw data suppressed
    record_release_fingerprint(s.raw_dir, s.gateway_dir, run_id, release.released_at)
    return MaterializeResult(
        metadata={
            "run_id": run_id,
            "status": release.status,
            "held_awaiting_approval": MetadataValue.json(release.held),
            "checks_passed": len(release.checks),
            "messages": release.messages,
            "newly_due": newly_due,
            "already_in_ledger": release.messages - newly_due,
            "campaigns": ", ".join(release.campaigns) or "none",
            "dry_run_or_disabled": ", ".join(
                sorted(set(decisions["campaign"].unique()) - set(live))
            )
            if len(decisions)
            else "none",
            "model_versions": release.model_versions,
            "policy_version": release.policy_version,
            "feature_version": release.feature_version,
            "decisions_digest": release.decisions_digest,
            "campaign_files": MetadataValue.json(release.campaign_files),
        }
    )


@asset(
    deps=[
        AssetKey("campaign_release"),
        AssetKey(["raw", "contact_points"]),
        AssetKey(["raw", "consent_events"]),
        AssetKey(["raw", "suppressions"]),
    ],
    group_name=GROUP,
    owners=[OWNER],
    kinds={"sqlite"},
    description=(
        "Dispatches the ledger's due messages of standing releases through the messaging "
        "gateway; it never reads decisions, so no run whose gates failed can send through it, "
        "however it is started (the pipeline, the hourly dispatch, a re-execution from the UI). "
        "The ledger records a message as due before dispatch and delivered after; uncertain "
        "messages are reconciled with the provider before any retry; 429/5xx/timeouts are "
        "retried with backoff, a circuit breaker defers the rest when a provider is down; "
        "consent and suppression are re-checked at dispatch. The kill switch "
        "(CAMPAIGN_SENDS_DISABLED=1 or the file data/gateway/SENDS_DISABLED), `enabled: false` "
        "and `dry_run: true` stop dispatch."
    ),
)
def campaign_sends(
    context: AssetExecutionContext, settings: CampaignSettings, gateway: MessagingGateway
) -> MaterializeResult:
    from orchestration.core.delivery.build import build_gateway
    from orchestration.core.delivery.dispatch import KILL_SWITCH_ENV, kill_switch_on

    s = settings.get()
    if kill_switch_on(s.gateway_dir):
        context.log.warning(f"kill switch on ({KILL_SWITCH_ENV} or SENDS_DISABLED): nothing sent")
        return MaterializeResult(metadata={"kill_switch": True, "delivered": 0})
    live = _live_campaigns(s)
    today = s.now().date()
    ledger = gateway.ledger(s)
    # A message not delivered within a day of its decision is stale: cancelled, never sent late.
    expired = ledger.expire_before((today - timedelta(days=1)).isoformat())
    config = gateway.config(s)
    dispatcher = build_gateway(
        config,
        ledger,
        s.raw_dir,
        s.gateway_dir,
        # re-read at each batch: `enabled: false` stops a dispatch already under way
        campaign_is_live=lambda name: name in _live_campaigns(s),
        fallback_allowed=lambda name: bool(getattr(live.get(name), "allow_fallback", False)),
        clock=s.now,
    )
    report = dispatcher.dispatch_due(run_id=context.run.run_id, campaigns=sorted(live))
    for alert in report.alerts:
        context.log.error(
            f"circuit breaker open for provider {alert['provider']}: remaining messages deferred"
        )
    return MaterializeResult(
        metadata={
            **report.as_metadata(),
            "expired_stale_messages": expired,
            "kill_switch": False,
            "send_date": today.isoformat(),
            "ledger_today": MetadataValue.json(ledger.counts(today.isoformat())),
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
        "Dispatch the due messages of standing releases (deferred for quiet hours, an open "
        "breaker or exhausted retries) without deciding or releasing anything new."
    ),
)

hourly_dispatch_schedule = ScheduleDefinition(
    name="hourly_dispatch_of_due_messages",
    job=dispatch_due_messages,
    cron_schedule="15 * * * *",
    execution_timezone="UTC",
    description="Every hour: deliver deferred messages whose time has come.",
)
