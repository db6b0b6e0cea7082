"""Retraining: the ``retrain_model`` job and the sensor that requests it (decision logic lives in
``orchestration.core.model.retraining``)."""

from dagster import (
    AssetCheckKey,
    AssetKey,
    AssetSelection,
    DefaultSensorStatus,
    RunRequest,
    SensorEvaluationContext,
    SkipReason,
    define_asset_job,
    sensor,
)

from orchestration.core.model.retraining import Observation, should_retrain

DRIFT_CHECK = AssetCheckKey(AssetKey("feature_snapshot"), "drift_share_below_threshold")
RESULTS = AssetKey("campaign_results")
LIFT_METADATA = "latest_lift"

retrain_model = define_asset_job(
    name="retrain_model",
    selection=AssetSelection.assets("training_set", "uplift_model", "model_promotion"),
    description=(
        "Rebuild the training set and train a new uplift model version (a challenger: the "
        "promotion gate decides, model_promotion moves the alias). Requested by retraining_sensor."
    ),
)


def latest_drift_evaluation(instance) -> Observation | None:
    records = instance.event_log_storage.get_latest_asset_check_execution_by_key([DRIFT_CHECK])
    record = records.get(DRIFT_CHECK)
    evaluation = record.evaluation if record is not None else None
    if evaluation is None:  # none yet, or only planned
        return None
    return Observation(event_id=int(record.id), failed=not evaluation.passed)


def latest_results(instance) -> Observation | None:
    found = instance.fetch_materializations(RESULTS, limit=1).records
    if not found:
        return None
    record = found[0]
    value = record.asset_materialization.metadata.get(LIFT_METADATA)
    lift = getattr(value, "value", value)
    return Observation(
        event_id=int(record.storage_id), lift=float(lift) if lift is not None else None
    )


@sensor(
    job=retrain_model,
    minimum_interval_seconds=300,
    default_status=DefaultSensorStatus.STOPPED,
    description=(
        "Requests retrain_model once per failed feature drift gate evaluation and once per "
        "campaign_results materialization whose measured lift is below CAMPAIGN_MIN_LIFT."
    ),
)
def retraining_sensor(context: SensorEvaluationContext):
    from orchestration.settings import Settings

    decision = should_retrain(
        latest_drift_evaluation(context.instance),
        latest_results(context.instance),
        min_lift=Settings.from_env().min_lift,
        cursor=context.cursor,
    )
    context.update_cursor(decision.cursor)
    if not decision.retrain:
        return SkipReason("no new failed drift evaluation and no new low-lift result")
    return RunRequest(
        run_key=decision.run_key, tags={"retrain_reason": "; ".join(decision.reasons)}
    )
