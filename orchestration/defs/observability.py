"""Run health: the seed metrics of every run, as plotted asset metadata and in a metrics table."""

from dagster import AssetExecutionContext, AssetKey, MaterializeResult, MetadataValue, asset

from orchestration.resources import CampaignSettings


@asset(
    deps=[AssetKey("campaign_sends")],
    group_name="observability",
    owners=["team:data-platform"],
    kinds={"sqlite"},
    description=(
        "The seed metrics of this run (per-stage latency, inference success rate, data freshness "
        "lag, feature availability, policy compliance rate, send delivery rate; the decision "
        "API's latency p50/p99, inference success rate and online feature availability over the "
        "last day) as numeric "
        "metadata the UI plots over runs, appended to the metrics table (data/metrics/metrics.db)."
    ),
)
def run_health(context: AssetExecutionContext, settings: CampaignSettings) -> MaterializeResult:
    from orchestration.core.observability.metrics_table import record_run_metrics
    from orchestration.run_summary import online_metrics, seed_metrics, summarize_run

    s = settings.get()
    summary = summarize_run(context.instance, context.run.run_id)
    metrics = seed_metrics(summary, online_metrics(s))
    path = s.data_dir / "metrics" / "metrics.db"
    record_run_metrics(path, context.run.run_id, "IN_PROGRESS", metrics)
    return MaterializeResult(metadata={**metrics, "metrics_table": MetadataValue.path(str(path))})
