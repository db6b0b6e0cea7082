"""Run health over time, as charts: one panel per seed metric, blocked and failed runs marked.

The metrics table (metrics_table.py) holds a row per run however it was launched and however it
ended; this draws it for the campaign report notebook.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

# The signals an operator reads over time, in panel order, with their axis labels.
PLOTTED_METRICS: dict[str, str] = {
    "feature_drift_share": "share of drifted feature columns",
    "data_freshness_lag_hours": "raw data lag (hours)",
    "policy_compliance_rate": "policy compliance rate",
    "inference_success_rate": "inference success rate",
    "feature_availability": "scoring feature availability",
    "online_latency_p99_ms": "decision API p99 (ms)",
    "online_inference_success_rate": "API inference success rate",
    "online_feature_availability": "online feature availability",
    "send_delivery_rate": "send delivery rate",
    "checks_failed": "failed checks",
}


def plot_run_health(metrics: pd.DataFrame, path: Path | None = None):
    """A figure with a panel per metric present in ``metrics`` (read_run_metrics's frame); runs
    that did not succeed are drawn as red crosses. Saved to ``path`` when given."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    present = [m for m in PLOTTED_METRICS if m in metrics.columns and metrics[m].notna().any()]
    if metrics.empty or not present:
        raise ValueError("no run metrics to plot yet: run the pipeline first")
    frame = metrics.assign(recorded_at=pd.to_datetime(metrics["recorded_at"], utc=True))
    failed = frame["run_status"] != "SUCCESS"
    fig, axes = plt.subplots(len(present), 1, figsize=(8, 1.9 * len(present)), sharex=True)
    axes = list(axes) if len(present) > 1 else [axes]
    for ax, metric in zip(axes, present, strict=True):
        ax.plot(frame["recorded_at"], frame[metric], marker="o", linewidth=1)
        ax.scatter(
            frame.loc[failed, "recorded_at"],
            frame.loc[failed, metric],
            color="red",
            marker="x",
            zorder=3,
            label="blocked or failed run",
        )
        ax.set_ylabel(PLOTTED_METRICS[metric], fontsize=8)
    if failed.any():
        axes[0].legend(loc="best", fontsize=8)
    axes[0].set_title("Run health over runs")
    fig.autofmt_xdate()
    fig.tight_layout()
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=100)
    return fig
