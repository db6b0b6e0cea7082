"""The campaign pipeline job and its daily schedule."""

from dagster import AssetSelection, ScheduleDefinition, define_asset_job

campaign_pipeline = define_asset_job(
    name="campaign_pipeline",
    # everything but the way out of a drift block (its own job, retrain_on_candidate_features)
    selection=AssetSelection.all() - AssetSelection.groups("drift_recovery"),
    description=(
        "Raw data to gated campaign sends: dbt build, feature publish, Feast, training, scoring, "
        "decisions, sends. A failed gate stops the run before any message goes out."
    ),
)

daily_campaign_schedule = ScheduleDefinition(
    name="daily_campaign_pipeline",
    job=campaign_pipeline,
    cron_schedule="0 6 * * *",
    execution_timezone="UTC",
    description="Run the whole pipeline every morning at 06:00 UTC (start it in the UI).",
)
