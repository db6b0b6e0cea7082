"""Scoring and audiences: features as of the decision time, champion scores, decisions."""

from datetime import UTC, datetime

import pandas as pd
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetExecutionContext,
    AssetKey,
    MetadataValue,
    Output,
    asset,
    asset_check,
)

from orchestration.core.feature_publishing import FeatureVersion
from orchestration.core.model_registry import RegisteredModel
from orchestration.core.run_artifacts import DecisionBatch, ScoringBatch, markdown_table
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
    from orchestration.core.feature_store import FEATURE_SERVICE, feature_names, historical_features
    from orchestration.core.feature_tables import snapshot_times

    s = settings.get()
    decided_at = datetime.now(UTC)
    customers = pd.read_parquet(s.exports_dir / "dim_customers.parquet", columns=["customer_id"])
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
    group_name=GROUP,
    owners=[OWNER],
    kinds={"mlflow", "parquet"},
    description="Predicted uplift per customer from `models:/<name>@champion`.",
)
def customer_scores(
    context: AssetExecutionContext,
    scoring_features: ScoringBatch,
    uplift_model: RegisteredModel,
    settings: CampaignSettings,
) -> Output[ScoringBatch]:
    import numpy as np

    from orchestration.core.feature_store import FEATURE_SERVICE, feature_names
    from orchestration.core.model_registry import CHAMPION, describe_alias, load_alias
    from orchestration.core.training import feature_matrix

    s = settings.get()
    frame = pd.read_parquet(scoring_features.path)
    features = feature_names(s, FEATURE_SERVICE)
    champion = describe_alias(s, CHAMPION)
    if champion is None:
        raise RuntimeError(f"no champion version of {s.model_name}; train and register one first")
    model = load_alias(s, CHAMPION)
    has_features = frame[features].notna().any(axis=1).to_numpy()
    uplift = np.full(len(frame), np.nan)
    if has_features.any():
        # The model's signature is float64 features (what training saw); Feast returns ints.
        inputs = feature_matrix(frame.loc[has_features], features)
        uplift[has_features] = np.asarray(model.predict(inputs), dtype=float)
    scores = pd.DataFrame(
        {
            "customer_id": frame["customer_id"].astype("int64"),
            "predicted_uplift": uplift,
            "feature_timestamp": pd.Timestamp(scoring_features.feature_timestamp)
            if scoring_features.feature_timestamp
            else pd.NaT,
        }
    )
    path = s.pipeline_dir / "customer_scores.parquet"
    scores.to_parquet(path, index=False)
    scored = int(has_features.sum())
    return Output(
        ScoringBatch(
            path=str(path),
            decided_at=scoring_features.decided_at,
            feature_version=scoring_features.feature_version,
            feature_timestamp=scoring_features.feature_timestamp,
            model_version=champion.version,
        ),
        metadata={
            "model": f"{champion.name} v{champion.version} (champion)",
            "eligible": len(frame),
            "scored": scored,
            "inference_success_rate": scored / len(frame) if len(frame) else 0.0,
            "mean_predicted_uplift": float(np.nanmean(uplift)) if scored else 0.0,
            "share_positive_uplift": float(np.mean(uplift[has_features] > 0)) if scored else 0.0,
        },
    )


@asset(
    group_name=GROUP,
    owners=[OWNER],
    kinds={"parquet"},
    deps=[AssetKey("dim_customers"), AssetKey(["raw", "contact_points"])],
    description=(
        "A decision (send / holdout / excluded) with a reason code for every candidate of every "
        "enabled campaign in campaigns/: top predicted uplift among customers who consent on the "
        "channel, are not suppressed and can be reached, with a stable random holdout."
    ),
)
def campaign_decisions(
    context: AssetExecutionContext,
    customer_scores: ScoringBatch,
    settings: CampaignSettings,
    gateway: MessagingGateway,
) -> Output[DecisionBatch]:
    from orchestration.core.audience import DecisionContext, decide, summarize
    from orchestration.core.campaigns import load_campaigns
    from orchestration.core.gateway.reachability import reachability_flags

    s = settings.get()
    loaded = load_campaigns(s.campaigns_dir)
    for error in loaded.errors.values():
        context.log.error(error)
    candidates = pd.read_parquet(s.exports_dir / "dim_customers.parquet")
    reachable = reachability_flags(s.raw_dir, candidates["customer_id"])
    candidates = candidates.merge(reachable, on="customer_id", how="left", validate="one_to_one")
    scores = pd.read_parquet(customer_scores.path)
    send_date = customer_scores.decided_at.date().isoformat()
    ledger = gateway.ledger(s)
    decision_context = DecisionContext(
        run_id=context.run.run_id,
        decided_at=customer_scores.decided_at,
        model_version=customer_scores.model_version,
    )
    frames = []
    per_campaign: dict[str, dict[str, int]] = {}
    for name, campaign in sorted(loaded.campaigns.items()):
        if not campaign.enabled:
            context.log.info(f"campaign {name} is disabled (enabled: false); no decisions")
            continue
        decisions = decide(
            candidates, scores, campaign, decision_context, ledger.sent_today(name, send_date)
        )
        frames.append(decisions)
        per_campaign[name] = summarize(decisions)
    out_dir = s.decisions_dir / f"decided_on={send_date}"
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"run={context.run.run_id}.parquet"
    all_decisions = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    all_decisions.to_parquet(path, index=False)
    sends = int((all_decisions["decision"] == "send").sum()) if len(all_decisions) else 0
    return Output(
        DecisionBatch(
            path=str(path),
            decided_at=customer_scores.decided_at,
            send_date=send_date,
            campaigns=tuple(per_campaign),
        ),
        metadata={
            "campaigns": ", ".join(per_campaign) or "none",
            "campaign_file_errors": len(loaded.errors),
            "candidates": len(all_decisions),
            "audience_size": sends,
            "by_campaign": MetadataValue.json(per_campaign),
            "model_version": customer_scores.model_version,
            "decisions_file": MetadataValue.path(str(path)),
            "preview_top_sends": MetadataValue.md(
                markdown_table(
                    all_decisions[all_decisions["decision"] == "send"].head(10).to_dict("records")
                    if sends
                    else [],
                    ["campaign", "customer_id", "predicted_uplift", "uplift_rank", "reason"],
                )
            ),
        },
    )


@asset_check(
    asset=campaign_decisions,
    name="audience_compliant",
    blocking=True,
    additional_deps=[AssetKey(["raw", "consent_events"]), AssetKey(["raw", "suppressions"])],
    description=(
        "Every selected recipient is re-verified against the raw consent events and suppression "
        "list at the decision time: no opted-out or suppressed recipient."
    ),
)
def audience_compliant(
    campaign_decisions: DecisionBatch, settings: CampaignSettings
) -> AssetCheckResult:
    from orchestration.core.compliance import verify_audience

    s = settings.get()
    decisions = pd.read_parquet(campaign_decisions.path)
    sends = decisions[decisions["decision"] == "send"] if len(decisions) else decisions
    result = verify_audience(sends, s.raw_dir, campaign_decisions.decided_at)
    by_kind = (
        result.violations["violation"].value_counts().to_dict() if result.violation_count else {}
    )
    return AssetCheckResult(
        passed=result.violation_count == 0,
        severity=AssetCheckSeverity.ERROR,
        description=(
            f"{result.violation_count} of {result.checked} recipients violate consent or "
            f"suppression ({', '.join(f'{k}: {v}' for k, v in by_kind.items()) or 'none'})"
        ),
        metadata={
            "recipients_checked": result.checked,
            "violations": result.violation_count,
            "compliance_rate": result.compliance_rate,
            **{f"violations_{k}": int(v) for k, v in by_kind.items()},
        },
    )
