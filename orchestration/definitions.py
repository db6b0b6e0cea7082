"""The one Definitions object of the code location. Nothing else lives here."""

from dagster import Definitions, in_process_executor, load_assets_from_modules

from orchestration.defs import (
    alerts,
    campaigns,
    delivery,
    features,
    freshness_sensors,
    jobs,
    model,
    model_sensors,
    observability,
    raw_data,
    reports,
    results,
    run_history,
    targeting,
    warehouse,
)
from orchestration.resources import build_resources

ALL_JOBS = [
    jobs.campaign_pipeline,
    model_sensors.retrain_model,
    model_sensors.retrain_on_candidate_features,
    delivery.dispatch_due_messages,
]

defs = Definitions(
    assets=[
        *load_assets_from_modules(
            [
                raw_data,
                warehouse,
                features,
                model,
                targeting,
                campaigns,
                delivery,
                observability,
                results,
                reports,
            ]
        ),
        # an external asset: only the run_health_recorder sensors and `campaign run` report it
        run_history.run_health_history,
    ],
    asset_checks=[
        *raw_data.raw_freshness_checks,
        *raw_data.safety_table_checks,
        features.drift_share_below_threshold,
        features.features_cover_candidates,
        features.online_store_fresh,
        features.candidate_drift_below_threshold,
        model.champion_beats_random,
        model.challenger_promotion_gate,
        model.candidate_challenger_promotion_gate,
        targeting.audience_compliant,
        targeting.canary_guardrails,
        campaigns.all_campaign_files_valid,
    ],
    jobs=ALL_JOBS,
    schedules=[jobs.daily_campaign_schedule, delivery.hourly_dispatch_schedule],
    sensors=[
        # every job alerts on its failed gates and failed runs (retraining included)
        *alerts.campaign_alerts_sensors(ALL_JOBS),
        freshness_sensors.freshness_watch,
        model_sensors.retraining_sensor,
        *run_history.run_health_recorders(ALL_JOBS),
    ],
    resources=build_resources(),
    # One process runs the steps in order: no 5-9 s subprocess start per step, and never two
    # writers of the DuckDB warehouse inside a run.
    executor=in_process_executor,
)
