"""The promotion gate: paired comparison on the same holdout, alias moves, manual override."""

from __future__ import annotations

import dagster as dg
import numpy as np
import pandas as pd
import pytest

from orchestration.core.model.learners import make_learner
from orchestration.core.model.promotion import (
    MANUAL_OVERRIDE,
    PROMOTED_BY_TAG,
    PROMOTION_GATE,
    apply_promotion,
    compare_on_holdout,
    holdout_rows,
    log_comparison,
    paired_bootstrap_indices,
)
from orchestration.core.model.training import feature_matrix, train_and_evaluate
from tests.model.conftest import FAST, FEATURES, simulate


@pytest.fixture(scope="module")
def split():
    frame = simulate(16_000, seed=1)
    holdout = holdout_rows(frame)
    train = frame[~frame["customer_id"].isin(holdout["customer_id"])]
    return frame, train, holdout


def _fit(train: pd.DataFrame, features: list[str], seed: int = 7):
    return make_learner("two_model", FAST, seed=seed).fit(
        feature_matrix(train, features), train["is_treated"].to_numpy(), train["label"].to_numpy()
    )


@pytest.fixture(scope="module")
def learners(split):
    _, train, _ = split
    return {
        "good": _fit(train, FEATURES),
        "good_other_seed": _fit(train, FEATURES, seed=8),
        "blind": _fit(train, ["noise"]),  # sees no feature that drives the effect
    }


def test_the_holdout_is_the_one_train_and_evaluate_uses(split):
    frame, _, holdout = split
    result = train_and_evaluate(frame, FEATURES, params=FAST, n_boot=0)
    assert set(result.holdout["customer_id"]) == set(holdout["customer_id"])
    assert len(result.holdout) == len(holdout)


def test_bootstrap_indices_are_paired_and_keep_the_arm_sizes():
    t = np.array([1, 1, 1, 0, 0, 1, 0, 1])
    idx = paired_bootstrap_indices(t, n_boot=50, seed=3)
    assert idx.shape == (50, len(t))
    assert (t[idx].sum(axis=1) == t.sum()).all()
    assert np.array_equal(idx, paired_bootstrap_indices(t, n_boot=50, seed=3))


def test_a_clearly_better_challenger_is_promoted(split, learners):
    _, _, holdout = split
    decision = compare_on_holdout(learners["blind"], learners["good"], holdout, FEATURES)
    assert decision.challenger_qini > decision.champion_qini
    assert decision.qini_diff_ci_low > 0
    assert decision.qini_diff_ci_low <= decision.qini_diff <= decision.qini_diff_ci_high
    assert decision.promote
    assert decision.holdout_rows == len(holdout)


def test_an_identical_challenger_is_not_promoted(split, learners):
    _, _, holdout = split
    decision = compare_on_holdout(learners["good"], learners["good"], holdout, FEATURES)
    assert decision.qini_diff == 0.0
    assert (decision.qini_diff_ci_low, decision.qini_diff_ci_high) == (0.0, 0.0)
    assert not decision.promote


def test_an_equally_good_challenger_has_an_interval_around_zero(split, learners):
    _, _, holdout = split
    decision = compare_on_holdout(learners["good"], learners["good_other_seed"], holdout, FEATURES)
    assert decision.qini_diff_ci_low < 0 < decision.qini_diff_ci_high
    assert not decision.promote


def test_a_worse_challenger_is_not_promoted(split, learners):
    _, _, holdout = split
    decision = compare_on_holdout(learners["good"], learners["blind"], holdout, FEATURES)
    assert decision.qini_diff < 0
    assert decision.qini_diff_ci_high < 0
    assert not decision.promote


def test_the_margin_holds_back_a_small_win(split, learners):
    _, _, holdout = split
    base = compare_on_holdout(learners["blind"], learners["good"], holdout, FEATURES)
    held = compare_on_holdout(
        learners["blind"], learners["good"], holdout, FEATURES, margin=base.qini_diff + 0.01
    )
    assert base.promote and not held.promote


def test_a_holdout_with_one_arm_cannot_be_compared(split, learners):
    _, _, holdout = split
    with pytest.raises(ValueError, match="treated and control"):
        compare_on_holdout(
            learners["good"], learners["blind"], holdout[holdout["is_treated"] == 1], FEATURES
        )


# --------------------------------------------------------------------------------------------
# in the MLflow registry (temporary sqlite store)


def _register(settings, frame: pd.DataFrame, features: list[str]):
    from orchestration.core.model.registry import log_and_register

    result = train_and_evaluate(frame, features, params=FAST, n_boot=0)
    return log_and_register(
        settings, result, frame, reference_features=frame[features], tags={"test": "promotion"}
    )


def _registry(settings):
    from orchestration.core.model.registry import CHALLENGER, CHAMPION, alias_version, configure

    client = configure(settings)
    name = settings.model_name
    return client, alias_version(client, name, CHAMPION), alias_version(client, name, CHALLENGER)


def _compare_registered(settings, frame):
    from orchestration.core.model.registry import CHALLENGER, describe_alias, load_alias

    return compare_on_holdout(
        load_alias(settings),
        load_alias(settings, CHALLENGER),
        holdout_rows(frame),
        FEATURES,
        champion_version=describe_alias(settings).version,
        challenger_version=describe_alias(settings, CHALLENGER).version,
    )


def test_registry_promotion_moves_the_alias_and_logs_the_comparison(mlflow_settings, split):
    frame, _, _ = split
    first = _register(mlflow_settings, frame, ["noise"])
    second = _register(mlflow_settings, frame, FEATURES)
    assert (first.aliases, second.aliases) == (("champion",), ("challenger",))

    decision = _compare_registered(mlflow_settings, frame)
    assert decision.promote, decision.reason
    log_comparison(mlflow_settings, second.run_id, decision)
    outcome = apply_promotion(mlflow_settings, decision, override=None)

    client, champion, challenger = _registry(mlflow_settings)
    assert outcome.changed and outcome.promoted_by == PROMOTION_GATE
    assert (champion, challenger) == (second.version, None)
    version = client.get_model_version(mlflow_settings.model_name, second.version)
    assert version.tags[PROMOTED_BY_TAG] == PROMOTION_GATE
    run = client.get_run(second.run_id)
    assert run.data.metrics["promotion_qini_diff"] == pytest.approx(decision.qini_diff)
    assert run.data.metrics["promotion_qini_diff_ci_low"] > 0
    assert run.data.tags["promotion_decision"] == "promoted"
    from orchestration.core.observability.audit import AuditLog, audit_log_path

    log = AuditLog(audit_log_path(mlflow_settings.data_dir))
    entry = log.entries()[-1]
    assert (entry.actor, entry.action, entry.subject) == (
        PROMOTION_GATE,
        "promote",
        f"{mlflow_settings.model_name}@champion",
    )
    assert entry.details["to_version"] == str(second.version)
    assert log.verify().ok
    print(
        f"\ncomparison: champion qini {decision.champion_qini:.4f}, challenger qini {decision.challenger_qini:.4f}, diff {decision.qini_diff:.4f} "
        f"95% CI [{decision.qini_diff_ci_low:.4f}, {decision.qini_diff_ci_high:.4f}] on {decision.holdout_rows} holdout rows"
    )


def test_registry_a_worse_challenger_stays_challenger_unless_overridden(mlflow_settings, split):
    frame, _, _ = split
    first = _register(mlflow_settings, frame, FEATURES)
    second = _register(mlflow_settings, frame, ["noise"])

    decision = _compare_registered(mlflow_settings, frame)
    assert not decision.promote
    outcome = apply_promotion(mlflow_settings, decision, override=None)
    client, champion, challenger = _registry(mlflow_settings)
    assert not outcome.changed
    assert (champion, challenger) == (first.version, second.version)
    assert PROMOTED_BY_TAG not in client.get_model_version("uplift_model", second.version).tags

    # the manual override forces the alias whatever the gate said, and says so on the version
    forced = apply_promotion(mlflow_settings, decision, override=second.version)
    client, champion, challenger = _registry(mlflow_settings)
    assert forced.changed and forced.promoted_by == f"{MANUAL_OVERRIDE}:{second.version}"
    assert (champion, challenger) == (second.version, None)
    tags = client.get_model_version("uplift_model", second.version).tags
    assert tags[PROMOTED_BY_TAG] == f"{MANUAL_OVERRIDE}:{second.version}"
    assert tags["promoted_from"] == first.version
    assert tags["promoted_at"]


def test_registry_override_of_an_unknown_version_raises(mlflow_settings, split):
    from mlflow.exceptions import MlflowException

    frame, _, _ = split
    _register(mlflow_settings, frame, FEATURES)
    with pytest.raises(MlflowException):
        apply_promotion(mlflow_settings, None, override="42")
    _, champion, _ = _registry(mlflow_settings)
    assert champion == "1"


# --------------------------------------------------------------------------------------------
# the promotion step's plan: it acts only on the gate's decision about THIS challenger, from THIS
# run, against the current champion (plain Python, no registry)


def _recorded(outcome="promoted", challenger="2", champion="1", run="run-a", reason="wins"):
    from orchestration.core.model.promotion import RecordedDecision

    return RecordedDecision(outcome, challenger, champion, run, reason)


def test_plan_promotes_on_this_runs_decision_about_this_challenger():
    from orchestration.core.model.promotion import plan_promotion

    plan = plan_promotion("1", "2", _recorded(), run_id="run-a")
    assert (plan.target, plan.promoted_by, plan.reason) == ("2", PROMOTION_GATE, "wins")


@pytest.mark.parametrize(
    ("recorded", "says"),
    [
        (None, "recorded no decision"),
        (_recorded(outcome=None), "recorded no decision"),
        (_recorded(outcome="not_promoted", reason="CI includes 0"), "CI includes 0"),
        (_recorded(outcome="cannot_compare", reason="ValueError"), "cannot_compare"),
        (_recorded(run="run-b"), "not in this run"),
        (_recorded(champion="0"), "v1 is the champion now"),
        (_recorded(challenger="3"), "not challenger v2"),
    ],
)
def test_plan_keeps_the_champion_without_a_valid_decision(recorded, says):
    from orchestration.core.model.promotion import plan_promotion

    plan = plan_promotion("1", "2", recorded, run_id="run-a")
    assert plan.target is None and plan.promoted_by is None
    assert says in plan.reason


def test_plan_follows_a_manual_override_whatever_the_gate_said():
    from orchestration.core.model.promotion import plan_promotion

    plan = plan_promotion("1", "2", _recorded(outcome="not_promoted"), override=" 2 ", run_id="x")
    assert (plan.target, plan.promoted_by) == ("2", f"{MANUAL_OVERRIDE}:2")
    assert plan_promotion("1", None, None, override="1").target is None  # already the champion
    assert plan_promotion("1", None, None, override="").target is None  # empty: no override
    assert plan_promotion("1", None, None).reason == "no challenger is waiting"


# --------------------------------------------------------------------------------------------
# through Dagster: challenger_promotion_gate decides, model_promotion moves the alias


@pytest.fixture
def pipeline(tmp_path, monkeypatch):
    """Runs the real gate, model_promotion and champion_beats_random in-process, with stand-ins
    for the upstream assets (training_set returns the parquet given, uplift_model nothing) and
    the Feast feature list patched to the test features."""
    from orchestration.defs.model import (
        challenger_promotion_gate,
        champion_beats_random,
        model_promotion,
    )
    from orchestration.resources import CampaignSettings

    monkeypatch.setattr(
        "orchestration.core.features.feast_store.feature_names",
        lambda settings, service=None: list(FEATURES),
    )
    parts = {
        "gate": challenger_promotion_gate,
        "promotion": model_promotion,
        "champion_gate": champion_beats_random,
    }

    def run(frame: pd.DataFrame, *names: str):
        path = tmp_path / "training_set.parquet"
        frame.to_parquet(path, index=False)

        @dg.asset(name="training_set")
        def training_set_stub() -> str:
            return str(path)

        @dg.asset(name="uplift_model")
        def uplift_model_stub() -> None:
            return None

        result = dg.materialize(
            [training_set_stub, uplift_model_stub, *(parts[n] for n in names)],
            resources={"settings": CampaignSettings()},
            raise_on_error=False,
        )
        checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
        promoted = [
            m
            for m in result.get_asset_materialization_events()
            if m.asset_key.path == ["model_promotion"]
        ]
        promotion = (
            {k: v.value for k, v in promoted[0].materialization.metadata.items()}
            if promoted
            else None
        )
        return result, checks, promotion

    return run


def _meta(evaluation) -> dict:
    return {k: v.value for k, v in evaluation.metadata.items()}


def test_rerunning_the_gate_moves_no_alias_only_model_promotion_does(
    mlflow_settings, split, pipeline
):
    from orchestration.core.model.promotion import recorded_decision

    frame, _, _ = split
    first = _register(mlflow_settings, frame, ["noise"])
    second = _register(mlflow_settings, frame, FEATURES)

    for _ in range(2):  # the check alone, twice (as from the UI): it decides, it moves nothing
        result, checks, promotion = pipeline(frame, "gate")
        gate = checks["challenger_promotion_gate"]
        assert result.success and gate.passed
        assert _meta(gate)["verdict"] == "promote" and _meta(gate)["gate_says_promote"] is True
        assert promotion is None
        _, champion, challenger = _registry(mlflow_settings)
        assert (champion, challenger) == (first.version, second.version)
        recorded = recorded_decision(mlflow_settings, second.run_id)
        assert (recorded.outcome, recorded.dagster_run_id) == ("promoted", result.run_id)

    # model_promotion in a run where the gate did not evaluate: the decision is another run's
    result, checks, promotion = pipeline(frame, "promotion")
    assert result.success and "challenger_promotion_gate" not in checks
    assert promotion["promoted"] is False and "not in this run" in promotion["reason"]
    _, champion, _ = _registry(mlflow_settings)
    assert champion == first.version

    # gate and promotion in one run: the alias moves, and the version says who moved it
    result, checks, promotion = pipeline(frame, "gate", "promotion")
    assert result.success and checks["challenger_promotion_gate"].passed
    assert promotion["promoted"] is True and promotion["promoted_by"] == PROMOTION_GATE
    assert (promotion["champion_before"], promotion["champion_after"]) == (
        first.version,
        second.version,
    )
    client, champion, challenger = _registry(mlflow_settings)
    assert (champion, challenger) == (second.version, None)
    tags = client.get_model_version(mlflow_settings.model_name, second.version).tags
    assert tags[PROMOTED_BY_TAG] == PROMOTION_GATE
    assert tags["promoted_in_run"] == result.run_id
    assert tags["promoted_from"] == first.version
    assert tags["promoted_at"] == promotion["promoted_at"]


def test_a_gate_that_cannot_compare_fails_and_moves_no_alias(
    mlflow_settings, split, pipeline, monkeypatch
):
    from orchestration.core.model.promotion import CANNOT_COMPARE, recorded_decision

    frame, _, _ = split
    first = _register(mlflow_settings, frame, ["noise"])
    second = _register(mlflow_settings, frame, FEATURES)
    # even a manual override waits: a failed gate skips the step that moves the alias
    monkeypatch.setenv("CAMPAIGN_PROMOTE_OVERRIDE", second.version)

    treated_only = frame[frame["is_treated"] == 1]
    result, checks, promotion = pipeline(treated_only, "gate", "promotion", "champion_gate")
    gate = checks["challenger_promotion_gate"]
    assert not result.success
    assert gate.passed is False
    assert gate.severity == dg.AssetCheckSeverity.ERROR
    assert "cannot compare challenger v2 with champion v1" in gate.description
    meta = _meta(gate)
    assert meta["verdict"] == "cannot compare" and meta["gate_says_promote"] is False
    assert "treated and control" in meta["error"]
    assert promotion is None  # model_promotion was skipped (blocking gate) ...
    assert "champion_beats_random" not in checks  # ... and so was the check on it
    client, champion, challenger = _registry(mlflow_settings)
    assert (champion, challenger) == (first.version, second.version)
    assert PROMOTED_BY_TAG not in client.get_model_version("uplift_model", second.version).tags
    recorded = recorded_decision(mlflow_settings, second.run_id)
    assert (recorded.outcome, recorded.dagster_run_id) == (CANNOT_COMPARE, result.run_id)


def test_a_manual_override_goes_through_model_promotion(
    mlflow_settings, split, pipeline, monkeypatch
):
    frame, _, _ = split
    first = _register(mlflow_settings, frame, FEATURES)
    second = _register(mlflow_settings, frame, ["noise"])  # worse: the gate keeps the champion
    monkeypatch.setenv("CAMPAIGN_PROMOTE_OVERRIDE", second.version)

    result, checks, promotion = pipeline(frame, "gate", "promotion")
    gate = checks["challenger_promotion_gate"]
    assert result.success and gate.passed
    assert _meta(gate)["verdict"] == "keep champion"
    assert "manual override requested" in gate.description
    assert promotion["promoted"] is True
    assert promotion["promoted_by"] == f"{MANUAL_OVERRIDE}:{second.version}"
    client, champion, challenger = _registry(mlflow_settings)
    assert (champion, challenger) == (second.version, None)
    tags = client.get_model_version(mlflow_settings.model_name, second.version).tags
    assert tags[PROMOTED_BY_TAG] == f"{MANUAL_OVERRIDE}:{second.version}"
    assert tags["promoted_from"] == first.version


def test_registry_a_manual_override_needs_a_four_eyes_approval_of_that_version(
    mlflow_settings, split, tmp_path, monkeypatch
):
    from orchestration.core.governance.approvals import MODEL, governance_for
    from orchestration.core.governance.identities import GovernanceError
    from orchestration.core.model.promotion import OverrideNotApproved
    from orchestration.core.model.registry import model_version_hash
    from orchestration.core.observability.audit import AuditLog, audit_log_path
    from orchestration.settings import Settings
    from tests.governance.approvers import write_approvers

    frame, _, _ = split
    first = _register(mlflow_settings, frame, FEATURES)
    second = _register(mlflow_settings, frame, ["noise"])
    write_approvers(tmp_path / "team", monkeypatch)
    s = Settings.from_env()
    governance = governance_for(s)
    # an approval of another version does not count for this one
    governance.submit(MODEL, s.model_name, model_version_hash(s, first.version), "alice")
    governance.approve(MODEL, s.model_name, model_version_hash(s, first.version), "bob")
    with pytest.raises(OverrideNotApproved, match=f"promotion to v{second.version} refused"):
        apply_promotion(s, None, override=second.version)
    assert _registry(s)[1] == first.version  # the champion did not move

    second_hash = model_version_hash(s, second.version)
    governance.submit(MODEL, s.model_name, second_hash, "alice")
    with pytest.raises(GovernanceError, match="self-approval"):
        governance.approve(MODEL, s.model_name, second_hash, "alice")
    governance.approve(MODEL, s.model_name, second_hash, "carol")
    forced = apply_promotion(s, None, override=second.version)
    assert forced.changed and _registry(s)[1] == second.version
    entries = AuditLog(audit_log_path(s.data_dir)).entries()
    promote = [e for e in entries if e.action == "promote"]
    assert promote[-1].details["approval"].startswith("approved by carol")
    # the refused override and the refused self-approval are on the trail too
    refused = [(e.action, e.actor) for e in entries if e.action.endswith("_refused")]
    assert refused == [
        ("promote_refused", f"manual_override:{second.version}"),
        ("approve_refused", "alice"),
    ]
    assert "refused" in [e for e in entries if e.action == "promote_refused"][0].details["reason"]
