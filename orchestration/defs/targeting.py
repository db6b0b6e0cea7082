"""Scoring and audiences: features as of the decision time, champion scores, decisions."""

from pathlib import Path

import pandas as pd
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetExecutionContext,
    AssetIn,
    AssetKey,
    MetadataValue,
    Output,
    asset,
    asset_check,
)

from orchestration.core.decisioning.inputs import recent_contacts
from orchestration.core.features.publishing import FeatureVersion
from orchestration.core.model.registry import RegisteredModel
from orchestration.core.world.warehouse import open_warehouse
from orchestration.defs.run_artifacts import DecisionBatch, ScoringBatch, markdown_table
from orchestration.resources import CampaignSettings, MessagingGateway

GROUP = "targeting"
OWNER = "team:crm"


@asset(
    deps=[AssetKey("dim_customers"), AssetKey("feature_store_registry")],
    group_name=GROUP,
    owners=[OWNER],
    kinds={"feast", "parquet"},
    description=(
        "Every customer's features as of the decision time, retrieved in bulk from Feast's "
        "offline store with the model's feature service (the same definitions as training)."
    ),
)
def scoring_features(
    context: AssetExecutionContext, published_features: FeatureVersion, settings: CampaignSettings
) -> Output[ScoringBatch]:
    from orchestration.core.features.feast_store import (
        FEATURE_SERVICE,
        feature_names,
        historical_features,
    )
    from orchestration.core.features.tables import snapshot_times

    s = settings.get()
    decided_at = s.now()
    customers = open_warehouse(s).read_table("dim_customers", columns=["customer_id"])
    entities = customers.assign(event_timestamp=pd.Timestamp(decided_at))
    frame = historical_features(s, entities, FEATURE_SERVICE)
    features = feature_names(s, FEATURE_SERVICE)
    complete = frame[features].notna().any(axis=1)
    snapshots = [
        t for t in snapshot_times(published_features.path) if t <= pd.Timestamp(decided_at)
    ]
    path = s.pipeline_dir / "scoring_features.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(path, index=False)
    return Output(
        ScoringBatch(
            path=str(path),
            decided_at=decided_at,
            feature_version=published_features.version,
            feature_timestamp=snapshots[-1].to_pydatetime() if snapshots else None,
        ),
        metadata={
            "rows": len(frame),
            "rows_with_features": int(complete.sum()),
            "feature_availability": float(complete.mean()) if len(frame) else 0.0,
            "decided_at": decided_at.isoformat(),
            "feature_snapshot_at": snapshots[-1].isoformat() if snapshots else "none",
            "feature_version": published_features.version,
        },
    )


@asset(
    # After the promotion: the scores come from the champion this run may have just promoted,
    # and champion_beats_random (a check on model_promotion) stands in front of them.
    deps=[AssetKey("model_promotion")],
    group_name=GROUP,
    owners=[OWNER],
    kinds={"mlflow", "parquet"},
    description=(
        "Predicted uplift per customer from every model alias the enabled campaigns use "
        "(`models:/<name>@champion` by default, and `@challenger` where a campaign runs a canary); "
        "in the spark profile scored by mlflow's spark_udf and written by Spark."
    ),
)
def customer_scores(
    context: AssetExecutionContext,
    scoring_features: ScoringBatch,
    uplift_model: RegisteredModel,
    settings: CampaignSettings,
) -> Output[ScoringBatch]:
    import pyarrow.parquet as pq

    from orchestration.core.decisioning.campaigns import load_campaigns
    from orchestration.core.decisioning.scoring import score_parquet, wanted_model_refs
    from orchestration.core.features.feast_store import FEATURE_SERVICE, feature_names

    s = settings.get()
    features = feature_names(s, FEATURE_SERVICE)
    campaigns = [c for c in load_campaigns(s.campaigns_dir).campaigns.values() if c.enabled]
    refs = wanted_model_refs(campaigns, s.model_name)
    path = s.pipeline_dir / "customer_scores.parquet"
    if s.is_spark:  # mlflow's spark_udf on the pipeline's Spark session; Spark writes `path`
        from orchestration.core.decisioning.spark_scoring import score_on_spark

        frame = pd.read_parquet(scoring_features.path)
        result = score_on_spark(s, frame, features, refs, path)
    else:  # read and scored in batches: one batch's features in memory, not every customer's
        result = score_parquet(s, scoring_features.path, features, refs)
        result.scores.to_parquet(path, index=False)
    for ref, error in result.unavailable.items():
        context.log.warning(f"model {ref} not scored: {error}")
    champion_ref = f"{s.model_name}@champion"
    if champion_ref not in result.versions:
        raise RuntimeError(f"no champion version of {s.model_name}; train and register one first")
    eligible = pq.read_metadata(scoring_features.path).num_rows
    return Output(
        ScoringBatch(
            path=str(path),
            decided_at=scoring_features.decided_at,
            feature_version=scoring_features.feature_version,
            feature_timestamp=scoring_features.feature_timestamp,
            model_version=result.versions[champion_ref],
        ),
        metadata={
            "model": f"{s.model_name} v{result.versions[champion_ref]} (champion)",
            "models_scored": ", ".join(f"{r} (v{v})" for r, v in result.versions.items()),
            "models_unavailable": ", ".join(result.unavailable) or "none",
            "eligible": eligible,
            "scored": result.scored[champion_ref],
            "inference_success_rate": result.scored[champion_ref] / eligible if eligible else 0.0,
            "mean_predicted_uplift": result.mean_uplift[champion_ref],
            "share_positive_uplift": result.share_positive[champion_ref],
            "scoring_seconds": round(result.seconds, 2),
        },
    )


@asset(
    group_name=GROUP,
    owners=[OWNER],
    kinds={"parquet"},
    deps=[
        AssetKey("dim_customers"),
        AssetKey(["raw", "contact_points"]),
        AssetKey("campaign_definitions"),
        # real-time decisions read the online store: a stale one stops the sends too
        AssetKey("online_features"),
    ],
    description=(
        "The policy engine's decision (send / deferred / holdout / control / excluded) with a "
        "reason code for every candidate of every enabled campaign, under the global policy "
        "(policies/global_policy.yaml): consent, suppression, frequency caps, quiet hours, global "
        "control group, one message per customer per day, budgets. Each row records the model "
        "version, policy version and feature timestamp that produced it."
    ),
)
def campaign_decisions(
    context: AssetExecutionContext,
    customer_scores: ScoringBatch,
    settings: CampaignSettings,
    gateway: MessagingGateway,
) -> Output[DecisionBatch]:
    from orchestration.core.decisioning.campaigns import load_campaigns
    from orchestration.core.decisioning.canary import shares_for_run
    from orchestration.core.decisioning.decide import decide_campaigns
    from orchestration.core.decisioning.decision_store import write_decisions
    from orchestration.core.decisioning.inputs import decision_inputs
    from orchestration.core.decisioning.policy import load_policy

    s = settings.get()
    loaded = load_campaigns(s.campaigns_dir)
    for error in loaded.errors.values():
        context.log.error(error)
    policy = load_policy(s.policy_file)
    inputs = decision_inputs(
        s,
        policy.policy,
        customer_scores.decided_at,
        scores_file=Path(customer_scores.path),
        ledger=gateway.ledger(s),
    )
    candidates, scores, send_date = inputs.candidates, inputs.scores, inputs.send_date
    run = decide_campaigns(
        candidates=candidates,
        scores=scores,
        campaigns=sorted(loaded.campaigns.values(), key=lambda c: c.name),
        policy=policy,
        contact_history=inputs.contact_history,
        sent_today=inputs.sent_today,
        decided_at=customer_scores.decided_at,
        run_id=context.run.run_id,
        feature_timestamp=customer_scores.feature_timestamp,
        # configured challenger_share, or 0 while the model's canary is tripped (core/canary.py)
        canary_shares=shares_for_run(s, loaded.campaigns.values(), scores),
    )
    for error in run.errors.values():
        context.log.error(error)
    path = write_decisions(run.decisions, s.decisions_dir, send_date, context.run.run_id)
    decisions = run.decisions
    chosen, has_variants = _recipients(decisions)
    recipients = len(chosen)
    return Output(
        DecisionBatch(
            path=str(path),
            decided_at=customer_scores.decided_at,
            send_date=send_date,
            campaigns=tuple(run.counts),
        ),
        metadata={
            "campaigns": ", ".join(run.counts) or "none",
            "campaign_file_errors": len(loaded.errors),
            "campaign_errors": MetadataValue.json(run.errors) if run.errors else "none",
            "policy_version": policy.version,
            "candidates": len(candidates),
            "decision_rows": len(decisions),
            "audience_size": recipients,
            "by_campaign": MetadataValue.json(run.counts),
            **(_variant_metadata(chosen) if has_variants else {}),
            "model_version": customer_scores.model_version,
            "decisions_file": MetadataValue.path(str(path)),
            "preview_top_recipients": MetadataValue.md(
                markdown_table(
                    chosen.nsmallest(10, "value_rank").to_dict("records") if recipients else [],
                    [
                        "campaign",
                        "customer_id",
                        "decision",
                        "variant",
                        "predicted_uplift",
                        "expected_net_value",
                        "runner_up_value",
                        "value_rank",
                    ],
                )
            ),
        },
    )


def _recipients(decisions: pd.DataFrame) -> tuple[pd.DataFrame, bool]:
    """The live (not dry-run) send and deferred rows, and whether a live row has a variant.
    Masks, not a copy of the live rows: at 10M decision rows that copy alone took 8 s."""
    if not len(decisions):
        return decisions, False
    live = ~decisions["dry_run"]
    has_variants = "variant" in decisions and bool((live & decisions["variant"].notna()).any())
    return decisions[live & decisions["decision"].isin(["send", "deferred"])], has_variants


def _variant_metadata(chosen: pd.DataFrame) -> dict:
    """Recipients per chosen variant of the campaigns that have variants."""
    counts = chosen[chosen["variant"].notna()].groupby(["campaign", "variant"]).size()
    return {
        "recipients_by_variant": MetadataValue.json(
            {f"{c}/{v}": int(n) for (c, v), n in counts.items()}
        )
    }


@asset_check(
    asset=campaign_decisions,
    name="audience_compliant",
    blocking=True,
    additional_deps=[
        AssetKey(["raw", "consent_events"]),
        AssetKey(["raw", "suppressions"]),
        AssetKey(["raw", "customers"]),
    ],
    description=(
        "Every selected recipient (send or deferred) is re-verified, independently of the policy "
        "engine, against the raw consent events and suppression lists, the global control group, "
        "the frequency caps and daily limit (ledger + this run) and quiet hours."
    ),
)
def audience_compliant(
    campaign_decisions: DecisionBatch, settings: CampaignSettings, gateway: MessagingGateway
) -> AssetCheckResult:
    from orchestration.core.decisioning.compliance import verify_policy
    from orchestration.core.decisioning.policy import load_policy

    s = settings.get()
    policy = load_policy(s.policy_file).policy
    decisions = pd.read_parquet(campaign_decisions.path)
    if len(decisions):
        decisions = decisions[
            ~decisions["dry_run"] & decisions["decision"].isin(["send", "deferred"])
        ]
    history = recent_contacts(
        gateway.ledger(s), campaign_decisions.decided_at, policy.longest_cap_window_days
    )
    result = verify_policy(decisions, s.raw_dir, policy, history, campaign_decisions.decided_at)
    by_kind = (
        result.violations["violation"].value_counts().to_dict() if result.violation_count else {}
    )
    return AssetCheckResult(
        passed=result.violation_count == 0,
        severity=AssetCheckSeverity.ERROR,
        description=(
            f"{result.violation_count} of {result.checked} recipients violate the policy "
            f"({', '.join(f'{k}: {v}' for k, v in by_kind.items()) or 'none'})"
        ),
        metadata={
            "recipients_checked": result.checked,
            "violations": result.violation_count,
            "compliance_rate": result.compliance_rate,
            **{f"violations_{k}": int(v) for k, v in by_kind.items()},
        },
    )


@asset_check(
    asset=campaign_decisions,
    name="canary_guardrails",
    blocking=False,
    additional_ins={"customer_scores": AssetIn("customer_scores")},
    description=(
        "Where a challenger scored part of an audience (challenger_share): no scoring errors, its "
        "scores do not drift from the champion's (KS), no policy violation among the recipients "
        "it scored. A failure trips the canary (data/model/canary_state.json): the next runs "
        "score everyone with the champion until a new challenger version appears; an alert is "
        "recorded."
    ),
)
def canary_guardrails(
    campaign_decisions: DecisionBatch,
    customer_scores: ScoringBatch,
    settings: CampaignSettings,
    gateway: MessagingGateway,
) -> AssetCheckResult:
    from orchestration.core.decisioning.campaigns import load_campaigns
    from orchestration.core.decisioning.canary import load_state, run_canary
    from orchestration.core.decisioning.compliance import verify_policy
    from orchestration.core.decisioning.policy import load_policy

    s = settings.get()
    campaigns = load_campaigns(s.campaigns_dir).campaigns.values()
    decisions = pd.read_parquet(campaign_decisions.path)
    scores = pd.read_parquet(customer_scores.path)

    def verify(recipients: pd.DataFrame) -> pd.DataFrame:
        policy = load_policy(s.policy_file).policy
        history = recent_contacts(
            gateway.ledger(s), campaign_decisions.decided_at, policy.longest_cap_window_days
        )
        return verify_policy(
            recipients, s.raw_dir, policy, history, campaign_decisions.decided_at
        ).violations

    outcomes = run_canary(s, decisions, scores, {c.name: c.model.name for c in campaigns}, verify)
    failed = {model: o.failed for model, o in outcomes.items() if o.failed}
    tripped = {m: load_state(s, m).tripped for m in {c.model.name for c in campaigns}}
    return AssetCheckResult(
        passed=not failed,
        severity=AssetCheckSeverity.WARN,
        description=(
            "no canary running"
            if not outcomes
            else "; ".join(f"{m}: {', '.join(f) or 'healthy'}" for m, f in failed.items())
            or f"canary healthy for {', '.join(outcomes)}"
        ),
        metadata={
            "canaries_evaluated": ", ".join(outcomes) or "none",
            "failed_guardrails": MetadataValue.json(failed) if failed else "none",
            "tripped": MetadataValue.json(tripped),
        },
    )
