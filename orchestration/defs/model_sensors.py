"""Retraining: the ``retrain_model`` and ``retrain_on_candidate_features`` jobs and the sensor that
requests them (decision logic lives in ``orchestration.core.model.retraining``).

A failed drift gate requests ``retrain_on_candidate_features`` (the way out of a drift block: a
challenger trained on the refused feature version, promoted and published with it only when the
recovery gates pass); a low measured lift requests ``retrain_model`` (the published features).
"""

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
RECOVERY_GROUP = "drift_recovery"

retrain_model = define_asset_job(
    name="retrain_model",
    selection=AssetSelection.assets("training_set", "uplift_model", "model_promotion"),
    description=(
        "Rebuild the training set and train a new uplift model version (a challenger: the "
        "promotion gate decides, model_promotion moves the alias). Requested by retraining_sensor."
    ),
)

retrain_on_candidate_features = define_asset_job(
    name="retrain_on_candidate_features",
    selection=AssetSelection.groups(RECOVERY_GROUP),
    description=(
        "The way out of a drift block: train a challenger on the CANDIDATE feature version (the "
        "newest staged, unpublished one: what the drift gate refused), judge it against the "
        "champion on the candidate's held-out customers and measure the candidate's drift "
        "against the challenger's own reference; drift_recovery then promotes the challenger and "
        "publishes the candidate, both or neither. Run config "
        "ops.candidate_challenger_promotion_gate.config.accept_if_not_worse: true is the "
        "operator's acceptance of a challenger not shown worse. Requested by retraining_sensor "
        "when the drift gate fails (strict rule)."
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
    jobs=[retrain_on_candidate_features, retrain_model],
    minimum_interval_seconds=300,
    default_status=DefaultSensorStatus.STOPPED,
    description=(
        "Requests retrain_on_candidate_features once per failed feature drift gate evaluation "
        "and retrain_model once per campaign_results materialization whose measured lift is below "
        "CAMPAIGN_MIN_LIFT."
    ),
)
def retraining_sensor(context: SensorEvaluationContext):
    from orchestration.settings import Settings

    min_lift = Settings.from_env().min_lift
    # one decision per trigger, chained through the cursor: each asks for its own job
    drift = should_retrain(
        latest_drift_evaluation(context.instance), None, min_lift=min_lift, cursor=context.cursor
    )
    lift = should_retrain(
        None, latest_results(context.instance), min_lift=min_lift, cursor=drift.cursor
    )
    context.update_cursor(lift.cursor)
    requests = [
        RunRequest(
            run_key=decision.run_key,
            job_name=job.name,
            tags={"retrain_reason": "; ".join(decision.reasons)},
        )
        for decision, job in ((drift, retrain_on_candidate_features), (lift, retrain_model))
        if decision.retrain
    ]
    if not requests:
        return SkipReason("no new failed drift evaluation and no new low-lift result")
    return requests[0] if len(requests) == 1 else requests
