"""Feature drift between the model's training reference and today's scoring features (Evidently).

Evidently on large frames is slow and memory hungry, so both sides are sampled to a stated size
(the sample size is part of the result and of the report). Columns that trend with time by
construction (tenure) are left out: they drift every day without anything being wrong.
Columns empty on both sides (a signal the source does not have, e.g. e-mail clicks in a dataset
without e-mail events) cannot be tested and cannot have moved: they are left out and named in
the result; a column empty on one side only counts as drifted (the signal appeared or vanished).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

# Features that move with the calendar, not with customer behaviour.
TIME_TRENDING_COLUMNS: frozenset[str] = frozenset({"tenure_days"})


@dataclass(frozen=True)
class DriftResult:
    drift_share: float
    drifted_columns: list[str]
    column_scores: dict[str, float]
    column_methods: dict[str, str]
    column_thresholds: dict[str, float]
    reference_rows: int
    current_rows: int
    sample_rows: int
    columns: list[str] = field(default_factory=list)
    report_path: Path | None = None
    # empty on both sides: not tested (nothing to compare), not counted in the share
    empty_columns: list[str] = field(default_factory=list)
    # the evaluated Evidently report, for the drift workspace (drift_workspace.py)
    snapshot: Any = field(default=None, repr=False, compare=False)

    def is_below(self, threshold: float) -> bool:
        return self.drift_share < threshold


def drift_columns(feature_columns: list[str]) -> list[str]:
    return [c for c in feature_columns if c not in TIME_TRENDING_COLUMNS]


def _sample(frame: pd.DataFrame, rows: int, seed: int) -> pd.DataFrame:
    if len(frame) <= rows:
        return frame.reset_index(drop=True)
    return frame.sample(n=rows, random_state=seed).reset_index(drop=True)


def _as_numeric(frame: pd.DataFrame) -> pd.DataFrame:
    # Booleans become 0/1 so every column is compared with the same kind of test; nullable
    # integers (e.g. a one-hot attribute with unknown values, read as pandas' Int64) become
    # floats with NaN, which Evidently can type (it cannot type the extension dtypes).
    out = frame.copy()
    for column in out.columns:
        dtype = out[column].dtype
        if str(dtype) in ("bool", "boolean") or pd.api.types.is_extension_array_dtype(dtype):
            out[column] = pd.to_numeric(out[column], errors="coerce").astype("float64")
    return out


def measure_feature_drift(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    columns: list[str],
    sample_rows: int = 20_000,
    seed: int = 0,
    report_path: Path | None = None,
    snapshot_tags: tuple[str, ...] = (),
    snapshot_metadata: dict[str, str] | None = None,
) -> DriftResult:
    """Share of ``columns`` whose distribution moved, per Evidently's default column tests.

    Evidently picks a distance per column type (normed Wasserstein for numeric columns over 1000
    rows, Jensen-Shannon for categorical) with threshold 0.1; a column drifts when its distance
    reaches the threshold. The HTML report is written to ``report_path`` when given; the
    evaluated report (``result.snapshot``) carries ``snapshot_tags`` and ``snapshot_metadata``.
    """
    from evidently import Report
    from evidently.presets import DataDriftPreset

    if reference.empty or current.empty:
        raise ValueError(
            f"drift needs rows on both sides (reference {len(reference)}, current {len(current)})"
        )
    missing = [c for c in columns if c not in reference.columns or c not in current.columns]
    if missing:
        raise ValueError(f"drift columns missing from the frames: {missing}")
    ref = _as_numeric(_sample(reference[columns], sample_rows, seed))
    cur = _as_numeric(_sample(current[columns], sample_rows, seed + 1))
    ref_empty = {c for c in columns if ref[c].isna().all()}
    cur_empty = {c for c in columns if cur[c].isna().all()}
    empty = sorted(ref_empty & cur_empty)
    one_sided = sorted(ref_empty ^ cur_empty)
    tested = [c for c in columns if c not in ref_empty | cur_empty]
    if not tested:
        raise ValueError(f"no drift column has values on both sides: {columns}")
    snapshot = Report([DataDriftPreset(columns=tested)]).run(
        current_data=cur[tested],
        reference_data=ref[tested],
        tags=list(snapshot_tags),
        metadata=dict(snapshot_metadata or {}),
    )
    metrics = snapshot.dict()["metrics"]
    share = 0.0
    scores: dict[str, float] = {}
    methods: dict[str, str] = {}
    thresholds: dict[str, float] = {}
    for metric in metrics:
        config = metric.get("config", {})
        kind = config.get("type", "")
        if kind.endswith("DriftedColumnsCount"):
            share = float(metric["value"]["share"])
        elif kind.endswith("ValueDrift"):
            column = config["column"]
            scores[column] = float(metric["value"])
            methods[column] = str(config.get("method"))
            thresholds[column] = float(config.get("threshold"))
    drifted = sorted(c for c, v in scores.items() if v >= thresholds[c])
    if one_sided:  # a signal that appeared or vanished has drifted, whatever its values
        drifted = sorted({*drifted, *one_sided})
        share = (share * len(tested) + len(one_sided)) / (len(tested) + len(one_sided))
    if report_path is not None:
        report_path.parent.mkdir(parents=True, exist_ok=True)
        snapshot.save_html(str(report_path))
    return DriftResult(
        drift_share=share,
        drifted_columns=drifted,
        column_scores=scores,
        column_methods=methods,
        column_thresholds=thresholds,
        reference_rows=len(reference),
        current_rows=len(current),
        sample_rows=sample_rows,
        columns=list(columns),
        report_path=report_path,
        empty_columns=empty,
        snapshot=snapshot,
    )
