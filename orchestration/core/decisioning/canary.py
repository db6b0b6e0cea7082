"""Canary guardrails: stop scoring with the challenger the run after it misbehaves.

Plain Python (never dagster). A campaign with ``challenger_share > 0`` lets the challenger score a
salted share of its audience. After the decisions exist, ``evaluate_guardrails`` looks at the
challenger's scores; any failed guardrail trips a small persisted state
(``<data>/model/canary_state.json``, one entry per model name) and records an alert. While the
state is tripped for the current challenger version, ``effective_challenger_shares`` returns 0 for
every campaign of that model, so the champion scores everyone. A new challenger version resets it.

Guardrails (each returns a sentence when it fails):

* scoring errors: rows the champion scored but the challenger did not (NaN/inf) - any is too many;
* score drift: two-sample Kolmogorov-Smirnov statistic between the challenger's and the
  champion's scores on the same customers above ``max_ks``;
* compliance: any policy violation among the recipients the challenger scored.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from orchestration.settings import Settings

CHAMPION = "champion"
CHALLENGER = "challenger"
MAX_KS = 0.3
MAX_ERROR_SHARE = 0.0


@dataclass(frozen=True)
class CanaryState:
    tripped: bool = False
    reason: str = ""
    tripped_at: str | None = None
    challenger_version: str | None = None


def state_path(settings: Settings) -> Path:
    return settings.data_dir / "model" / "canary_state.json"


def _read_all(path: Path) -> dict[str, dict]:
    if not path.exists():
        return {}
    try:
        raw = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return {}
    return raw if isinstance(raw, dict) else {}


def load_state(settings: Settings, model: str) -> CanaryState:
    entry = _read_all(state_path(settings)).get(model) or {}
    known = {k: entry[k] for k in CanaryState.__dataclass_fields__ if k in entry}
    return CanaryState(**known)


def save_state(settings: Settings, model: str, state: CanaryState) -> None:
    """Atomic write (temp file + replace) of this model's entry; other models' entries are kept."""
    path = state_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    states = _read_all(path)
    states[model] = asdict(state)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(states, indent=2, sort_keys=True))
    os.replace(tmp, path)


def current_state(settings: Settings, model: str, challenger_version: str | None) -> CanaryState:
    """The state for this challenger: a new challenger version starts untripped."""
    state = load_state(settings, model)
    if challenger_version is None:  # no challenger scored this run: nothing to reset or guard
        return state
    version = str(challenger_version)
    if state.challenger_version != version:
        state = CanaryState(challenger_version=version)
        save_state(settings, model, state)
    return state


def effective_challenger_shares(
    settings: Settings,
    configured: Mapping[str, float],
    models: Mapping[str, str],
    challenger_versions: Mapping[str, str | None],
) -> dict[str, float]:
    """Each campaign's challenger share for this run: its configured share, or 0 while the
    canary of its model (``models[campaign]``) is tripped for the current challenger version."""
    shares: dict[str, float] = {}
    states: dict[str, CanaryState] = {}
    for campaign, share in configured.items():
        model = models.get(campaign)
        if model is None or share <= 0:
            shares[campaign] = float(share)
            continue
        if model not in states:
            states[model] = current_state(settings, model, challenger_versions.get(model))
        shares[campaign] = 0.0 if states[model].tripped else float(share)
    return shares


def challenger_version_in(scores: pd.DataFrame, model: str) -> str | None:
    """The challenger version of ``model`` in a customer_scores frame (None if not scored)."""
    from orchestration.core.decisioning.decide import model_ref, version_column

    column = version_column(model_ref(model, CHALLENGER))
    if column not in scores.columns or scores[column].isna().all():
        return None
    return str(scores[column].dropna().iloc[0])


def shares_for_run(settings: Settings, campaigns, scores: pd.DataFrame) -> dict[str, float]:
    """``effective_challenger_shares`` for loaded ``Campaign`` objects and this run's scores."""
    campaigns = list(campaigns)
    models = {c.name: c.model.name for c in campaigns}
    return effective_challenger_shares(
        settings,
        {c.name: c.challenger_share for c in campaigns},
        models,
        {m: challenger_version_in(scores, m) for m in set(models.values())},
    )


def ks_statistic(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sample Kolmogorov-Smirnov statistic (max distance between the empirical CDFs)."""
    a, b = np.sort(np.asarray(a, dtype=float)), np.sort(np.asarray(b, dtype=float))
    if len(a) == 0 or len(b) == 0:
        return 0.0
    grid = np.concatenate([a, b])
    cdf_a = np.searchsorted(a, grid, side="right") / len(a)
    cdf_b = np.searchsorted(b, grid, side="right") / len(b)
    return float(np.max(np.abs(cdf_a - cdf_b)))


def evaluate_guardrails(
    scores: pd.DataFrame,
    compliance_violations_by_model: Mapping[str, int],
    drift_share: float | None = None,
    max_ks: float = MAX_KS,
    max_error_share: float = MAX_ERROR_SHARE,
) -> list[str]:
    """The failed guardrails (empty when the canary is healthy).

    ``scores`` has one row per customer: ``scored_by`` (champion/challenger: who scored it in
    the decisions), ``champion_uplift`` and ``challenger_uplift`` (both models' scores on that
    customer). ``drift_share`` is a precomputed KS statistic; None computes it from the frame.
    """
    missing = {"scored_by", "champion_uplift", "challenger_uplift"} - set(scores.columns)
    if missing:
        raise ValueError(f"the canary scores frame lacks {sorted(missing)}")
    failed: list[str] = []
    champion = scores["champion_uplift"].to_numpy(dtype=float)
    challenger = scores["challenger_uplift"].to_numpy(dtype=float)
    expected = np.isfinite(champion)
    if expected.any():
        error_share = float((~np.isfinite(challenger[expected])).mean())
        if error_share > max_error_share:
            failed.append(
                f"scoring errors: the challenger returned no score for {error_share:.2%} of the "
                f"customers the champion scored (allowed {max_error_share:.2%})"
            )
    if drift_share is None:
        both = expected & np.isfinite(challenger)
        drift_share = ks_statistic(champion[both], challenger[both]) if both.any() else 0.0
    if drift_share > max_ks:
        failed.append(
            f"score drift: KS statistic {drift_share:.3f} between challenger and champion scores "
            f"exceeds {max_ks:.3f}"
        )
    violations = int(compliance_violations_by_model.get(CHALLENGER, 0))
    if violations > 0:
        failed.append(f"compliance: {violations} policy violations among challenger-scored rows")
    return failed


def canary_frame(
    scores: pd.DataFrame, decisions: pd.DataFrame, champion_column: str, challenger_column: str
) -> pd.DataFrame:
    """Per customer: both models' scores and who scored them in the live decisions (challenger
    if any campaign row of the customer was challenger-scored)."""
    by = decisions.assign(_ch=decisions["scored_by"].astype(str).eq(CHALLENGER))
    by = by.groupby("customer_id")["_ch"].any()
    frame = pd.DataFrame(
        {
            "customer_id": scores["customer_id"].to_numpy(),
            "champion_uplift": scores[champion_column].to_numpy(dtype=float),
            "challenger_uplift": scores[challenger_column].to_numpy(dtype=float)
            if challenger_column in scores.columns
            else np.full(len(scores), np.nan),
        }
    )
    challenged = frame["customer_id"].map(by).fillna(False).astype(bool)
    frame["scored_by"] = np.where(challenged, CHALLENGER, CHAMPION)
    return frame


def violations_by_model(violations: pd.DataFrame, decisions: pd.DataFrame) -> dict[str, int]:
    """Count policy violations by the model that scored the violating recipient."""
    if violations.empty:
        return {}
    keys = [k for k in ("campaign", "customer_id", "channel") if k in violations.columns]
    scored = decisions[[*keys, "scored_by"]].drop_duplicates(keys)
    joined = violations.merge(scored, on=keys, how="left")
    counts = joined["scored_by"].fillna(CHAMPION).astype(str).value_counts()
    return {str(k): int(v) for k, v in counts.items()}


@dataclass(frozen=True)
class CanaryOutcome:
    state: CanaryState
    failed: list[str]
    newly_tripped: bool


def record_guardrails(
    settings: Settings,
    model: str,
    challenger_version: str,
    failed: list[str],
    env: Mapping[str, str] | None = None,
    now: datetime | None = None,
) -> CanaryOutcome:
    """Trip the state when a guardrail failed (once per challenger version) and send the alert."""
    from orchestration.core.observability.alerting.notifiers import (
        OPEN,
        Alert,
        notifier_from_env,
        utc_iso,
    )

    state = current_state(settings, model, challenger_version)
    if not failed or state.tripped:
        return CanaryOutcome(state=state, failed=failed, newly_tripped=False)
    moment = now or datetime.now(UTC)
    state = CanaryState(
        tripped=True,
        reason="; ".join(failed),
        tripped_at=utc_iso(moment),
        challenger_version=str(challenger_version),
    )
    save_state(settings, model, state)
    notifier = notifier_from_env(settings.alert_env if env is None else env, settings.alert_log)
    notifier.notify(
        Alert(
            incident_key=f"canary:{model}",
            kind="check_failed",
            severity="warning",
            status=OPEN,
            title=f"canary of {model} v{challenger_version} tripped: challenger share set to 0",
            detail="; ".join(failed),
            occurred_at=utc_iso(moment),
            evidence={"model": model, "challenger_version": str(challenger_version)},
        )
    )
    return CanaryOutcome(state=state, failed=failed, newly_tripped=True)


def run_canary(
    settings: Settings,
    decisions: pd.DataFrame,
    scores: pd.DataFrame,
    campaign_models: Mapping[str, str],
    verify: Callable[[pd.DataFrame], pd.DataFrame] | None = None,
    env: Mapping[str, str] | None = None,
) -> dict[str, CanaryOutcome]:
    """Evaluate the guardrails of every model whose challenger scored live rows this run.

    ``campaign_models`` maps campaign -> model name; ``verify`` re-checks recipients against the
    policy and returns the violations (rows with campaign/customer_id/channel). Models without a
    running canary are left out of the result.
    """
    from orchestration.core.decisioning.decide import model_ref, score_column

    if decisions.empty:
        return {}
    live = decisions[~decisions["dry_run"].astype(bool)] if "dry_run" in decisions else decisions
    outcomes: dict[str, CanaryOutcome] = {}
    for model in sorted(set(campaign_models.values())):
        version = challenger_version_in(scores, model)
        champion_column = score_column(model_ref(model, CHAMPION))
        if version is None or champion_column not in scores.columns:
            continue
        rows = live[live["campaign"].map(campaign_models).eq(model)]
        if not rows["scored_by"].astype(str).eq(CHALLENGER).any():
            continue  # no canary running for this model (none configured, or tripped)
        frame = canary_frame(
            scores, rows, champion_column, score_column(model_ref(model, CHALLENGER))
        )
        recipients = rows[rows["decision"].isin(["send", "deferred"])]
        violations = (
            verify(recipients) if verify is not None and len(recipients) else pd.DataFrame()
        )
        failed = evaluate_guardrails(frame, violations_by_model(violations, recipients))
        outcomes[model] = record_guardrails(settings, model, version, failed, env)
    return outcomes
