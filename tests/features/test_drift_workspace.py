"""Drift over time: each run's snapshot lands in the Evidently workspace and the dashboard plots it."""

from __future__ import annotations

import numpy as np
import pandas as pd

from orchestration.core.features.drift import measure_feature_drift
from orchestration.core.observability.drift_workspace import (
    COLUMN_PANEL,
    PROJECT_NAME,
    SHARE_PANEL,
    drift_series,
    record_drift_snapshot,
    snapshot_labels,
)

COLUMNS = ["recency", "spend"]


def _frames(shift: float, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    reference = pd.DataFrame({c: rng.normal(0, 1, 3000) for c in COLUMNS})
    current = pd.DataFrame({"recency": rng.normal(shift, 1, 3000), "spend": rng.normal(0, 1, 3000)})
    return reference, current


def _record(workspace, shift: float, run_id: str, gate: str = "drift_share_below_threshold"):
    reference, current = _frames(shift, seed=len(run_id))
    tags, labels = snapshot_labels(run_id, gate)
    result = measure_feature_drift(
        reference, current, COLUMNS, snapshot_tags=tags, snapshot_metadata=labels
    )
    record_drift_snapshot(workspace, result.snapshot, run_id=run_id, columns=COLUMNS)
    return result


def test_each_run_adds_a_point_to_the_share_and_column_plots(tmp_path):
    workspace = tmp_path / "evidently"
    calm = _record(workspace, 0.0, "run-calm")
    drifted = _record(workspace, 2.0, "run-drifted")
    assert calm.drift_share == 0.0 and drifted.drift_share == 0.5

    shares = drift_series(workspace, "DriftedColumnsCount", {"value_type": "share"})
    assert shares == [0.0, 0.5]
    recency = drift_series(workspace, "ValueDrift", {"column": "recency"})
    assert len(recency) == 2 and recency[1] > 0.1 > recency[0]
    assert drift_series(workspace, "ValueDrift", {"column": "spend"})[1] < 0.1


def test_the_dashboard_has_both_panels_once_and_every_column(tmp_path):
    workspace = tmp_path / "evidently"
    for run in range(3):
        _record(workspace, 0.0, f"run-{run}")
    from evidently.ui.workspace import Workspace

    opened = Workspace(str(workspace))
    (project,) = opened.list_projects()
    assert project.name == PROJECT_NAME
    assert len(opened.list_runs(project.id)) == 3
    dashboard = opened.get_dashboard(project.id)
    assert sorted(panel.title for panel in dashboard.panels) == sorted([SHARE_PANEL, COLUMN_PANEL])
    (tab,) = dashboard.tabs
    assert len(tab.panels) == 2
    column_panel = next(p for p in dashboard.panels if p.title == COLUMN_PANEL)
    assert sorted(v.metric_labels["column"] for v in column_panel.values) == COLUMNS


def test_recovery_candidates_are_kept_but_not_plotted(tmp_path):
    workspace = tmp_path / "evidently"
    _record(workspace, 0.0, "run-1")
    _record(workspace, 2.0, "run-1", gate="candidate_drift_below_threshold")
    assert drift_series(workspace, "DriftedColumnsCount", {"value_type": "share"}) == [0.0]
    assert len(list(workspace.glob("*/snapshots/*.json"))) == 2
