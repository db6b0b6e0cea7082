"""Feature tables: write-audit-publish, then Feast (registry and online store).

    feat_* (dbt exports) -> feature_snapshot (new version, written)
                         -> [drift, availability gates] (audit)
                         -> published_features (``current`` switched: publish)
                         -> feature_store_registry (feast apply) -> online_features (materialize)

A failed gate skips the publish, so Feast and the online store keep the last good version.

The way out of a drift block (job ``retrain_on_candidate_features``, group ``drift_recovery``):

    candidate_features (the newest staged, unpublished version) -> candidate_training_set
        -> candidate_challenger [promotion_gate, drift_below_threshold] -> drift_recovery

``candidate_features`` and the drift gate against the challenger's reference live here; the
training, the promotion verdict and the step that promotes and publishes, in ``model.py``.
"""

from datetime import timedelta

import pandas as pd
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetExecutionContext,
    AssetIn,
    AssetKey,
    Config,
    DataVersion,
    FreshnessPolicy,
    MaterializeResult,
    MetadataValue,
    Output,
    asset,
    asset_check,
)

from orchestration.core.features.publishing import (
    FEATURE_TABLES,
    FeatureVersion,
    candidate_feature_version,
    content_digest,
    current_feature_version,
    exports_digest,
    publish_feature_version,
    stage_feature_version,
)
from orchestration.core.world.warehouse import open_warehouse
from orchestration.resources import CampaignSettings

GROUP = "features"
RECOVERY_GROUP = "drift_recovery"
OWNER = "team:ml-platform"
FEATURE_TABLE_KEYS = [AssetKey(t) for t in FEATURE_TABLES]

# Declared freshness (the daemon evaluates these and the UI shows them): a daily pipeline.
DAILY = FreshnessPolicy.time_window(
    fail_window=timedelta(hours=26), warn_window=timedelta(hours=25)
)
ONLINE_WINDOW = FreshnessPolicy.time_window(
    fail_window=timedelta(hours=48), warn_window=timedelta(hours=26)
)


@asset(
    deps=FEATURE_TABLE_KEYS,
    group_name=GROUP,
    owners=[OWNER],
    kinds={"parquet"},
    freshness_policy=DAILY,
    description=(
        "A new, unpublished version of the feature tables (copied from the dbt exports). "
        "The gates audit it before anything reads it."
    ),
)
def feature_snapshot(
    context: AssetExecutionContext, settings: CampaignSettings
) -> Output[FeatureVersion]:
    from orchestration.core.features.tables import snapshot_times, table_row_counts

    s = settings.get()
    version = stage_feature_version(open_warehouse(s), s.features_dir)
    times = snapshot_times(version.path)
    counts = table_row_counts(version.path)
    return Output(
        version,
        data_version=DataVersion(version.version.split("-")[-1]),
        metadata={
            "version": version.version,
            "version_dir": MetadataValue.path(str(version.path)),
            "snapshot_times": ", ".join(t.isoformat() for t in times),
            "newest_snapshot": times[-1].isoformat() if times else "none",
            **{f"rows_{t}": n for t, n in counts.items()},
        },
    )


def _drift_reference(settings, version: FeatureVersion) -> tuple[pd.DataFrame, str]:
    """The serving model's training reference; before any model, this version's history rows."""
    from orchestration.core.features.tables import read_feature_rows
    from orchestration.core.model.registry import describe_alias, load_reference_features

    champion = describe_alias(settings)
    if champion is not None:
        reference = load_reference_features(settings, champion.run_id)
        if reference is not None:
            return (
                reference,
                f"training reference of {champion.name} v{champion.version} (champion)",
            )
    sample = settings.thresholds.drift_sample_rows
    return read_feature_rows(
        version.path, latest=False, sample_rows=sample
    ), "history snapshots (no champion yet)"


def _measure_drift(
    s,
    version: FeatureVersion,
    reference: pd.DataFrame,
    reference_name: str,
    report_name: str,
    record_as: tuple[str, str] | None = None,
) -> tuple[bool, str, dict]:
    """Drift of ``version``'s newest snapshot against ``reference``: (passed, description,
    metadata), the evidence both drift gates record. ``record_as`` (run id, gate) also keeps the
    snapshot in the Evidently workspace, whose dashboard plots drift over runs."""
    from orchestration.core.features.drift import drift_columns, measure_feature_drift
    from orchestration.core.features.tables import KEYS, read_feature_rows
    from orchestration.core.observability.drift_workspace import (
        record_drift_snapshot,
        snapshot_labels,
    )

    sample = s.thresholds.drift_sample_rows
    current = read_feature_rows(version.path, latest=True, sample_rows=sample, seed=1)
    columns = drift_columns(
        [c for c in current.columns if c not in KEYS and c in reference.columns]
    )
    report = s.reports_dir / "drift" / f"{report_name}.html"
    tags, labels = snapshot_labels(*record_as) if record_as else ((), {})
    result = measure_feature_drift(
        reference,
        current,
        columns,
        sample_rows=sample,
        report_path=report,
        snapshot_tags=tags,
        snapshot_metadata=labels,
    )
    if record_as is not None:
        record_drift_snapshot(
            s.drift_workspace_dir, result.snapshot, run_id=record_as[0], columns=columns
        )
    threshold = s.thresholds.drift_share
    description = (
        f"drift share {result.drift_share:.2f} (threshold {threshold:.2f}); drifted: "
        f"{', '.join(result.drifted_columns) or 'none'}"
    )
    return (
        result.is_below(threshold),
        description,
        {
            "drift_share": result.drift_share,
            "threshold": threshold,
            "drifted_columns": ", ".join(result.drifted_columns) or "none",
            "untested_empty_columns": ", ".join(result.empty_columns) or "none",
            "reference": reference_name,
            "sample_rows_per_side": result.sample_rows,
            "reference_rows": result.reference_rows,
            "current_rows": result.current_rows,
            "report": MetadataValue.path(str(report)),
            "column_scores": MetadataValue.json(
                {c: round(v, 4) for c, v in sorted(result.column_scores.items())}
            ),
        },
    )


@asset_check(
    asset=feature_snapshot,
    name="drift_share_below_threshold",
    blocking=True,
    description=(
        "Share of drifted feature columns (Evidently) between the champion's training reference "
        "and today's snapshot stays below CAMPAIGN_DRIFT_SHARE_THRESHOLD."
    ),
)
def drift_share_below_threshold(
    context, feature_snapshot: FeatureVersion, settings: CampaignSettings
) -> AssetCheckResult:
    s = settings.get()
    reference, reference_name = _drift_reference(s, feature_snapshot)
    passed, description, metadata = _measure_drift(
        s,
        feature_snapshot,
        reference,
        reference_name,
        feature_snapshot.version,
        record_as=(context.run.run_id, "drift_share_below_threshold"),
    )
    return AssetCheckResult(
        passed=passed,
        severity=AssetCheckSeverity.ERROR,
        description=description,
        metadata=metadata,
    )


@asset_check(
    asset=feature_snapshot,
    name="features_cover_candidates",
    blocking=True,
    additional_deps=[AssetKey("dim_customers")],
    description=(
        "Today's snapshot has features for at least CAMPAIGN_FEATURE_COVERAGE_THRESHOLD of the "
        "customers (feature availability)."
    ),
)
def features_cover_candidates(
    context, feature_snapshot: FeatureVersion, settings: CampaignSettings
) -> AssetCheckResult:
    import duckdb

    s = settings.get()
    customers = len(open_warehouse(s).read_table("dim_customers", columns=["customer_id"]))
    con = duckdb.connect()
    try:
        covered, newest = con.execute(
            f"""
            with feats as (select * from read_parquet('{feature_snapshot.table(FEATURE_TABLES[0])}')),
                 newest as (select max(event_timestamp) as at from feats)
            select count(distinct customer_id), any_value(newest.at)
            from feats, newest where feats.event_timestamp = newest.at
            """
        ).fetchone()
    finally:
        con.close()
    coverage = covered / customers if customers else 0.0
    threshold = s.thresholds.feature_coverage
    return AssetCheckResult(
        passed=coverage >= threshold,
        severity=AssetCheckSeverity.ERROR,
        description=f"{coverage:.1%} of {customers} customers have today's features (threshold {threshold:.0%})",
        metadata={
            "coverage": coverage,
            "threshold": threshold,
            "customers": int(customers),
            "customers_with_features": int(covered),
            "snapshot_at": str(newest),
        },
    )


@asset(
    group_name=GROUP,
    owners=[OWNER],
    kinds={"parquet"},
    freshness_policy=DAILY,
    description=(
        "The feature version Feast reads (``features/current``), switched atomically to the new "
        "snapshot once its gates passed."
    ),
)
def published_features(
    context: AssetExecutionContext, feature_snapshot: FeatureVersion, settings: CampaignSettings
) -> Output[FeatureVersion]:
    s = settings.get()
    previous = current_feature_version(s.features_dir)
    published = publish_feature_version(s.features_dir, feature_snapshot.version)
    return Output(
        published,
        data_version=DataVersion(published.version.split("-")[-1]),
        metadata={
            "version": published.version,
            "previous_version": previous.version if previous else "none",
            "published_dir": MetadataValue.path(str(s.features_dir / "current")),
        },
    )


@asset(
    deps=[published_features],
    group_name=GROUP,
    owners=[OWNER],
    kinds={"feast"},
    description="`feast apply` of feature_repo/: the customer entity, feature views and services.",
)
def feature_store_registry(
    context: AssetExecutionContext, settings: CampaignSettings
) -> MaterializeResult:
    from orchestration.core.features.feast_store import apply_feature_definitions

    s = settings.get()
    applied = apply_feature_definitions(s)
    return MaterializeResult(
        metadata={
            "entities": ", ".join(applied.entities),
            "feature_views": ", ".join(applied.feature_views),
            "feature_services": ", ".join(applied.feature_services),
            "registry": MetadataValue.path(str(s.feast_dir / "registry.db")),
        }
    )


@asset(
    deps=[feature_store_registry],
    group_name=GROUP,
    owners=[OWNER],
    kinds={"feast", "sqlite"},
    freshness_policy=ONLINE_WINDOW,
    description=(
        "Today's snapshot materialized into the online store (SQLite by default) for per-request "
        "lookups."
    ),
)
def online_features(
    context: AssetExecutionContext, published_features: FeatureVersion, settings: CampaignSettings
) -> MaterializeResult:
    import time

    from orchestration.core.features.feast_store import materialize_online, online_store_location
    from orchestration.core.features.tables import snapshot_times, table_row_counts

    s = settings.get()
    newest = snapshot_times(published_features.path)[-1]
    started = time.perf_counter()
    materialize_online(s, start=newest - timedelta(seconds=1), end=newest + timedelta(seconds=1))
    return MaterializeResult(
        metadata={
            "snapshot_at": newest.isoformat(),
            "feature_version": published_features.version,
            "seconds": round(time.perf_counter() - started, 2),
            "feature_rows_in_version": sum(table_row_counts(published_features.path).values()),
            "online_store": MetadataValue.path(online_store_location(s)),
        }
    )


@asset_check(
    asset=online_features,
    name="online_store_fresh",
    blocking=True,
    additional_deps=[AssetKey("dim_customers")],
    description=(
        "Sampled customers' online features are present and younger than "
        "CAMPAIGN_ONLINE_FRESHNESS_HOURS (Feast does not apply TTL to online reads); at most "
        "CAMPAIGN_ONLINE_STALE_SHARE_THRESHOLD of them may be stale."
    ),
)
def online_store_fresh(settings: CampaignSettings) -> AssetCheckResult:
    from orchestration.core.features.online_freshness import measure_online_freshness

    s = settings.get()
    customers = open_warehouse(s).read_table("dim_customers", columns=["customer_id"])
    result = measure_online_freshness(
        s, customers["customer_id"].to_numpy(), s.thresholds.online_freshness_hours, now=s.now()
    )
    threshold = s.thresholds.online_stale_share
    return AssetCheckResult(
        passed=result.stale_share <= threshold,
        severity=AssetCheckSeverity.ERROR,
        description=(
            f"{result.stale_share:.1%} of {result.sampled} sampled customers have stale or missing "
            f"online features (window {result.window_hours:g} h, threshold {threshold:.0%})"
        ),
        metadata={
            "stale_share": result.stale_share,
            "threshold": threshold,
            "sampled": result.sampled,
            "stale": result.stale,
            "missing": result.missing,
            "oldest_age_hours": result.oldest_age_hours
            if result.oldest_age_hours is not None
            else -1.0,
            "window_hours": result.window_hours,
        },
    )


# --- the way out of a drift block ----------------------------------------------------------------


class CandidateConfig(Config):
    """Which staged version to retrain on (default: the newest one newer than ``current``)."""

    version: str | None = None


@asset(
    group_name=RECOVERY_GROUP,
    owners=[OWNER],
    kinds={"parquet"},
    description=(
        "The candidate feature version: the newest staged version newer than the published one "
        "(the snapshot a drift block refused), or the one named in the run config. Read only; "
        "drift_recovery publishes it when the recovery gates pass."
    ),
)
def candidate_features(
    context: AssetExecutionContext, config: CandidateConfig, settings: CampaignSettings
) -> Output[FeatureVersion]:
    from orchestration.core.features.tables import snapshot_times, table_row_counts

    s = settings.get()
    published = current_feature_version(s.features_dir)
    candidate = candidate_feature_version(s.features_dir, config.version)
    if candidate is None:
        raise FileNotFoundError(
            "no feature version is staged after the published one "
            f"({published.version if published else 'none'}): nothing to recover; "
            "run campaign_pipeline first (its feature_snapshot stages today's version)"
        )
    times = snapshot_times(candidate.path)
    exports = exports_digest(open_warehouse(s))
    return Output(
        candidate,
        data_version=DataVersion(content_digest(candidate.version)),
        metadata={
            "version": candidate.version,
            "version_dir": MetadataValue.path(str(candidate.path)),
            "published_version": published.version if published else "none",
            "newest_snapshot": times[-1].isoformat() if times else "none",
            # the exports (exposures) the training set joins are the ones this version came from
            "exports_match_candidate": exports == content_digest(candidate.version),
            **{f"rows_{t}": n for t, n in table_row_counts(candidate.path).items()},
        },
    )


@asset_check(
    asset=AssetKey("candidate_challenger"),
    name="drift_below_threshold",
    blocking=True,
    additional_ins={"candidate_features": AssetIn("candidate_features")},
    description=(
        "Share of drifted feature columns (Evidently) between the challenger's own training "
        "reference (logged with its MLflow run) and the candidate's newest snapshot stays below "
        "CAMPAIGN_DRIFT_SHARE_THRESHOLD. Also records, for comparison, the share against the "
        "champion's reference (the one that blocked). drift_recovery publishes only if it passed "
        "in the same run."
    ),
)
def candidate_drift_below_threshold(
    context,
    candidate_challenger,
    candidate_features: FeatureVersion,
    settings: CampaignSettings,
) -> AssetCheckResult:
    from orchestration.core.model.registry import load_reference_features

    s = settings.get()
    reference = load_reference_features(s, candidate_challenger.run_id)
    who = f"{candidate_challenger.name} v{candidate_challenger.version} (challenger)"
    if reference is None:
        return AssetCheckResult(
            passed=False,
            severity=AssetCheckSeverity.ERROR,
            description=f"{who} has no drift reference in its MLflow run",
            metadata={"threshold": s.thresholds.drift_share, "reference": "none"},
        )
    passed, description, metadata = _measure_drift(
        s,
        candidate_features,
        reference,
        f"training reference of {who}",
        f"{candidate_features.version}-challenger-v{candidate_challenger.version}",
    )
    before, before_name = _drift_reference(s, candidate_features)
    _, _, against_champion = _measure_drift(
        s, candidate_features, before, before_name, f"{candidate_features.version}-champion"
    )
    return AssetCheckResult(
        passed=passed,
        severity=AssetCheckSeverity.ERROR,
        description=f"{description} (against the champion's reference: "
        f"{against_champion['drift_share']:.2f})",
        metadata={
            **metadata,
            "candidate_version": candidate_features.version,
            "challenger_version": candidate_challenger.version,
            "drift_share_vs_champion_reference": against_champion["drift_share"],
            "champion_reference": before_name,
        },
    )
