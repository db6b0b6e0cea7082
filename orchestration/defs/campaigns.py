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
from orchestration.defs.run_artifacts import DecisionBatch, markdown_table
from orchestration.resources import CampaignSettings, MessagingGateway
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


# The gates on each audience (orchestration.core.decisioning.audience_guards): check name, the
# verdict it reports, its description.
AUDIENCE_GUARDS = (
    (
        "audience_size_within_band",
        "size",
        "Misrouting guard: the day's audience lies inside the band declared in the campaign file "
        "(expected_audience.min/max) and, once the campaign has 3 released send days, within 3x "
        "and 1/3 of the median of its last 7 (ledger releases + their decision files; defaults, "
        "the campaign file may override them).",
    ),
    (
        "audience_composition_matches_eligible",
        "composition",
        "Misrouting guard: the audience's share of each region and tenure band stays within 0.25 "
        "(absolute; composition.max_share_diff) of the eligible population's share.",
    ),
    (
        "audience_selection_rates_fair",
        "fairness",
        "Bias audit: selection rate (send or deferred / eligible) per region, tenure band and "
        "declared sensitive column; the lowest / highest rate (four-fifths rule) must reach "
        "fairness.min_ratio (default 0.8). fairness.mode warn reports (WARN), block stops the sends.",
    ),
)


def _audience_specs() -> tuple[list[AssetSpec], list[AssetCheckSpec]]:
    loaded = load_campaigns(Settings.from_env().campaigns_dir)
    specs, checks = [], []
    for name, campaign in sorted(loaded.campaigns.items()):
        if campaign.is_triggered:  # decided on events only: no batch audience to guard
            continue
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
        # Blocking specs: a failure of ERROR severity stops the release; the fairness audit in
        # warn mode (and any guard of a dry-run campaign) fails with WARN, which does not.
        checks.extend(
            AssetCheckSpec(check, asset=audience_key(name), blocking=True, description=text)
            for check, _, text in AUDIENCE_GUARDS
        )
    return specs, checks


AUDIENCE_SPECS, AUDIENCE_CHECKS = _audience_specs()


def _guard_check(key: AssetKey, check: str, result) -> AssetCheckResult:
    """A guard verdict as its check: evidence as metadata, the table as Markdown."""
    metadata: dict[str, object] = dict(result.metadata)
    metadata.update({k: MetadataValue.json(v) for k, v in result.details.items()})
    if result.rows:
        metadata["segments"] = MetadataValue.md(markdown_table(result.rows, result.columns))
    return AssetCheckResult(
        asset_key=key,
        check_name=check,
        passed=result.passed,
        severity=AssetCheckSeverity.ERROR if result.blocking else AssetCheckSeverity.WARN,
        description=result.description[:2000],
        metadata=metadata,
    )


def _guard_history(s: Settings, gateway: MessagingGateway, campaigns: dict, run_id: str):
    from orchestration.core.decisioning.audience_guards import GuardDefaults, released_audiences

    defaults = GuardDefaults()
    days = {
        name: defaults.for_campaign(c).history_days + 1  # + today's earlier releases
        for name, c in campaigns.items()
    }
    return defaults, released_audiences(
        s.decisions_dir, gateway.ledger(s).releases(), days, exclude_run=run_id
    )


def _customers(customers: pd.DataFrame, campaigns) -> pd.DataFrame:
    """dim_customers' segment columns: region, sign-up and every declared sensitive column."""
    wanted = ["customer_id", "region", "signed_up_at"]
    wanted += sorted({col for c in campaigns for col in c.fairness.sensitive_columns})
    return customers[[c for c in dict.fromkeys(wanted) if c in customers.columns]]


def _with_sensitive_attributes(s, customers: pd.DataFrame) -> tuple[pd.DataFrame, tuple]:
    """The declared sensitive attributes (config/attributes.yaml) as audit segments."""
    from orchestration.core.decisioning.sensitive_attributes import sensitive_segments
    from orchestration.core.world.attributes import load_attributes
    from orchestration.core.world.warehouse import open_warehouse

    declaration = load_attributes(s.attributes_file)
    if not declaration.sensitive:
        return customers, ()
    warehouse = open_warehouse(s)
    # dbt builds it in every run; without it (a hand-made warehouse) every value is unknown
    attributes = (
        warehouse.read_table("dim_customer_attributes")
        if warehouse.has_table("dim_customer_attributes")
        else pd.DataFrame({"customer_id": pd.Series(dtype="int64")})
    )
    return sensitive_segments(customers, attributes, declaration)


def _audiences(
    context: AssetExecutionContext,
    campaign_decisions: DecisionBatch,
    settings: CampaignSettings,
    gateway: MessagingGateway,
):
    """Split the run's decisions per campaign, compare with its last live run, and guard its
    size, composition and selection rates (core: audience_guards)."""
    from orchestration.core.decisioning.audience_guards import (
        evaluate_audience,
        not_evaluated,
        write_guard_report,
    )
    from orchestration.core.decisioning.decision_store import diff_recipients, last_live_decisions
    from orchestration.core.world.warehouse import open_warehouse

    s = settings.get()
    campaigns = load_campaigns(s.campaigns_dir).campaigns
    decisions = pd.read_parquet(campaign_decisions.path)
    customers, sensitive = _with_sensitive_attributes(
        s, _customers(open_warehouse(s).read_table("dim_customers"), campaigns.values())
    )
    run_id = context.run.run_id
    defaults, history = _guard_history(s, gateway, campaigns, run_id)
    guards, results = {}, []
    for spec in AUDIENCE_SPECS:
        name = spec.key.path[-1]
        campaign = campaigns.get(name)
        rows = decisions[decisions["campaign"] == name] if len(decisions) else decisions
        guards[name] = (
            evaluate_audience(
                campaign,
                rows,
                customers,
                campaign_decisions.decided_at,
                campaign_decisions.send_date,
                history,
                defaults,
                sensitive_attributes=sensitive,
            )
            if len(rows) and campaign is not None
            else not_evaluated(campaign, name)
        )
        previous = last_live_decisions(s.decisions_dir, name, exclude_run=run_id)
        results.append(
            (spec, campaign, rows, diff_recipients(rows, previous) if len(rows) else None)
        )
    report = write_guard_report(
        s.reports_dir, run_id, campaign_decisions.decided_at, campaign_decisions.send_date, guards
    )
    for spec, campaign, rows, diff in results:
        yield _audience_result(spec.key, campaign, rows, diff, guards[spec.key.path[-1]], report)
        for check, verdict, _ in AUDIENCE_GUARDS:
            yield _guard_check(spec.key, check, getattr(guards[spec.key.path[-1]], verdict))


def _audience_result(key: AssetKey, campaign, rows: pd.DataFrame, diff, guards, report):
    recipients = int(rows["decision"].isin(["send", "deferred"]).sum()) if len(rows) else 0
    status = (
        "not evaluated (disabled, or its model/file is unavailable: see the run log)"
        if rows.empty
        else ("dry run: nothing is sent" if bool(rows["dry_run"].iloc[0]) else "live")
    )
    decision_counts = rows["decision"].value_counts().to_dict() if len(rows) else {}
    reason_counts = rows["reason"].value_counts().to_dict() if len(rows) else {}
    ratio = guards.fairness.metadata.get("four_fifths_ratio", "n/a")
    return MaterializeResult(
        asset_key=key,
        metadata={
            "status": status,
            "recipients": recipients,
            "send_cap": campaign.send_cap if campaign else 0,
            **{f"decision_{k}": int(v) for k, v in decision_counts.items()},
            "reasons": MetadataValue.json({k: int(v) for k, v in reason_counts.items()}),
            "diff_vs_last_live_run": diff.describe() if diff else "n/a",
            "models": ", ".join(sorted(rows["model_version"].dropna().astype(str).unique()))
            if len(rows)
            else "",
            "policy_version": str(rows["policy_version"].iloc[0]) if len(rows) else "",
            "four_fifths_ratio": ratio,
            "audience_guard_report": MetadataValue.path(str(report)),
        },
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
