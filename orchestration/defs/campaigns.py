"""Campaigns as code: the definitions (validated every run) and one audience asset per campaign.

Each file in campaigns/ becomes its own asset ``audience/<name>`` (reload the code location after
adding a file). A broken file is reported by the ``all_campaign_files_valid`` check and in the
run log; it never stops the other campaigns.
"""

import pandas as pd
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetIn,
    AssetKey,
    AssetSpec,
    MaterializeResult,
    MetadataValue,
    asset,
    asset_check,
    multi_asset,
)

from orchestration.core.decisioning.campaigns import load_campaigns
from orchestration.defs.run_artifacts import DecisionBatch
from orchestration.resources import CampaignSettings
from orchestration.settings import Settings

GROUP = "campaigns"
OWNER = "team:crm"


@asset(
    group_name=GROUP,
    owners=[OWNER],
    kinds={"yaml"},
    description=(
        "The campaign files in campaigns/ and the global policy, validated on load: names, "
        "channels, budgets, holdouts, models; the policy's content hash is its version."
    ),
)
def campaign_definitions(
    context: AssetExecutionContext, settings: CampaignSettings
) -> MaterializeResult:
    from orchestration.core.decisioning.policy import load_policy

    s = settings.get()
    loaded = load_campaigns(s.campaigns_dir)
    policy = load_policy(s.policy_file)
    for error in loaded.errors.values():
        context.log.error(error)
    return MaterializeResult(
        metadata={
            "campaigns": MetadataValue.json(
                {
                    name: {
                        "channel": c.channel,
                        "enabled": c.enabled,
                        "dry_run": c.dry_run,
                        "send_cap": c.send_cap,
                        "holdout_share": c.holdout_share,
                        "model": f"{c.model.name}@{c.model.alias}",
                        "file": str(loaded.sources[name].relative_to(s.project_dir))
                        if loaded.sources[name].is_relative_to(s.project_dir)
                        else str(loaded.sources[name]),
                    }
                    for name, c in sorted(loaded.campaigns.items())
                }
            ),
            "invalid_files": len(loaded.errors),
            "policy_version": policy.version,
            "policy_file": MetadataValue.path(str(s.policy_file)),
        }
    )


@asset_check(
    asset=campaign_definitions,
    name="all_campaign_files_valid",
    blocking=False,
    description="Every campaign file parses and validates (a broken one is skipped, never sent).",
)
def all_campaign_files_valid(settings: CampaignSettings) -> AssetCheckResult:
    s = settings.get()
    loaded = load_campaigns(s.campaigns_dir)
    return AssetCheckResult(
        passed=not loaded.errors,
        severity=AssetCheckSeverity.WARN,
        description=(
            "all campaign files are valid"
            if not loaded.errors
            else f"{len(loaded.errors)} invalid campaign file(s): "
            + " | ".join(loaded.errors.values())
        )[:2000],
        metadata={"valid": len(loaded.campaigns), "invalid": len(loaded.errors)},
    )


def audience_key(name: str) -> AssetKey:
    return AssetKey(["audience", name])


def _audience_specs() -> tuple[list[AssetSpec], list[AssetCheckSpec]]:
    loaded = load_campaigns(Settings.from_env().campaigns_dir)
    specs, checks = [], []
    for name, campaign in sorted(loaded.campaigns.items()):
        specs.append(
            AssetSpec(
                audience_key(name),
                deps=[AssetKey("campaign_decisions"), AssetKey("campaign_definitions")],
                group_name=GROUP,
                owners=[OWNER],
                kinds={"parquet"},
                description=(
                    f"Audience of campaign {name} ({campaign.channel}): its recipients, holdout and "
                    f"exclusions by reason. {campaign.description}".strip()
                ),
                tags={"channel": campaign.channel},
            )
        )
        checks.append(
            AssetCheckSpec(
                "audience_within_send_cap",
                asset=audience_key(name),
                blocking=True,
                description="Recipients stay within the campaign's send cap (max sends / budget): a misrouting guard.",
            )
        )
    return specs, checks


AUDIENCE_SPECS, AUDIENCE_CHECKS = _audience_specs()


def _audiences(
    context: AssetExecutionContext, campaign_decisions: DecisionBatch, settings: CampaignSettings
):
    """Split the run's decisions per campaign, compare with its last live run, check its size."""
    from orchestration.core.decisioning.decision_store import diff_recipients, last_live_decisions

    s = settings.get()
    campaigns = load_campaigns(s.campaigns_dir).campaigns
    decisions = pd.read_parquet(campaign_decisions.path)
    for spec in AUDIENCE_SPECS:
        name = spec.key.path[-1]
        campaign = campaigns.get(name)
        rows = decisions[decisions["campaign"] == name] if len(decisions) else decisions
        recipients = int(rows["decision"].isin(["send", "deferred"]).sum()) if len(rows) else 0
        previous = last_live_decisions(s.decisions_dir, name, exclude_run=context.run.run_id)
        diff = diff_recipients(rows, previous) if len(rows) else None
        status = (
            "not evaluated (disabled, or its model/file is unavailable: see the run log)"
            if rows.empty
            else ("dry run: nothing is sent" if bool(rows["dry_run"].iloc[0]) else "live")
        )
        decision_counts = rows["decision"].value_counts().to_dict() if len(rows) else {}
        reason_counts = rows["reason"].value_counts().to_dict() if len(rows) else {}
        cap = campaign.send_cap if campaign else 0
        yield MaterializeResult(
            asset_key=spec.key,
            metadata={
                "status": status,
                "recipients": recipients,
                "send_cap": cap,
                **{f"decision_{k}": int(v) for k, v in decision_counts.items()},
                "reasons": MetadataValue.json({k: int(v) for k, v in reason_counts.items()}),
                "diff_vs_last_live_run": diff.describe() if diff else "n/a",
                "models": ", ".join(sorted(rows["model_version"].dropna().astype(str).unique()))
                if len(rows)
                else "",
                "policy_version": str(rows["policy_version"].iloc[0]) if len(rows) else "",
            },
        )
        yield AssetCheckResult(
            asset_key=spec.key,
            check_name="audience_within_send_cap",
            passed=recipients <= cap,
            severity=AssetCheckSeverity.ERROR,
            description=f"{recipients} recipients, send cap {cap}",
            metadata={"recipients": recipients, "send_cap": cap},
        )


campaign_audiences = (
    multi_asset(
        specs=AUDIENCE_SPECS,
        check_specs=AUDIENCE_CHECKS,
        name="campaign_audiences",
        ins={"campaign_decisions": AssetIn(AssetKey("campaign_decisions"))},
        can_subset=False,
    )(_audiences)
    if AUDIENCE_SPECS
    else None
)
