"""Batch scoring: every model alias the campaigns need, on the features as of the decision time."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from orchestration.core.decisioning.campaigns import Campaign
from orchestration.core.decisioning.decide import (
    CHALLENGER,
    CHAMPION,
    arm_score_column,
    model_ref,
    score_column,
    version_column,
)
from orchestration.settings import Settings


def wanted_model_refs(campaigns: list[Campaign], default_model: str) -> list[tuple[str, str]]:
    """(model, alias) pairs to score: the default champion, each campaign's model, and the
    challenger of campaigns that run a canary."""
    refs = {(default_model, CHAMPION)}
    for campaign in campaigns:
        refs.add((campaign.model.name, campaign.model.alias))
        if campaign.challenger_share > 0:
            refs.add((campaign.model.name, CHALLENGER))
    return sorted(refs)


@dataclass
class ScoringResult:
    scores: pd.DataFrame  # customer_id, uplift__<ref>, version__<ref> per available ref
    versions: dict[str, str] = field(default_factory=dict)
    scored: dict[str, int] = field(default_factory=dict)
    mean_uplift: dict[str, float] = field(default_factory=dict)
    share_positive: dict[str, float] = field(default_factory=dict)
    unavailable: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    path: Path | None = None  # where the scores were written by the scorer (Spark), if it did


# Rows per predict call: MLflow's pyfunc checks and converts each input frame against the
# model's signature (a copy of it), so scoring 10M customers at once would hold several copies.
SCORING_CHUNK_ROWS = 500_000


def predict_in_chunks(model, inputs: pd.DataFrame, chunk_rows: int = SCORING_CHUNK_ROWS):
    """``model.predict`` over ``inputs`` in slices of ``chunk_rows`` rows, concatenated (the
    same values as one call: a prediction depends on its own row only)."""
    parts = [
        np.asarray(model.predict(inputs.iloc[start : start + chunk_rows]), dtype=float)
        for start in range(0, len(inputs), chunk_rows)
    ]
    return np.concatenate(parts) if parts else np.empty(0)


def arm_learner(model):
    """The multi-arm learner inside a loaded pyfunc (``core.model.arms``), or None (binary)."""
    try:
        learner = model.unwrap_python_model().learner
    except Exception:  # noqa: BLE001 - not our python model: no arms
        return None
    return learner if getattr(learner, "arms_", ()) else None


def offered_arms(metrics: dict[str, float], settings: Settings) -> tuple[str, ...] | None:
    """The arms the champion gate offers (``core.model.gates.usable_arms``) by the model
    version's own evaluation; None for a binary model."""
    from orchestration.core.model.gates import usable_arms

    return usable_arms(metrics, settings.thresholds.min_champion_qini)


def best_offered(arms: dict[str, np.ndarray]) -> np.ndarray:
    """Per row the highest uplift of the offered arms (NaN where none is)."""
    stacked = np.vstack(list(arms.values()))
    out = np.full(stacked.shape[1], np.nan)
    scored = ~np.isnan(stacked).all(axis=0)
    out[scored] = np.nanmax(stacked[:, scored], axis=0)
    return out


def arm_uplift(
    model,
    inputs: pd.DataFrame,
    has_features: np.ndarray,
    offered: tuple[str, ...] | None = None,
    chunk_rows: int = SCORING_CHUNK_ROWS,
) -> dict[str, np.ndarray]:
    """A multi-arm model's uplift per treatment arm over all rows (NaN without features, and
    NaN throughout for an arm not in ``offered``: the champion gate did not offer it); empty
    for a binary model. ``inputs`` are the rows with features, as the pyfunc scores."""
    learner = arm_learner(model)
    if learner is None:
        return {}
    out = {arm: np.full(len(has_features), np.nan) for arm in learner.arms_}
    if offered is not None and not offered:
        return out
    parts = [
        learner.predict_arm_uplift(inputs.iloc[start : start + chunk_rows])
        for start in range(0, len(inputs), chunk_rows)
    ]
    if parts:
        per_arm = pd.concat(parts)
        for arm in learner.arms_:
            if offered is None or arm in offered:
                out[arm][has_features] = per_arm[arm].to_numpy(dtype=np.float64)
    return out


def score_with_aliases(
    settings: Settings,
    features: pd.DataFrame,
    feature_columns: list[str],
    refs: list[tuple[str, str]],
) -> ScoringResult:
    """Score rows that have features with each ``models:/<name>@<alias>``; rows without features
    get NaN (the policy engine excludes them as missing_score)."""
    from orchestration.core.model.registry import configure, load_alias
    from orchestration.core.model.training import feature_matrix

    started = time.perf_counter()
    out = pd.DataFrame({"customer_id": features["customer_id"].astype("int64").to_numpy()})
    result = ScoringResult(scores=out)
    has_features = features[feature_columns].notna().any(axis=1).to_numpy()
    # The model's signature is float64 features (what training saw); Feast returns ints.
    inputs = feature_matrix(features.loc[has_features], feature_columns)
    client = configure(settings)
    for name, alias in refs:
        ref = model_ref(name, alias)
        try:
            version = client.get_model_version_by_alias(name, alias)
            model = load_alias(settings.model_copy(update={"model_name": name}), alias)
        except Exception as exc:  # noqa: BLE001 - a missing alias or model is reported, not fatal
            result.unavailable[ref] = str(exc).splitlines()[0][:300]
            continue
        uplift = np.full(len(features), np.nan)
        if has_features.any():
            uplift[has_features] = predict_in_chunks(model, inputs)
        arms: dict[str, np.ndarray] = {}
        if arm_learner(model) is not None:  # a multi-arm model: the best offered arm's uplift
            offered = offered_arms(client.get_run(version.run_id).data.metrics, settings)
            arms = arm_uplift(model, inputs, has_features, offered)
            uplift = best_offered(arms)
        out[score_column(ref)] = uplift
        for arm, values in arms.items():
            out[arm_score_column(ref, arm)] = values
        out[version_column(ref)] = str(version.version)
        result.versions[ref] = str(version.version)
        result.scored[ref] = int(has_features.sum())
        scored = uplift[has_features]
        result.mean_uplift[ref] = float(scored.mean()) if len(scored) else 0.0
        result.share_positive[ref] = float((scored > 0).mean()) if len(scored) else 0.0
    result.seconds = time.perf_counter() - started
    return result
