"""The promotion gate: does the challenger rank better than the champion on the same customers?

Plain Python (never dagster). Both models score the SAME held-out rows of the current training
set (the customers ``train_and_evaluate`` holds out: the split is a stable hash of the customer,
so neither model was fitted on them), and the Qini difference is bootstrapped *paired*: every
resample draws one set of row indices (``metrics.stratified_bootstrap_indices``, the sampler of
the metrics' intervals) and evaluates both models on it, so the noise the two scores share
cancels out of the interval.

Rule: ``promote = diff > margin and ci_low > 0`` with ``diff = qini(challenger) - qini(champion)``
and a 95 % percentile interval.

Deciding and moving are separate steps: the ``challenger_promotion_gate`` check compares and
records its decision on the challenger's MLflow run (:func:`log_comparison`, tag
``promotion_decision`` with the Dagster run that decided), and never touches an alias; the
``model_promotion`` asset reads the decision back (:func:`recorded_decision`), checks that it is
about this challenger, from this run, against the current champion (:func:`plan_promotion`) and
only then moves ``champion`` (:func:`move_champion`; ``challenger`` is removed). A manual override
forces ``champion`` onto a named version. The moved version is tagged ``promoted_by``
(``promotion_gate`` or ``manual_override:<version>``), ``promoted_at``, ``promoted_from`` and
``promoted_in_run``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from orchestration.core.model.metrics import (
    qini_coefficient,
    stratified_bootstrap_indices,
    uplift_at_k,
)
from orchestration.core.model.registry import CHALLENGER, CHAMPION, alias_version, configure
from orchestration.core.model.training import feature_matrix, holdout_mask
from orchestration.settings import Settings

# train_and_evaluate's defaults: the comparison must use the rows the models were evaluated on.
HOLDOUT_SHARE = 0.3
SPLIT_SEED = 42
PROMOTED_BY_TAG = "promoted_by"
MANUAL_OVERRIDE = "manual_override"
PROMOTION_GATE = "promotion_gate"


def holdout_rows(
    training_set: pd.DataFrame, holdout_share: float = HOLDOUT_SHARE, seed: int = SPLIT_SEED
) -> pd.DataFrame:
    """The held-out rows of a training set, exactly as ``train_and_evaluate`` splits it."""
    mask = holdout_mask(training_set["customer_id"], holdout_share, salt=f"split:{seed}")
    return training_set[mask].reset_index(drop=True)


@dataclass(frozen=True)
class PromotionDecision:
    champion_version: str | None
    challenger_version: str | None
    champion_qini: float
    challenger_qini: float
    champion_uplift_at_30: float
    challenger_uplift_at_30: float
    qini_diff: float
    qini_diff_ci_low: float
    qini_diff_ci_high: float
    margin: float
    holdout_rows: int
    n_boot: int
    promote: bool
    reason: str

    def metrics(self) -> dict[str, float]:
        """The figures, flat and numeric (for MLflow ``promotion_*`` metrics and check metadata)."""
        return {
            k: float(v)
            for k, v in asdict(self).items()
            if isinstance(v, int | float) and not isinstance(v, bool)
        } | {"promote": float(self.promote)}


def _predict(model: Any, X: pd.DataFrame) -> np.ndarray:
    """Uplift scores from a learner (``predict_uplift``) or an MLflow pyfunc (``predict``)."""
    scores = model.predict_uplift(X) if hasattr(model, "predict_uplift") else model.predict(X)
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    if len(scores) != len(X):
        raise ValueError(f"model returned {len(scores)} scores for {len(X)} rows")
    if not np.isfinite(scores).all():
        raise ValueError(f"model returned {int((~np.isfinite(scores)).sum())} non-finite scores")
    return scores


def paired_bootstrap_indices(treatment: np.ndarray, n_boot: int, seed: int) -> np.ndarray:
    """``n_boot`` x ``n`` row indices, resampled with replacement within each arm: the rows of
    ``metrics.stratified_bootstrap_indices`` (the same stream ``compare_on_holdout`` uses)."""
    rows = list(stratified_bootstrap_indices(treatment, n_boot, seed))
    return np.vstack(rows) if rows else np.empty((0, len(treatment)), dtype=np.int64)


def compare_on_holdout(
    champion_model: Any,
    challenger_model: Any,
    holdout_frame: pd.DataFrame,
    features: list[str],
    n_boot: int = 200,
    seed: int = 42,
    margin: float = 0.0,
    champion_version: str | None = None,
    challenger_version: str | None = None,
    alpha: float = 0.05,
) -> PromotionDecision:
    """Score both models on the same rows; paired bootstrap of the Qini difference."""
    if n_boot < 10:
        raise ValueError(f"n_boot must be at least 10, got {n_boot}")
    missing = {"is_treated", "label"} - set(holdout_frame.columns)
    if missing:
        raise ValueError(f"the holdout frame lacks {sorted(missing)}")
    y = holdout_frame["label"].to_numpy(dtype=np.float64)
    t = holdout_frame["is_treated"].to_numpy(dtype=np.float64)
    if len(y) == 0 or t.min() == t.max():
        raise ValueError("the holdout needs treated and control rows to compare uplift models")
    X = feature_matrix(holdout_frame, features)
    u_champion = _predict(champion_model, X)
    u_challenger = _predict(challenger_model, X)

    q_champion = float(qini_coefficient(y, t, u_champion))
    q_challenger = float(qini_coefficient(y, t, u_challenger))
    diff = q_challenger - q_champion
    diffs = np.empty(n_boot)
    for b, idx in enumerate(stratified_bootstrap_indices(t, n_boot, seed)):
        diffs[b] = qini_coefficient(y[idx], t[idx], u_challenger[idx]) - qini_coefficient(
            y[idx], t[idx], u_champion[idx]
        )
    diffs = diffs[np.isfinite(diffs)]
    if len(diffs) == 0:
        low = high = math.nan
    else:
        low, high = (float(v) for v in np.quantile(diffs, [alpha / 2, 1 - alpha / 2]))
    promote = bool(diff > margin and low > 0)
    if promote:
        reason = f"challenger beats champion by {diff:.4f} Qini (95% CI [{low:.4f}, {high:.4f}])"
    elif diff <= margin:
        reason = f"Qini difference {diff:.4f} does not exceed the margin {margin:.4f}"
    else:
        reason = f"the 95% interval of the Qini difference [{low:.4f}, {high:.4f}] includes 0"
    return PromotionDecision(
        champion_version=champion_version,
        challenger_version=challenger_version,
        champion_qini=q_champion,
        challenger_qini=q_challenger,
        champion_uplift_at_30=float(uplift_at_k(y, t, u_champion, k=0.3)),
        challenger_uplift_at_30=float(uplift_at_k(y, t, u_challenger, k=0.3)),
        qini_diff=diff,
        qini_diff_ci_low=low,
        qini_diff_ci_high=high,
        margin=float(margin),
        holdout_rows=len(y),
        n_boot=int(n_boot),
        promote=promote,
        reason=reason,
    )


# --------------------------------------------------------------------------------------------
# the gate's record on the challenger's run, and the alias move (a separate step: the check only
# decides, the ``model_promotion`` asset moves the alias)

# Tags on the challenger's MLflow run: the promotion gate's last decision about it.
DECISION_TAG = "promotion_decision"
PROMOTED = "promoted"
NOT_PROMOTED = "not_promoted"
CANNOT_COMPARE = "cannot_compare"
DECIDED_IN_RUN_TAG = "promotion_dagster_run_id"
# Tags on the version the champion alias moved onto: who or what moved it, when, from which
# version and in which Dagster run.
PROMOTED_AT_TAG = "promoted_at"
PROMOTED_FROM_TAG = "promoted_from"
PROMOTED_IN_RUN_TAG = "promoted_in_run"


def manual_override_by(version: str) -> str:
    """The ``promoted_by`` of a manual promotion (``CAMPAIGN_PROMOTE_OVERRIDE=<version>``)."""
    return f"{MANUAL_OVERRIDE}:{version}"


def _override(override: str | None) -> str | None:
    value = str(override).strip() if override is not None else ""
    return value or None


@dataclass(frozen=True)
class PromotionOutcome:
    champion_version: str | None  # the version carrying ``champion`` afterwards
    changed: bool
    promoted_by: str | None  # promotion_gate | manual_override:<version> | None
    previous_version: str | None = None  # the champion before
    promoted_at: str | None = None


class OverrideNotApproved(RuntimeError):
    """A manual promotion without a four-eyes approval of that model version: nothing moved."""


def override_approval(settings: Settings, version: str):
    """The four-eyes status of a manual promotion onto ``version`` (an
    ``orchestration.core.governance.approvals.ApprovalStatus``), or None when approvals are off
    (``CAMPAIGN_REQUIRE_APPROVALS``)."""
    if not settings.require_approvals:
        return None
    from orchestration.core.governance.approvals import MODEL, governance_for
    from orchestration.core.model.registry import model_version_hash

    content_hash = model_version_hash(settings, version)
    status = governance_for(settings).status(MODEL, settings.model_name, content_hash)
    if status.approved:
        return status
    hint = (
        f"campaign submit model {settings.model_name} --version {version} --as <author>, then "
        f"campaign approve model {settings.model_name} --version {version} --as <another>"
    )
    return replace(status, reason=f"{status.reason} ({hint})")


def move_champion(
    settings: Settings, target: str, promoted_by: str, run_id: str | None = None
) -> PromotionOutcome:
    """Move ``champion`` onto version ``target`` and tag it with who moved it, when, from which
    version and in which run. The promoted version loses ``challenger`` (it is not waiting any
    more). Raises if the version does not exist; a no-op if it already is the champion. A manual
    override needs a four-eyes approval of that version when approvals are required
    (:class:`OverrideNotApproved` otherwise)."""
    client = configure(settings)
    name = settings.model_name
    current = alias_version(client, name, CHAMPION)
    target = str(target).strip()
    client.get_model_version(name, target)  # raises if the version does not exist
    if target == current:
        return PromotionOutcome(current, changed=False, promoted_by=None, previous_version=current)
    approval = (
        override_approval(settings, target) if promoted_by.startswith(MANUAL_OVERRIDE) else None
    )
    if approval is not None and not approval.approved:
        refusal = f"manual promotion to v{target} refused: {approval.reason}"
        _audit_promotion(
            settings, f"{name}@{CHAMPION}", promoted_by, {"reason": refusal}, target, refused=True
        )
        raise OverrideNotApproved(refusal)
    promoted_at = settings.now().isoformat(timespec="seconds")
    client.set_registered_model_alias(name, CHAMPION, target)
    tags = {
        PROMOTED_BY_TAG: promoted_by,
        PROMOTED_AT_TAG: promoted_at,
        PROMOTED_FROM_TAG: str(current),
        PROMOTED_IN_RUN_TAG: run_id or "none",
    }
    for key, value in tags.items():
        client.set_model_version_tag(name, target, key, value)
    if alias_version(client, name, CHALLENGER) == target:
        client.delete_registered_model_alias(name, CHALLENGER)
    approved_by = {"approval": approval.reason} if approval is not None else {}
    _audit_promotion(settings, f"{name}@{CHAMPION}", promoted_by, {**tags, **approved_by}, target)
    return PromotionOutcome(target, True, promoted_by, current, promoted_at)


def _audit_promotion(
    settings: Settings,
    subject: str,
    promoted_by: str,
    tags: dict[str, str],
    target: str,
    refused: bool = False,
) -> None:
    """Every alias move (the gate's, an override's, a drift recovery's) lands in the audit log,
    and so does a refused manual override."""
    from orchestration.core.observability.audit import (
        PROMOTE,
        PROMOTE_REFUSED,
        AuditLog,
        audit_log_path,
    )

    details = {"to_version": target, **tags}
    action = PROMOTE_REFUSED if refused else PROMOTE
    AuditLog(audit_log_path(settings.data_dir)).append(promoted_by, action, subject, details)


def apply_promotion(
    settings: Settings,
    decision: PromotionDecision | RecordedDecision | None,
    override: str | None = None,
    run_id: str | None = None,
) -> PromotionOutcome:
    """Move ``champion`` when the decision says so, or onto ``override`` (a version number).

    The override wins over the decision and is tagged ``promoted_by=manual_override:<version>``;
    a gate promotion is tagged ``promoted_by=promotion_gate`` (see :func:`move_champion`).
    """
    forced = _override(override)
    if forced is not None:
        return move_champion(settings, forced, manual_override_by(forced), run_id)
    if decision is not None and decision.promote and decision.challenger_version is not None:
        return move_champion(settings, str(decision.challenger_version), PROMOTION_GATE, run_id)
    current = alias_version(configure(settings), settings.model_name, CHAMPION)
    return PromotionOutcome(current, changed=False, promoted_by=None, previous_version=current)


def log_comparison(
    settings: Settings, run_id: str, decision: PromotionDecision, dagster_run_id: str | None = None
) -> None:
    """Record the comparison on the challenger's MLflow run (metrics ``promotion_*`` + tags),
    with the Dagster run that evaluated it (the promotion step acts only on its own run's)."""
    client = configure(settings)
    for key, value in decision.metrics().items():
        if math.isfinite(value):
            client.log_metric(run_id, f"promotion_{key}", value)
    _tag_decision(
        client,
        run_id,
        outcome=PROMOTED if decision.promote else NOT_PROMOTED,
        challenger_version=decision.challenger_version,
        champion_version=decision.champion_version,
        reason=decision.reason,
        dagster_run_id=dagster_run_id,
        decided_at=settings.now().isoformat(timespec="seconds"),
    )


def log_comparison_failure(
    settings: Settings,
    run_id: str,
    challenger_version: str,
    champion_version: str | None,
    error: str,
    dagster_run_id: str | None = None,
) -> None:
    """Record on the challenger's run that the comparison could not run: an earlier decision
    left on the run must not be acted upon."""
    _tag_decision(
        configure(settings),
        run_id,
        outcome=CANNOT_COMPARE,
        challenger_version=challenger_version,
        champion_version=champion_version,
        reason=error,
        dagster_run_id=dagster_run_id,
        decided_at=settings.now().isoformat(timespec="seconds"),
    )


def _tag_decision(client, run_id: str, *, outcome: str, **facts: str | None) -> None:
    client.set_tag(run_id, DECISION_TAG, outcome)
    for key, value in facts.items():
        client.set_tag(run_id, f"promotion_{key}", str(value)[:500])


@dataclass(frozen=True)
class RecordedDecision:
    """The promotion gate's last decision on a challenger, as tagged on its MLflow run."""

    outcome: str | None  # promoted | not_promoted | cannot_compare | None (never evaluated)
    challenger_version: str | None
    champion_version: str | None
    dagster_run_id: str | None
    reason: str
    decided_at: str | None = None

    @property
    def promote(self) -> bool:
        return self.outcome == PROMOTED


def recorded_decision(settings: Settings, run_id: str) -> RecordedDecision:
    """Read back what :func:`log_comparison` (or its failure) wrote on the MLflow run."""
    tags = configure(settings).get_run(run_id).data.tags

    def tag(key: str) -> str | None:
        value = tags.get(f"promotion_{key}")
        return None if value in (None, "", "None") else value

    return RecordedDecision(
        outcome=tags.get(DECISION_TAG),
        challenger_version=tag("challenger_version"),
        champion_version=tag("champion_version"),
        dagster_run_id=tag("dagster_run_id"),
        reason=tag("reason") or "",
        decided_at=tag("decided_at"),
    )


@dataclass(frozen=True)
class PromotionPlan:
    target: str | None  # the version ``champion`` moves onto; None: the champion keeps serving
    promoted_by: str | None
    reason: str


def plan_promotion(
    champion_version: str | None,
    challenger_version: str | None,
    recorded: RecordedDecision | None,
    override: str | None = None,
    run_id: str | None = None,
) -> PromotionPlan:
    """What the promotion step does, from the gate's recorded decision (never by itself).

    A manual override moves the alias whatever the gate said. Otherwise the challenger is promoted
    only if the gate's decision on THIS challenger version says ``promoted``, was recorded in this
    Dagster run (``run_id``; a gate is enforced only inside the run that evaluated it) and was
    made against the version that still is the champion.
    """
    forced = _override(override)
    if forced is not None:
        if forced == champion_version:
            return PromotionPlan(None, None, f"manual override: v{forced} already is the champion")
        return PromotionPlan(
            forced,
            manual_override_by(forced),
            f"manual override (CAMPAIGN_PROMOTE_OVERRIDE={forced})",
        )
    if challenger_version is None:
        return PromotionPlan(None, None, "no challenger is waiting")
    who = f"challenger v{challenger_version}"
    if recorded is None or recorded.outcome is None:
        return PromotionPlan(None, None, f"the promotion gate recorded no decision on {who}")
    if recorded.challenger_version != str(challenger_version):
        return PromotionPlan(
            None,
            None,
            f"the recorded decision is about v{recorded.challenger_version}, not {who}",
        )
    if run_id is not None and recorded.dagster_run_id != run_id:
        return PromotionPlan(
            None,
            None,
            f"the promotion gate decided on {who} in run {recorded.dagster_run_id}, not in this "
            "run: the gate must pass in the run that promotes",
        )
    if not recorded.promote:
        return PromotionPlan(
            None,
            None,
            f"the promotion gate did not promote {who} ({recorded.outcome}): {recorded.reason}",
        )
    if recorded.champion_version != champion_version:
        return PromotionPlan(
            None,
            None,
            f"{who} was compared with champion v{recorded.champion_version}, but "
            f"v{champion_version} is the champion now",
        )
    return PromotionPlan(str(challenger_version), PROMOTION_GATE, recorded.reason)
