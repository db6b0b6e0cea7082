"""Measured lift of our own campaigns: treated (sent) vs holdout, per campaign and send day.

A cohort is complete when its outcome window (``OUTCOME_WINDOW_DAYS``) has closed; younger
cohorts are reported as partial. The interval is the normal approximation of a difference of two proportions. Random
targeting at the same volume is the average effect of the past randomized campaigns (what a
message does to a random customer) and, on the synthetic world, the true mean effect over the
eligible customers; model targeting is the measured lift of the audience it chose.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pandas as pd

from orchestration.core.common.outcome_window import OUTCOME_WINDOW_DAYS

WINDOW = timedelta(days=OUTCOME_WINDOW_DAYS)
Z95 = 1.959963984540054


def measure_lift(
    exposures: pd.DataFrame,
    as_of: datetime,
    ground_truth: pd.DataFrame | None = None,
    random_lift: float | None = None,
) -> pd.DataFrame:
    """One row per (campaign, send day) from exposures with their outcomes (the warehouse's
    fct_campaign_exposures: arm, exposed_at, has_converted, revenue_in_window): sizes,
    conversion rates, lift with a 95 % interval, incremental conversions and revenue,
    completeness, and the comparisons with random targeting (and the truth, when known)."""
    if exposures.empty:
        return pd.DataFrame()
    frame = exposures.copy()
    frame["exposed_at"] = pd.to_datetime(frame["exposed_at"], utc=True)
    frame["converted"] = frame["has_converted"].astype(float)
    frame["send_day"] = frame["exposed_at"].dt.strftime("%Y-%m-%d")
    if ground_truth is not None:
        frame = frame.merge(
            ground_truth[["customer_id", "true_uplift"]], on="customer_id", how="left"
        )
    rows = []
    for (campaign, day), group in frame.groupby(["campaign_id", "send_day"]):
        treated = group[group["arm"] == "treatment"]
        control = group[group["arm"] == "control"]
        n1, n0 = len(treated), len(control)
        p1 = float(treated["converted"].mean()) if n1 else np.nan
        p0 = float(control["converted"].mean()) if n0 else np.nan
        se = np.sqrt(p1 * (1 - p1) / n1 + p0 * (1 - p0) / n0) if n1 and n0 else np.nan
        lift = p1 - p0
        row = {
            "campaign": campaign,
            "send_day": day,
            "is_complete": bool(group["exposed_at"].max() + WINDOW <= pd.Timestamp(as_of)),
            "treated": n1,
            "holdout": n0,
            "treated_conversion_rate": p1,
            "holdout_conversion_rate": p0,
            "lift": lift,
            "lift_ci_low": lift - Z95 * se,
            "lift_ci_high": lift + Z95 * se,
            "incremental_conversions": lift * n1,
            "revenue_per_treated": float(treated["revenue_in_window"].mean()) if n1 else np.nan,
            "revenue_per_holdout": float(control["revenue_in_window"].mean()) if n0 else np.nan,
        }
        if random_lift is not None:
            row["random_targeting_lift"] = random_lift
            row["targeting_gain_over_random"] = lift - random_lift
        if ground_truth is not None:
            row["true_lift_of_audience"] = float(treated["true_uplift"].mean()) if n1 else np.nan
        rows.append(row)
    return pd.DataFrame(rows).sort_values(["campaign", "send_day"]).reset_index(drop=True)


def randomized_ate(exposures: pd.DataFrame, outcome: str = "has_converted") -> float | None:
    """Average effect of a message on a random customer, from past randomized campaigns."""
    done = (
        exposures[exposures["is_outcome_complete"].astype(bool)]
        if "is_outcome_complete" in exposures
        else exposures
    )
    if done.empty or done["arm"].nunique() < 2:
        return None
    # every named treatment arm against control (a multi-arm test: any message at random)
    treated = done["arm"] != "control"
    if treated.all() or not treated.any():
        return None
    return float(done.loc[treated, outcome].mean() - done.loc[~treated, outcome].mean())


def plot_lift(results: pd.DataFrame, path) -> None:
    """Lift per campaign and day with its interval, against random targeting."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(8, 4.5))
    ax = figure.add_subplot()
    for campaign, rows in results.groupby("campaign"):
        x = pd.to_datetime(rows["send_day"])
        lift, low, high = (rows[c].to_numpy(float) for c in ("lift", "lift_ci_low", "lift_ci_high"))
        ax.errorbar(
            x,
            lift,
            # arrays, not Series: matplotlib calls float() on one-row Series (pandas FutureWarning)
            yerr=[lift - low, high - lift],
            fmt="o-",
            capsize=3,
            label=f"{campaign} (measured, 95% CI)",
        )
        if "true_lift_of_audience" in rows:
            ax.plot(x, rows["true_lift_of_audience"], "k.", label=f"{campaign} (true)")
        if "random_targeting_lift" in rows:
            ax.axhline(
                rows["random_targeting_lift"].iloc[0],
                color="grey",
                linestyle="--",
                label="random targeting",
            )
    ax.axhline(0, color="black", linewidth=0.6)
    ax.set_ylabel("incremental conversion rate (treated - holdout)")
    ax.set_title("Measured campaign lift")
    ax.legend(fontsize=7)
    figure.autofmt_xdate()
    figure.savefig(path, dpi=110, bbox_inches="tight")
