"""The run-health chart: a panel per recorded metric, blocked runs marked, empty tables refused."""

from __future__ import annotations

import pandas as pd
import pytest

from orchestration.core.observability.metrics_table import read_run_metrics, record_run_metrics
from orchestration.core.observability.run_health_plot import plot_run_health


def test_blocked_runs_are_drawn_as_red_crosses_on_every_panel(tmp_path):
    db = tmp_path / "metrics.db"
    record_run_metrics(db, "good-1", "SUCCESS", {"feature_drift_share": 0.0, "checks_failed": 0})
    record_run_metrics(db, "drift", "FAILURE", {"feature_drift_share": 0.6, "checks_failed": 1})
    record_run_metrics(db, "good-2", "SUCCESS", {"feature_drift_share": 0.1, "checks_failed": 0})
    fig = plot_run_health(read_run_metrics(db), tmp_path / "health.png")
    assert (tmp_path / "health.png").stat().st_size > 0
    assert [ax.get_ylabel() for ax in fig.axes] == [
        "share of drifted feature columns",
        "failed checks",
    ]
    drift_axis = fig.axes[0]
    (line,) = drift_axis.get_lines()
    assert list(line.get_ydata()) == [0.0, 0.6, 0.1]
    (crosses,) = drift_axis.collections
    assert [y for _, y in crosses.get_offsets()] == [0.6]


def test_an_empty_metrics_table_says_what_to_do(tmp_path):
    with pytest.raises(ValueError, match="run the pipeline first"):
        plot_run_health(pd.DataFrame())
