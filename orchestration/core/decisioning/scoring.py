"""Batch scoring: every model alias the campaigns need, on the features as of the decision time."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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
    get NaN (the policy engine excludes them as missing_score). The frame is scored in slices of
    ``SCORING_CHUNK_ROWS`` rows (:func:`score_batches`)."""
    slices = (
        features.iloc[start : start + SCORING_CHUNK_ROWS]
        for start in range(0, len(features), SCORING_CHUNK_ROWS)
    )
    return score_batches(settings, slices, len(features), feature_columns, refs)


def score_parquet(
    settings: Settings,
    path: Path | str,
    feature_columns: list[str],
    refs: list[tuple[str, str]],
    batch_rows: int = SCORING_CHUNK_ROWS,
) -> ScoringResult:
    """:func:`score_with_aliases` on the features in the Parquet file ``path``, read
    ``batch_rows`` rows at a time (only ``customer_id`` and the feature columns), so memory holds
    one batch's features instead of every customer's (at 10M customers the whole frame and its
    float copies were an 18 GB peak)."""
    import pyarrow.parquet as pq

    file = pq.ParquetFile(path)
    columns = ["customer_id", *feature_columns]
    batches = (
        batch.to_pandas() for batch in file.iter_batches(batch_size=batch_rows, columns=columns)
    )
    return score_batches(settings, batches, file.metadata.num_rows, feature_columns, refs)


@dataclass
class _LoadedModel:
    ref: str
    version: str
    model: Any
    arms: tuple[str, ...]  # a multi-arm model's treatment arms; () when binary
    offered: tuple[str, ...] | None  # the arms the champion gate offers (multi-arm only)


def _load_models(
    settings: Settings, refs: list[tuple[str, str]], result: ScoringResult
) -> list[_LoadedModel]:
    """Each available alias's model, once; a missing alias or model goes to
    ``result.unavailable`` (reported, not fatal)."""
    from orchestration.core.model.registry import configure, load_alias

    client = configure(settings)
    loaded = []
    for name, alias in refs:
        ref = model_ref(name, alias)
        try:
            version = client.get_model_version_by_alias(name, alias)
            model = load_alias(settings.model_copy(update={"model_name": name}), alias)
        except Exception as exc:  # noqa: BLE001 - a missing alias or model is reported, not fatal
            result.unavailable[ref] = str(exc).splitlines()[0][:300]
            continue
        learner = arm_learner(model)
        arms = tuple(learner.arms_) if learner is not None else ()
        offered = (
            offered_arms(client.get_run(version.run_id).data.metrics, settings) if arms else None
        )
        loaded.append(_LoadedModel(ref, str(version.version), model, arms, offered))
    return loaded


def _score_batch(
    loaded: _LoadedModel, inputs: pd.DataFrame, has_features: np.ndarray
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """One batch's uplift (NaN without features) and, for a multi-arm model, each arm's (the
    uplift is then the best offered arm's)."""
    if loaded.arms:
        arms = arm_uplift(loaded.model, inputs, has_features, loaded.offered)
        return best_offered(arms), arms
    uplift = np.full(len(has_features), np.nan)
    if has_features.any():
        uplift[has_features] = predict_in_chunks(loaded.model, inputs)
    return uplift, {}


def score_batches(
    settings: Settings,
    batches: Iterable[pd.DataFrame],
    rows: int,
    feature_columns: list[str],
    refs: list[tuple[str, str]],
) -> ScoringResult:
    """Score ``rows`` customers arriving as ``batches`` (frames with ``customer_id`` and the
    feature columns) with each alias: the models load once, each batch is turned into the model's
    float inputs and scored, and only the scores are kept."""
    from orchestration.core.model.training import feature_matrix

    started = time.perf_counter()
    result = ScoringResult(scores=pd.DataFrame())
    models = _load_models(settings, refs, result)
    customer_ids = np.empty(rows, dtype=np.int64)
    has_features = np.zeros(rows, dtype=bool)
    uplift = {m.ref: np.full(rows, np.nan) for m in models}
    per_arm = {(m.ref, arm): np.full(rows, np.nan) for m in models for arm in m.arms}
    offset = 0
    for batch in batches:
        end = offset + len(batch)
        if end > rows:
            raise ValueError(f"the batches hold more than the {rows:,} rows announced")
        customer_ids[offset:end] = batch["customer_id"].astype("int64").to_numpy()
        has = batch[feature_columns].notna().any(axis=1).to_numpy()
        has_features[offset:end] = has
        # The model's signature is float64 features (what training saw); Feast returns ints.
        inputs = feature_matrix(batch.loc[has], feature_columns)
        for m in models:
            uplift[m.ref][offset:end], arms = _score_batch(m, inputs, has)
            for arm, values in arms.items():
                per_arm[(m.ref, arm)][offset:end] = values
        offset = end
    if offset != rows:
        raise ValueError(f"the batches held {offset:,} rows, {rows:,} were announced")
    columns: dict[str, object] = {"customer_id": customer_ids}
    scored_rows = int(has_features.sum())
    for m in models:
        columns[score_column(m.ref)] = uplift[m.ref]
        for arm in m.arms:
            columns[arm_score_column(m.ref, arm)] = per_arm[(m.ref, arm)]
        columns[version_column(m.ref)] = m.version
        result.versions[m.ref] = m.version
        result.scored[m.ref] = scored_rows
        scored = uplift[m.ref][has_features]
        result.mean_uplift[m.ref] = float(scored.mean()) if len(scored) else 0.0
        result.share_positive[m.ref] = float((scored > 0).mean()) if len(scored) else 0.0
    result.scores = pd.DataFrame(columns, index=pd.RangeIndex(rows))
    result.seconds = time.perf_counter() - started
    return result
