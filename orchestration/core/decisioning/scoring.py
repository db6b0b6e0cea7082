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
            version = client.get_model_version_by_alias(name, alias).version
            model = load_alias(settings.model_copy(update={"model_name": name}), alias)
        except Exception as exc:  # noqa: BLE001 - a missing alias or model is reported, not fatal
            result.unavailable[ref] = str(exc).splitlines()[0][:300]
            continue
        uplift = np.full(len(features), np.nan)
        if has_features.any():
            uplift[has_features] = predict_in_chunks(model, inputs)
        out[score_column(ref)] = uplift
        out[version_column(ref)] = str(version)
        result.versions[ref] = str(version)
        result.scored[ref] = int(has_features.sum())
        scored = uplift[has_features]
        result.mean_uplift[ref] = float(scored.mean()) if len(scored) else 0.0
        result.share_positive[ref] = float((scored > 0).mean()) if len(scored) else 0.0
    result.seconds = time.perf_counter() - started
    return result
