"""The way out of a drift block (plain Python; the ``retrain_on_candidate_features`` job is a thin
shell over it).

A drift block means today's features (the *candidate*: the feature version the run staged and
its gate refused) are too far from the champion's training reference. Retraining on the
published version cannot help: that is the pre-drift data. The recovery retrains on the
candidate (a Feast point-in-time training set over the candidate's own files,
``features.candidate``) and then moves two things together, or neither:

* the ``champion`` alias onto that challenger, and
* ``features/current`` onto the candidate (publish),

only when both conditions held in the same run:

1. **the promotion verdict**: champion and challenger score the same held-out customers of the
   candidate's training set (which holds every outcome observed so far, the post-drift ones
   included) with the promotion rule (``promotion.compare_on_holdout``: the challenger's Qini
   beats the champion's by more than ``CAMPAIGN_PROMOTION_MARGIN`` and the paired-bootstrap 95 %
   interval of the difference is above 0), and the challenger beats random on its own holdout
   (``gates.champion_gate``, the rule of ``champion_beats_random``); and
2. **the drift share of the candidate against the challenger's own training reference** is below
   ``CAMPAIGN_DRIFT_SHARE_THRESHOLD``.

The challenger's drift reference is the candidate's newest snapshot (:func:`rebaselined_reference`):
the recovery re-baselines the drift gate onto the distribution the challenger was accepted for.
So condition 2 checks that the reference the challenger carries describes the version being
published (a version staged in between, or a reference from another version, fails it); the
evidence about the model is condition 1.

**Operator acceptance.** Outcomes of customers after the shift exist only for sends made since it
began, so a retrain on the candidate is usually *statistically equivalent* to the champion, and
the strict rule keeps the champion (the sends stay stopped: that is the safe default the
retraining sensor runs with). An operator who has looked at the drift and judges it a real change
of behaviour can accept a challenger that is **not shown worse** than the champion (the upper
bound of the Qini difference's 95 % interval is above 0) and beats random on its holdout:
``accept_if_not_worse``, recorded as ``promoted_by=drift_recovery:operator_accepted`` with the
same figures. Nothing else relaxes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import pandas as pd

from orchestration.core.features.publishing import (
    current_feature_version,
    publish_feature_version,
    staged_feature_versions,
)
from orchestration.core.model.gates import GateDecision
from orchestration.core.model.promotion import PromotionDecision, compare_on_holdout, move_champion
from orchestration.core.model.registry import CHAMPION, alias_version, configure
from orchestration.settings import Settings

PROMOTE = "promote"
OPERATOR_ACCEPTED = "accepted by operator: not worse than the champion"
KEEP_CHAMPION = "keep champion"
PROMOTED_BY_GATE = "drift_recovery:promotion_gate"
PROMOTED_BY_OPERATOR = "drift_recovery:operator_accepted"
REFERENCE_KIND = "newest snapshot of the candidate feature version (re-baselined)"
# Fewer post-drift holdout rows than this (or one arm missing): no separate comparison on them.
MIN_POST_DRIFT_ROWS = 200


@dataclass(frozen=True)
class RecoveryVerdict:
    passed: bool
    verdict: str  # PROMOTE | OPERATOR_ACCEPTED | KEEP_CHAMPION
    promoted_by: str | None
    reason: str


def judge_challenger(
    decision: PromotionDecision, beats_random: GateDecision, accept_if_not_worse: bool = False
) -> RecoveryVerdict:
    """Condition 1: may the challenger trained on the candidate replace the champion?"""
    if not beats_random.passed:
        return RecoveryVerdict(
            False,
            KEEP_CHAMPION,
            None,
            f"the challenger is not shown to beat random: {beats_random.description}",
        )
    if decision.promote:
        return RecoveryVerdict(True, PROMOTE, PROMOTED_BY_GATE, decision.reason)
    high = decision.qini_diff_ci_high
    not_worse = math.isfinite(high) and high > 0
    if accept_if_not_worse and not_worse:
        return RecoveryVerdict(
            True,
            OPERATOR_ACCEPTED,
            PROMOTED_BY_OPERATOR,
            f"{decision.reason}; accepted by the operator: the champion is not shown better "
            f"(95% interval of the Qini difference [{decision.qini_diff_ci_low:.4f}, {high:.4f}])",
        )
    hint = (
        "the champion is shown better"
        if not not_worse
        else "an operator may accept it (accept_if_not_worse: the champion is not shown better)"
    )
    return RecoveryVerdict(False, KEEP_CHAMPION, None, f"{decision.reason}; {hint}")


def rebaselined_reference(version_path, sample_rows: int) -> pd.DataFrame:
    """The drift reference a challenger trained on a candidate carries: the candidate's newest
    snapshot (the scoring population it is accepted for), sampled like the drift check."""
    from orchestration.core.features.tables import read_feature_rows

    return read_feature_rows(version_path, latest=True, sample_rows=sample_rows, seed=0)


def post_drift_comparison(
    champion_model: Any,
    challenger_model: Any,
    holdout: pd.DataFrame,
    features: list[str],
    after: pd.Timestamp,
    margin: float = 0.0,
) -> tuple[int, PromotionDecision | None]:
    """The same comparison on the held-out exposures after ``after`` (the published version's
    newest snapshot: outcomes the champion's training data could not hold). Evidence only, not
    a rule: the sample is small. Returns (rows, decision or None when too few rows / one arm)."""
    recent = holdout[pd.to_datetime(holdout["event_timestamp"], utc=True) > after]
    arms = recent["is_treated"].nunique() if len(recent) else 0
    if len(recent) < MIN_POST_DRIFT_ROWS or arms < 2:
        return len(recent), None
    decision = compare_on_holdout(
        champion_model, challenger_model, recent.reset_index(drop=True), features, margin=margin
    )
    return len(recent), decision


def load_version(settings: Settings, version: str):
    """Load ``models:/<name>/<version>`` as a pyfunc (the challenger judged, by number)."""
    import mlflow

    configure(settings)
    return mlflow.pyfunc.load_model(f"models:/{settings.model_name}/{version}")


def published_snapshot_at(settings: Settings) -> pd.Timestamp:
    """The newest snapshot of the published version: exposures after it are outcomes the
    champion's training data could not hold. (The epoch when nothing is published.)"""
    from orchestration.core.features.tables import snapshot_times

    published = current_feature_version(settings.features_dir)
    times = snapshot_times(published.path) if published else []
    return times[-1] if times else pd.Timestamp(0, tz="UTC")


VERDICT_TAG = "drift_recovery_verdict"


def record_verdict(
    settings: Settings, run_id: str, verdict: RecoveryVerdict, dagster_run_id: str
) -> None:
    """Tag the challenger's MLflow run with the recovery verdict (next to the promotion tags)."""
    client = configure(settings)
    client.set_tag(run_id, VERDICT_TAG, verdict.verdict)
    client.set_tag(run_id, f"{VERDICT_TAG}_reason", verdict.reason[:500])
    client.set_tag(run_id, f"{VERDICT_TAG}_dagster_run_id", dagster_run_id)


def missing_evidence(evaluations: list[tuple[str, str, bool]], required: list[tuple[str, str]]):
    """The required ``(asset, check)`` gates that did not pass in this run (or did not run)."""
    passed = {(asset, check) for asset, check, ok in evaluations if ok}
    return [f"{asset}:{check}" for asset, check in required if (asset, check) not in passed]


@dataclass(frozen=True)
class RecoveryOutcome:
    champion_before: str | None
    champion_after: str
    published_before: str | None
    published_after: str
    promoted_by: str
    promoted_at: str | None


def promote_and_publish(
    settings: Settings,
    *,
    challenger_version: str,
    compared_champion: str | None,
    candidate_version: str,
    promoted_by: str,
    run_id: str | None = None,
) -> RecoveryOutcome:
    """Move ``champion`` onto the challenger, then publish the candidate (``current``).

    Refuses (raises, nothing moved) when the champion changed since the verdict compared with
    it, or the candidate is not staged any more.
    """
    name = settings.model_name
    champion = alias_version(configure(settings), name, CHAMPION)
    if champion != compared_champion:
        raise RuntimeError(
            f"the verdict compared the challenger with champion v{compared_champion}, but "
            f"v{champion} is the champion now: nothing moved; run the recovery again"
        )
    if candidate_version not in {v.version for v in staged_feature_versions(settings.features_dir)}:
        raise FileNotFoundError(f"candidate feature version {candidate_version} is not staged")
    before = current_feature_version(settings.features_dir)
    moved = move_champion(settings, challenger_version, promoted_by, run_id=run_id)
    published = publish_feature_version(settings.features_dir, candidate_version)
    return RecoveryOutcome(
        champion_before=champion,
        champion_after=str(moved.champion_version),
        published_before=before.version if before else None,
        published_after=published.version,
        promoted_by=promoted_by,
        promoted_at=moved.promoted_at,
    )
