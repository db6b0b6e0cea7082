"""Drift over time: every run's Evidently drift snapshot in a local Evidently workspace.

One project (``campaign feature drift``) holds one snapshot per drift measurement, tagged with
the gate it served (``drift_share_below_threshold`` or the candidate gate) and the run id in its
metadata. The project's dashboard plots the drift share and each column's drift score over runs;
``make drift-ui`` serves it (``evidently ui --workspace <data>/evidently``, on 127.0.0.1).

Plain Python: evidently is imported inside the functions (it is slow to import).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PROJECT_NAME = "campaign feature drift"
DRIFT_TAB = "Feature drift"
SHARE_PANEL = "Share of drifted feature columns"
COLUMN_PANEL = "Drift score per feature column"
# The plots follow the blocking gate's snapshots only (the recovery job's candidates are kept too,
# tagged with their own gate, but would zigzag the line).
PLOTTED_GATE = "drift_share_below_threshold"


@dataclass(frozen=True)
class DriftRun:
    """What the workspace stored: the snapshot's id and the workspace it lives in."""

    workspace: Path
    project_id: str
    snapshot_id: str


def _project(workspace: Any) -> Any:
    from evidently.sdk.models import ProjectModel

    found = workspace.search_project(PROJECT_NAME)
    if found:
        return found[0]
    return workspace.add_project(
        ProjectModel(
            name=PROJECT_NAME,
            description="Feature drift of each run's snapshot against the champion's training "
            "reference (Evidently DataDriftPreset), one snapshot per run.",
        )
    )


def _plotted_columns(workspace: Any, project_id: Any) -> set[str]:
    model = workspace.get_dashboard(project_id)
    return {
        value.metric_labels["column"]
        for panel in model.panels
        if panel.title == COLUMN_PANEL
        for value in panel.values
        if "column" in value.metric_labels
    }


def _save_dashboard(workspace: Any, project_id: Any, columns: Iterable[str]) -> None:
    """The two plots, written whole (the per-column one keeps every column ever plotted)."""
    from evidently.sdk.models import DashboardModel, DashboardTabModel, PanelMetric
    from evidently.sdk.panels import line_plot_panel

    wanted = sorted(set(columns) | _plotted_columns(workspace, project_id))
    share = line_plot_panel(
        title=SHARE_PANEL,
        description="The drift gate blocks when this reaches its threshold.",
        values=[
            PanelMetric(
                legend="drift share",
                metric="DriftedColumnsCount",
                metric_labels={"value_type": "share"},
                tags=[PLOTTED_GATE],
            )
        ],
    )
    per_column = line_plot_panel(
        title=COLUMN_PANEL,
        description="Per-column distance (Evidently's default test per column type).",
        values=[
            PanelMetric(
                legend=column,
                metric="ValueDrift",
                metric_labels={"column": column},
                tags=[PLOTTED_GATE],
            )
            for column in wanted
        ],
    )
    tab = DashboardTabModel(title=DRIFT_TAB, panels=[share.id, per_column.id])
    workspace.save_dashboard(project_id, DashboardModel(tabs=[tab], panels=[share, per_column]))


def snapshot_labels(run_id: str, gate: str) -> tuple[tuple[str, ...], dict[str, str]]:
    """The tags and metadata a drift report is run with, so the dashboard can find it."""
    return (gate,), {"run_id": run_id, "gate": gate}


def record_drift_snapshot(
    workspace_dir: Path, snapshot: Any, *, run_id: str, columns: Iterable[str]
) -> DriftRun:
    """Append ``snapshot`` (an Evidently report run with ``snapshot_labels``) to the workspace."""
    from evidently.ui.workspace import Workspace

    workspace_dir = Path(workspace_dir)
    workspace_dir.mkdir(parents=True, exist_ok=True)
    workspace = Workspace(str(workspace_dir))
    project = _project(workspace)
    _save_dashboard(workspace, project.id, columns)
    ref = workspace.add_run(project.id, snapshot, name=f"drift {run_id}")
    return DriftRun(workspace=workspace_dir, project_id=str(project.id), snapshot_id=str(ref.id))


def drift_series(workspace_dir: Path, metric: str, labels: dict[str, str]) -> list[float]:
    """The values the dashboard plots for one metric (the blocking gate's snapshots), oldest run
    first: what the UI draws, for tests and notebooks."""
    import asyncio

    from evidently.ui.service.base import SeriesFilter
    from evidently.ui.service.storage.local.base import InMemoryDataStorage
    from evidently.ui.workspace import Workspace

    if not Path(workspace_dir).exists():
        return []
    found = Workspace(str(workspace_dir)).search_project(PROJECT_NAME)
    if not found:
        return []
    storage = InMemoryDataStorage(str(workspace_dir))
    wanted = SeriesFilter(
        tags=[PLOTTED_GATE],
        metadata={},
        metric=f"evidently:metric_v2:{metric}",
        metric_labels=labels,
    )
    response = asyncio.run(storage.get_data_series(found[0].id, [wanted], None, None))
    return [value for series in response.series for value in series.values]
