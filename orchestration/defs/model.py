"""Training set (Feast point-in-time at each past exposure), the registered uplift model, the
gate that decides on a challenger and the one step that moves the champion alias; and the way out
of a drift block (job retrain_on_candidate_features, group drift_recovery, at the end)."""

import dataclasses
import json
import subprocess
from pathlib import Path

import pandas as pd
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetExecutionContext,
    AssetIn,
    AssetKey,
    Config,
    MaterializeResult,
    MetadataValue,
    Output,
    asset,
    asset_check,
)

from orchestration.core.features.publishing import FeatureVersion
from orchestration.core.model.registry import RegisteredModel
from orchestration.core.world.warehouse import open_warehouse
from orchestration.resources import CampaignSettings

GROUP = "model"
OWNER = "team:data-science"
# The outcome the model learns is a setting (CAMPAIGN_TARGET): has_converted for the synthetic
# world and most retail data, has_visited for Hillstrom (its protocol; conversions are too rare).


def _code_version() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _in_entity_order(frame: pd.DataFrame, entities: pd.DataFrame) -> pd.DataFrame:
    """Feast returns the rows in no fixed order; the model's bins and the bootstrap intervals
    (the model gates' evidence) depend on row order, so the same data must come in one order."""
    return frame.sort_values(list(entities.columns), kind="stable").reset_index(drop=True)


@asset(
    deps=[AssetKey("fct_campaign_exposures"), AssetKey("feature_store_registry")],
    group_name=GROUP,
    owners=[OWNER],
    kinds={"feast", "parquet"},
    description=(
        "One row per past randomized exposure with a complete outcome window: Feast features as "
        "of the exposure's timestamp (point-in-time), the arm and the outcome."
    ),
)
def training_set(
    context: AssetExecutionContext, published_features: FeatureVersion, settings: CampaignSettings
) -> Output[str]:
    from orchestration.core.features.feast_store import (
        FEATURE_SERVICE,
        feature_names,
        historical_features,
    )
    from orchestration.core.model.training import training_entities

    s = settings.get()
    exposures = open_warehouse(s).read_table("fct_campaign_exposures")
    entities, sample = _sampled_entities(training_entities(exposures, s.target), s)
    frame = _in_entity_order(historical_features(s, entities, FEATURE_SERVICE), entities)
    features = feature_names(s, FEATURE_SERVICE)
    path = s.pipeline_dir / "training_set.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(path, index=False)
    _write_sample_note(path, sample)
    return Output(
        str(path),
        metadata={
            **_training_set_metadata(frame, features, published_features, s, path),
            **_sample_metadata(sample),
        },
    )


def _sampled_entities(entities: pd.DataFrame, s):
    from orchestration.core.model.training import sample_training_entities

    return sample_training_entities(entities, s.training_max_rows)


def _sample_note_path(training_set: str | Path) -> Path:
    return Path(training_set).with_suffix(".sample.json")


def _write_sample_note(path: Path, sample) -> None:
    """Beside the training set: how many exposures it kept of how many (the model states it)."""
    _sample_note_path(path).write_text(json.dumps(dataclasses.asdict(sample)))


def _sample_metadata(sample) -> dict:
    from orchestration.core.model.training import TRAINING_SAMPLE_REASON

    return {
        "training_sample": sample.describe(),
        "exposures_available": sample.available,
        **({"why_the_sample_is_enough": TRAINING_SAMPLE_REASON} if sample.is_sampled else {}),
    }


def _read_sample_metadata(training_set: str) -> dict:
    from orchestration.core.model.training import TrainingSample

    note = _sample_note_path(training_set)
    if not note.exists():
        return {}
    return _sample_metadata(TrainingSample(**json.loads(note.read_text())))


def _training_set_metadata(frame, features, version: FeatureVersion, s, path) -> dict:
    from orchestration.core.features.feast_store import FEATURE_SERVICE

    null_share = float(frame[features].isna().any(axis=1).mean()) if len(frame) else 0.0
    return {
        "rows": len(frame),
        "treated": int(frame["is_treated"].sum()),
        **(
            {
                "arms": ", ".join(
                    f"{a}: {n:,}" for a, n in frame["arm"].value_counts().sort_index().items()
                )
            }
            if "arm" in frame.columns
            else {}
        ),
        "control": int((1 - frame["is_treated"]).sum()),
        "label_rate": float(frame["label"].mean()) if len(frame) else 0.0,
        "campaigns": ", ".join(sorted(frame["campaign_id"].unique())),
        "feature_service": FEATURE_SERVICE,
        "feature_version": version.version,
        "rows_with_missing_features": null_share,
        "target": s.target,
        "file": MetadataValue.path(str(path)),
    }


@asset(
    group_name=GROUP,
    owners=[OWNER],
    kinds={"mlflow", "lightgbm"},
    description=(
        "An uplift model (CAMPAIGN_LEARNER: two_model T-learner by default, class_transformation "
        "or response) trained on treated vs control, evaluated on held-out customers (Qini, AUUC, "
        "uplift@k with bootstrap intervals), logged to MLflow and registered; the first version "
        "becomes the champion, later ones the challenger."
    ),
)
def uplift_model(
    context: AssetExecutionContext,
    training_set: str,
    published_features: FeatureVersion,
    settings: CampaignSettings,
) -> Output[RegisteredModel]:
    from orchestration.core.features.feast_store import FEATURE_SERVICE
    from orchestration.core.features.tables import read_feature_rows
    from orchestration.core.model.registry import log_and_register

    s = settings.get()
    frame, result, curve = _train(context, s, training_set)
    reference = read_feature_rows(
        published_features.path, latest=False, sample_rows=s.thresholds.drift_sample_rows
    )
    registered = log_and_register(
        s,
        result,
        frame,
        reference_features=reference,
        tags={
            "feature_service": FEATURE_SERVICE,
            "feature_version": published_features.version,
            "data_version": published_features.version.split("-")[-1],
            "code_version": _code_version(),
            "dagster_run_id": context.run.run_id,
            "dataset": s.dataset,
            "target": s.target,
            "training_sample": _read_sample_metadata(training_set).get("training_sample", ""),
        },
    )
    return Output(
        registered,
        metadata={
            **_model_metadata(registered, result.metrics, s, curve),
            **_read_sample_metadata(training_set),
        },
    )


def _train(context, s, training_set: str, prefix: str = "qini_curve"):
    """Train CAMPAIGN_LEARNER on a training set file and evaluate it on held-out customers."""
    from orchestration.core.features.feast_store import FEATURE_SERVICE, feature_names
    from orchestration.core.model.training import train_and_evaluate

    frame = pd.read_parquet(training_set)
    features = feature_names(s, FEATURE_SERVICE)
    truth_path = s.ground_truth_dir / "customer_uplift.parquet"
    truth = (
        pd.read_parquet(truth_path) if s.dataset == "synthetic" and truth_path.exists() else None
    )
    curve = s.reports_dir / "model" / f"{prefix}_{context.run.run_id[:8]}.png"
    result = train_and_evaluate(frame, features, s.learner, ground_truth=truth, curve_path=curve)
    return frame, result, curve


def _model_metadata(registered: RegisteredModel, m: dict, s, curve) -> dict:
    return {
        "model": f"{registered.name} v{registered.version}",
        "aliases": ", ".join(registered.aliases),
        "mlflow_run_id": registered.run_id,
        "mlflow_ui": MetadataValue.url(
            f"http://127.0.0.1:5000/#/models/{registered.name}/versions/{registered.version}"
        ),
        "qini": m["qini"],
        "qini_ci": f"[{m['qini_ci_low']:.4f}, {m['qini_ci_high']:.4f}]",
        "auuc": m["auuc"],
        "auuc_ci": f"[{m['auuc_ci_low']:.4f}, {m['auuc_ci_high']:.4f}]",
        "uplift_at_30": m["uplift_at_30"],
        "uplift_at_30_ci": f"[{m['uplift_at_30_ci_low']:.4f}, {m['uplift_at_30_ci_high']:.4f}]",
        **(
            {"oracle_ratio_qini": m["oracle_ratio_qini"]}
            if "oracle_ratio_qini" in m
            else {"oracle_ratio": f"n/a: no ground truth for {s.dataset} data"}
        ),
        "dataset": s.dataset,
        "target": s.target,
        "train_rows": int(m["train_rows"]),
        "holdout_rows": int(m["holdout_rows"]),
        "bootstrap_resamples": int(m["bootstrap_resamples"]),
        "qini_curve": MetadataValue.path(str(curve)),
        **_arm_metadata(m),
    }


def _arm_metadata(m: dict) -> dict:
    """A multi-arm model's figures per arm (the unprefixed ones are its best-arm policy's)."""
    from orchestration.core.model.arms import arm_metric, arms_in_metrics

    arms = arms_in_metrics(m)
    if not arms:
        return {}
    out: dict = {"arms": ", ".join(arms), "unprefixed_metrics_are": "the best-arm policy's"}
    for arm in arms:
        for key in ("qini", "uplift_at_30"):
            value = m[arm_metric(arm, key)]
            low, high = m[arm_metric(arm, f"{key}_ci_low")], m[arm_metric(arm, f"{key}_ci_high")]
            out[f"arm_{arm}_{key}"] = value
            out[f"arm_{arm}_{key}_ci"] = f"[{low:.4f}, {high:.4f}]"
        out[f"arm_{arm}_share_picked"] = m[arm_metric(arm, "share_picked")]
    return out


@asset_check(
    asset=uplift_model,
    name="challenger_promotion_gate",
    blocking=True,
    additional_ins={"training_set": AssetIn("training_set")},
    description=(
        "Decides, never acts: champion and challenger score the same held-out customers of the "
        "current training set; the verdict is 'promote' when the challenger's Qini beats the "
        "champion's by more than CAMPAIGN_PROMOTION_MARGIN and the paired-bootstrap 95% interval "
        "of the difference is above 0. The comparison is recorded on the challenger's MLflow run "
        "(tag promotion_decision, with this Dagster run's id); the model_promotion asset moves "
        "the alias. Keeping the champion passes (severity WARN); the check fails (ERROR, and "
        "model_promotion is skipped) only when the comparison cannot run. Re-running it moves "
        "nothing."
    ),
)
def challenger_promotion_gate(
    context, training_set: str, settings: CampaignSettings
) -> AssetCheckResult:
    from orchestration.core.features.feast_store import FEATURE_SERVICE, feature_names
    from orchestration.core.model.promotion import (
        compare_on_holdout,
        holdout_rows,
        log_comparison,
        log_comparison_failure,
    )
    from orchestration.core.model.registry import CHALLENGER, describe_alias, load_alias

    s = settings.get()
    run_id = context.run.run_id
    override = (s.promote_override or "").strip()
    note = f"; manual override requested: model_promotion makes v{override} the champion"
    note = note if override else ""
    champion = describe_alias(s)
    champion_version = champion.version if champion else None
    challenger = describe_alias(s, CHALLENGER)
    if challenger is None:
        return AssetCheckResult(
            passed=True,
            description=f"no challenger is waiting; champion v{champion_version} keeps serving"
            + note,
            metadata={
                "verdict": "nothing to compare",
                "gate_says_promote": False,
                "champion_version": str(champion_version),
                "manual_override": override or "none",
            },
        )
    try:
        decision = compare_on_holdout(
            load_alias(s),
            load_alias(s, CHALLENGER),
            holdout_rows(pd.read_parquet(training_set)),
            feature_names(s, FEATURE_SERVICE),
            margin=s.promotion_margin,
            champion_version=champion_version,
            challenger_version=challenger.version,
        )
    except Exception as exc:  # noqa: BLE001 - a comparison that cannot run fails the check
        error = f"{type(exc).__name__}: {exc}"
        log_comparison_failure(
            s, challenger.run_id, challenger.version, champion_version, error, run_id
        )
        return AssetCheckResult(
            passed=False,
            severity=AssetCheckSeverity.ERROR,
            description=f"cannot compare challenger v{challenger.version} with champion "
            f"v{champion_version}: {error}; no alias moves",
            metadata={
                "verdict": "cannot compare",
                "gate_says_promote": False,
                "challenger_version": challenger.version,
                "champion_version": str(champion_version),
                "error": error[:1000],
                "manual_override": override or "none",
                "mlflow_run_id": challenger.run_id,
            },
        )
    log_comparison(s, challenger.run_id, decision, run_id)
    verdict = (
        f"promote: model_promotion moves the champion alias to v{challenger.version}"
        if decision.promote
        else f"keep champion v{champion_version}"
    )
    return AssetCheckResult(
        passed=True,
        severity=AssetCheckSeverity.WARN,
        description=(
            f"challenger v{challenger.version} vs champion v{decision.champion_version}: "
            f"{decision.reason}; {verdict}{note}"
        ),
        metadata={
            "verdict": "promote" if decision.promote else "keep champion",
            "gate_says_promote": decision.promote,
            "rule": "qini_diff > margin and qini_diff_ci_low > 0",
            "champion_version": str(decision.champion_version),
            "challenger_version": challenger.version,
            "champion_qini": decision.champion_qini,
            "challenger_qini": decision.challenger_qini,
            "champion_uplift_at_30": decision.champion_uplift_at_30,
            "challenger_uplift_at_30": decision.challenger_uplift_at_30,
            "qini_diff": decision.qini_diff,
            "qini_diff_ci": f"[{decision.qini_diff_ci_low:.4f}, {decision.qini_diff_ci_high:.4f}]",
            "qini_diff_ci_low": decision.qini_diff_ci_low,
            "qini_diff_ci_high": decision.qini_diff_ci_high,
            "margin": decision.margin,
            "holdout_rows": decision.holdout_rows,
            "bootstrap_resamples": decision.n_boot,
            "manual_override": override or "none",
            "mlflow_run_id": challenger.run_id,
            "severity": "INFO" if decision.promote else "WARN",
        },
    )


def _refuse_unapproved_override(context: AssetExecutionContext, s, plan):
    """A manual override without a four-eyes approval (CAMPAIGN_REQUIRE_APPROVALS) moves
    nothing: the champion keeps serving and the step says why."""
    from orchestration.core.model.promotion import (
        MANUAL_OVERRIDE,
        PromotionPlan,
        override_approval,
    )

    if plan.target is None or not (plan.promoted_by or "").startswith(MANUAL_OVERRIDE):
        return plan
    approval = override_approval(s, plan.target)
    if approval is None or approval.approved:
        return plan
    context.log.error(f"manual promotion to v{plan.target} refused: {approval.reason}")
    return PromotionPlan(None, None, f"manual override refused: {approval.reason}")


@asset(
    deps=[uplift_model, AssetKey("training_set")],
    group_name=GROUP,
    owners=[OWNER],
    kinds={"mlflow"},
    description=(
        "Moves the champion alias, the only step that does: onto the challenger when "
        "challenger_promotion_gate decided 'promote' on THIS challenger version in THIS run "
        "against the current champion (it re-reads the decision from the challenger's MLflow "
        "run), or onto CAMPAIGN_PROMOTE_OVERRIDE=<version>. The moved version is tagged "
        "promoted_by (promotion_gate | manual_override:<version>), promoted_at, promoted_from "
        "and promoted_in_run. With CAMPAIGN_REQUIRE_APPROVALS an override moves nothing until "
        "another identity approved that model version (`campaign approve model`). Skipped when "
        "the gate fails; otherwise the champion keeps serving."
    ),
)
def model_promotion(
    context: AssetExecutionContext, settings: CampaignSettings
) -> MaterializeResult:
    from orchestration.core.model.promotion import move_champion, plan_promotion, recorded_decision
    from orchestration.core.model.registry import CHALLENGER, describe_alias

    s = settings.get()
    run_id = context.run.run_id
    champion = describe_alias(s)
    before = champion.version if champion else None
    challenger = describe_alias(s, CHALLENGER)
    recorded = recorded_decision(s, challenger.run_id) if challenger else None
    plan = plan_promotion(
        before,
        challenger.version if challenger else None,
        recorded,
        override=s.promote_override,
        run_id=run_id,
    )
    plan = _refuse_unapproved_override(context, s, plan)
    moved, promoted_at = plan.target is not None, None
    if moved:
        outcome = move_champion(s, plan.target, plan.promoted_by, run_id=run_id)
        moved, promoted_at = outcome.changed, outcome.promoted_at
        context.log.info(f"champion moved from v{before} to v{plan.target}: {plan.reason}")
    after = plan.target if moved else before
    return MaterializeResult(
        metadata={
            "promoted": moved,
            "champion_before": str(before),
            "champion_after": str(after),
            "challenger_version": str(challenger.version if challenger else None),
            "promoted_by": plan.promoted_by if moved else "none",
            "promoted_at": promoted_at if moved else "none",
            "reason": plan.reason,
            "gate_decision": (recorded.outcome if recorded else None) or "none",
            "gate_decision_run_id": (recorded.dagster_run_id if recorded else None) or "none",
            "manual_override": (s.promote_override or "").strip() or "none",
        },
    )


@asset_check(
    asset=model_promotion,
    name="champion_beats_random",
    blocking=True,
    description=(
        "The model that scores the campaigns (alias champion, after model_promotion) ranks "
        "better than random on its held-out customers, on evidence: the LOWER bound of its "
        "Qini's 95% bootstrap interval (stored with its MLflow run) must be above the floor "
        "(CAMPAIGN_MIN_CHAMPION_QINI, 0 by default). A champion without a stored interval fails. "
        "A weak champion stops the sends."
    ),
)
def champion_beats_random(context, settings: CampaignSettings) -> AssetCheckResult:
    from orchestration.core.model.gates import RULE, champion_gate
    from orchestration.core.model.registry import describe_alias

    s = settings.get()
    floor = s.thresholds.min_champion_qini
    champion = describe_alias(s)
    if champion is None:
        return AssetCheckResult(
            passed=False,
            severity=AssetCheckSeverity.ERROR,
            description=f"no version of {s.model_name} carries the alias 'champion'",
            metadata={"rule": RULE, "floor": floor, "champion_version": "none"},
        )
    gate = champion_gate(champion.metrics, floor, version=champion.version)
    return AssetCheckResult(
        passed=gate.passed,
        severity=AssetCheckSeverity.ERROR,
        description=gate.description,
        metadata={
            **gate.evidence,
            "champion_version": champion.version,
            "uplift_at_30": champion.metrics.get("uplift_at_30", float("nan")),
            "mlflow_run_id": champion.run_id,
        },
    )


# --- the way out of a drift block (job retrain_on_candidate_features) ----------------------------
# candidate_features (defs/features.py) -> candidate_training_set -> candidate_challenger
#   [candidate_challenger:promotion_gate, candidate_challenger:drift_below_threshold]
#   -> drift_recovery
# The rules live in orchestration.core.model.drift_recovery.

RECOVERY_GROUP = "drift_recovery"
RECOVERY_GATES = [
    ("candidate_challenger", "promotion_gate"),
    ("candidate_challenger", "drift_below_threshold"),
]


@asset(
    deps=[AssetKey("fct_campaign_exposures")],
    group_name=RECOVERY_GROUP,
    owners=[OWNER],
    kinds={"feast", "parquet"},
    description=(
        "training_set over the CANDIDATE feature version: the same exposures and feature "
        "service, point-in-time (Feast historical retrieval against the candidate's own files "
        "in a scratch registry; the live registry, online store and `current` are untouched)."
    ),
)
def candidate_training_set(
    context: AssetExecutionContext, candidate_features: FeatureVersion, settings: CampaignSettings
) -> Output[str]:
    from orchestration.core.features.candidate import candidate_historical_features
    from orchestration.core.features.feast_store import FEATURE_SERVICE, feature_names
    from orchestration.core.features.publishing import current_feature_version
    from orchestration.core.features.tables import snapshot_times
    from orchestration.core.model.training import training_entities

    s = settings.get()
    exposures = open_warehouse(s).read_table("fct_campaign_exposures")
    entities, sample = _sampled_entities(training_entities(exposures, s.target), s)
    frame = _in_entity_order(
        candidate_historical_features(s, candidate_features, entities, FEATURE_SERVICE), entities
    )
    path = s.pipeline_dir / "candidate_training_set.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(path, index=False)
    _write_sample_note(path, sample)
    published = current_feature_version(s.features_dir)
    after = snapshot_times(published.path)[-1] if published else None
    newer = (
        int((pd.to_datetime(frame["event_timestamp"], utc=True) > after).sum())
        if after is not None
        else len(frame)
    )
    features = feature_names(s, FEATURE_SERVICE)
    return Output(
        str(path),
        metadata={
            **_training_set_metadata(frame, features, candidate_features, s, path),
            **_sample_metadata(sample),
            "rows_after_published_snapshot": newer,
            "published_version": published.version if published else "none",
        },
    )


@asset(
    group_name=RECOVERY_GROUP,
    owners=[OWNER],
    kinds={"mlflow", "lightgbm"},
    description=(
        "A challenger trained on candidate_training_set (CAMPAIGN_LEARNER), evaluated on held-out "
        "customers, logged and registered as `challenger`. Its drift reference is the candidate's "
        "newest snapshot (the recovery re-baselines the drift gate onto what it is accepted for). "
        "Refuses to run without a champion (it would become champion unjudged)."
    ),
)
def candidate_challenger(
    context: AssetExecutionContext,
    candidate_training_set: str,
    candidate_features: FeatureVersion,
    settings: CampaignSettings,
) -> Output[RegisteredModel]:
    from orchestration.core.features.feast_store import FEATURE_SERVICE
    from orchestration.core.model.drift_recovery import REFERENCE_KIND, rebaselined_reference
    from orchestration.core.model.registry import describe_alias, log_and_register

    s = settings.get()
    if describe_alias(s) is None:
        raise ValueError(
            f"{s.model_name} has no champion: the recovery judges a challenger against the "
            "champion; run campaign_pipeline's model steps first"
        )
    frame, result, curve = _train(context, s, candidate_training_set, "candidate_qini_curve")
    registered = log_and_register(
        s,
        result,
        frame,
        reference_features=rebaselined_reference(
            candidate_features.path, s.thresholds.drift_sample_rows
        ),
        tags={
            "feature_service": FEATURE_SERVICE,
            "feature_version": candidate_features.version,
            "data_version": candidate_features.version.split("-")[-1],
            "code_version": _code_version(),
            "dagster_run_id": context.run.run_id,
            "dataset": s.dataset,
            "target": s.target,
            "trained_on": "candidate_features",
            "drift_reference": REFERENCE_KIND,
        },
    )
    return Output(
        registered,
        metadata={
            **_model_metadata(registered, result.metrics, s, curve),
            **_read_sample_metadata(candidate_training_set),
            "feature_version": candidate_features.version,
            "drift_reference": REFERENCE_KIND,
        },
    )


class RecoveryGateConfig(Config):
    """The operator's acceptance: also pass a challenger NOT SHOWN WORSE than the champion (the
    upper bound of the Qini difference's 95% interval above 0) that beats random. Off by default
    (the retraining sensor's runs): then only the promotion rule passes."""

    accept_if_not_worse: bool = False


@asset_check(
    asset=candidate_challenger,
    name="promotion_gate",
    blocking=True,
    additional_ins={"candidate_training_set": AssetIn("candidate_training_set")},
    description=(
        "Champion and the challenger trained on the candidate score the same held-out customers "
        "of the candidate's training set (post-drift outcomes included). Passes only on the "
        "promotion rule (Qini beats the champion's by more than CAMPAIGN_PROMOTION_MARGIN, "
        "paired-bootstrap 95% interval above 0) with the challenger beating random on its "
        "holdout, or, with run config accept_if_not_worse, on an operator's acceptance of a "
        "challenger not shown worse. Failing (ERROR) skips drift_recovery: nothing is promoted "
        "or published. The comparison is recorded on the challenger's MLflow run."
    ),
)
def candidate_challenger_promotion_gate(
    context,
    config: RecoveryGateConfig,
    candidate_challenger: RegisteredModel,
    candidate_training_set: str,
    settings: CampaignSettings,
) -> AssetCheckResult:
    from orchestration.core.features.feast_store import FEATURE_SERVICE, feature_names
    from orchestration.core.model.drift_recovery import (
        judge_challenger,
        load_version,
        post_drift_comparison,
        published_snapshot_at,
        record_verdict,
    )
    from orchestration.core.model.gates import champion_gate
    from orchestration.core.model.promotion import compare_on_holdout, holdout_rows, log_comparison
    from orchestration.core.model.registry import describe_alias, load_alias

    s = settings.get()
    challenger = candidate_challenger
    champion = describe_alias(s)
    if champion is None or champion.version == challenger.version:
        return AssetCheckResult(
            passed=False,
            severity=AssetCheckSeverity.ERROR,
            description=f"no champion other than v{challenger.version} to compare with",
            metadata={"verdict": "cannot compare", "challenger_version": challenger.version},
        )
    holdout = holdout_rows(pd.read_parquet(candidate_training_set))
    features = feature_names(s, FEATURE_SERVICE)
    champion_model, challenger_model = load_alias(s), load_version(s, challenger.version)
    decision = compare_on_holdout(
        champion_model,
        challenger_model,
        holdout,
        features,
        margin=s.promotion_margin,
        champion_version=champion.version,
        challenger_version=challenger.version,
    )
    log_comparison(s, challenger.run_id, decision, context.run.run_id)
    beats = champion_gate(
        challenger.metrics, s.thresholds.min_champion_qini, version=challenger.version
    )
    verdict = judge_challenger(decision, beats, config.accept_if_not_worse)
    record_verdict(s, challenger.run_id, verdict, context.run.run_id)
    recent_rows, recent = post_drift_comparison(
        champion_model,
        challenger_model,
        holdout,
        features,
        after=published_snapshot_at(s),
        margin=s.promotion_margin,
    )
    return AssetCheckResult(
        passed=verdict.passed,
        severity=AssetCheckSeverity.ERROR,
        description=(
            f"challenger v{challenger.version} (trained on the candidate) vs champion "
            f"v{champion.version}: {verdict.verdict}: {verdict.reason}"
        ),
        metadata={
            "verdict": verdict.verdict,
            "promoted_by": verdict.promoted_by or "none",
            "accept_if_not_worse": config.accept_if_not_worse,
            "rule": "qini_diff > margin and qini_diff_ci_low > 0, and challenger qini_ci_low > "
            "floor (accept_if_not_worse: qini_diff_ci_high > 0 instead of the first)",
            "champion_version": champion.version,
            "challenger_version": challenger.version,
            "champion_qini": decision.champion_qini,
            "challenger_qini": decision.challenger_qini,
            "qini_diff": decision.qini_diff,
            "qini_diff_ci": f"[{decision.qini_diff_ci_low:.4f}, {decision.qini_diff_ci_high:.4f}]",
            "qini_diff_ci_low": decision.qini_diff_ci_low,
            "qini_diff_ci_high": decision.qini_diff_ci_high,
            "margin": decision.margin,
            "holdout_rows": decision.holdout_rows,
            "challenger_beats_random": beats.passed,
            "challenger_qini_ci": beats.evidence["qini_ci"],
            "floor": beats.evidence["floor"],
            "post_drift_holdout_rows": recent_rows,
            "post_drift_qini_diff": recent.qini_diff if recent else "n/a: too few rows",
            "post_drift_qini_diff_ci": (
                f"[{recent.qini_diff_ci_low:.4f}, {recent.qini_diff_ci_high:.4f}]"
                if recent
                else "n/a"
            ),
            "mlflow_run_id": challenger.run_id,
        },
    )


def _this_runs_gate_metadata(context) -> tuple[list[tuple[str, str, bool]], dict]:
    """This run's check evaluations (asset, check, ok) and the metadata of each (asset, check)."""
    from dagster import DagsterEventType

    from orchestration.defs.run_checks import run_check_evaluations

    instance, run_id = context.instance, context.run.run_id
    metadata: dict[tuple[str, str], dict] = {}
    for record in instance.get_records_for_run(
        run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION
    ).records:
        event = record.event_log_entry.dagster_event
        if event is not None:
            evaluation = event.event_specific_data
            metadata[(evaluation.asset_key.to_user_string(), evaluation.check_name)] = {
                k: getattr(v, "value", v) for k, v in evaluation.metadata.items()
            }
    return run_check_evaluations(instance, run_id), metadata


@asset(
    group_name=RECOVERY_GROUP,
    owners=[OWNER],
    kinds={"mlflow", "parquet"},
    description=(
        "The way out of a drift block, both moves or neither: the champion alias onto the "
        "challenger trained on the candidate, then `features/current` onto the candidate "
        "(publish). Only when candidate_challenger's checks promotion_gate and "
        "drift_below_threshold passed in THIS run (it re-reads them: materialized alone it "
        "refuses) and the champion is still the one the verdict compared with. The "
        "evidence is recorded here. The next campaign_pipeline run refreshes the online store and "
        "its drift gate compares against the new champion's reference."
    ),
)
def drift_recovery(
    context: AssetExecutionContext,
    candidate_challenger: RegisteredModel,
    candidate_features: FeatureVersion,
    settings: CampaignSettings,
) -> MaterializeResult:
    from dagster import Failure

    from orchestration.core.model.drift_recovery import missing_evidence, promote_and_publish

    s = settings.get()
    evaluations, metadata = _this_runs_gate_metadata(context)
    missing = missing_evidence(evaluations, RECOVERY_GATES)
    if missing:
        raise Failure(
            f"recovery refused, nothing promoted or published: {', '.join(missing)} did not pass "
            "in this run (run the whole retrain_on_candidate_features job)"
        )
    gate = metadata[RECOVERY_GATES[0]]
    drift = metadata[RECOVERY_GATES[1]]
    if gate.get("challenger_version") != candidate_challenger.version:
        raise Failure(
            f"the verdict is about v{gate.get('challenger_version')}, not this challenger"
        )
    outcome = promote_and_publish(
        s,
        challenger_version=candidate_challenger.version,
        compared_champion=str(gate["champion_version"]),
        candidate_version=candidate_features.version,
        promoted_by=str(gate["promoted_by"]),
        run_id=context.run.run_id,
    )
    context.log.info(
        f"champion v{outcome.champion_before} -> v{outcome.champion_after}; published "
        f"{outcome.published_before} -> {outcome.published_after}"
    )
    return MaterializeResult(
        metadata={
            "promoted": True,
            "champion_before": str(outcome.champion_before),
            "champion_after": outcome.champion_after,
            "promoted_by": outcome.promoted_by,
            "promoted_at": outcome.promoted_at or "none",
            "published_before": outcome.published_before or "none",
            "published_version": outcome.published_after,
            "verdict": gate["verdict"],
            "qini_diff": gate["qini_diff"],
            "qini_diff_ci": gate["qini_diff_ci"],
            "challenger_qini_ci": gate["challenger_qini_ci"],
            "drift_share_vs_challenger_reference": drift["drift_share"],
            "drift_share_vs_champion_reference": drift["drift_share_vs_champion_reference"],
            "drift_threshold": drift["threshold"],
        }
    )
