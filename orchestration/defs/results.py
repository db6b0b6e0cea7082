"""The closed loop: our sends become part of the (synthetic) world, and their measured lift."""

import pandas as pd
from dagster import AssetExecutionContext, AssetKey, MaterializeResult, MetadataValue, asset

from orchestration.core.world.warehouse import open_warehouse
from orchestration.defs.run_artifacts import DecisionBatch
from orchestration.resources import CampaignSettings, MessagingGateway

GROUP = "evaluation"
OWNER = "team:data-science"


@asset(
    deps=[AssetKey("campaign_sends")],
    group_name=GROUP,
    owners=[OWNER],
    kinds={"parquet"},
    description=(
        "This run's treated customers (delivered sends) and measurement holdout, logged for the "
        "synthetic world: the next generation plays them in with their true effect, and their "
        "outcomes land as raw orders and unsubscribes over the following 14 days."
    ),
)
def world_feedback(
    context: AssetExecutionContext,
    campaign_decisions: DecisionBatch,
    settings: CampaignSettings,
    gateway: MessagingGateway,
) -> MaterializeResult:
    from orchestration.core.world.feedback import feedback_path, record_feedback

    s = settings.get()
    if s.dataset != "synthetic":
        return MaterializeResult(
            metadata={"logged": 0, "note": f"dataset {s.dataset}: outcomes come from real data"}
        )
    decisions = pd.read_parquet(campaign_decisions.path)
    live = decisions[~decisions["dry_run"]] if len(decisions) else decisions
    ledger = gateway.ledger(s).frame()
    delivered = ledger[
        (ledger["status"] == "delivered") & (ledger["send_date"] == campaign_decisions.send_date)
    ]
    sent = live[live["decision"].isin(["send", "deferred"])].merge(
        delivered[["campaign", "customer_id"]], on=["campaign", "customer_id"]
    )
    held = live[live["decision"] == "holdout"]
    # a sent variant is logged as its arm (what the customer got), a one-message send as treatment
    arm = sent["variant"].fillna("treatment") if "variant" in sent else "treatment"
    rows = pd.concat([sent.assign(arm=arm), held.assign(arm="control")], ignore_index=True)
    exposed_at = pd.to_datetime(rows["decided_at"], utc=True)
    if "deferred_until" in rows:
        exposed_at = pd.to_datetime(rows["deferred_until"], utc=True).fillna(exposed_at)
    exposures = pd.DataFrame(
        {
            "campaign_id": rows["campaign"],
            "customer_id": rows["customer_id"].astype("int64"),
            "channel": rows["channel"],
            "arm": rows["arm"],
            "exposed_at": exposed_at,
            "source_run": context.run.run_id,
        }
    )
    path = feedback_path(s.data_dir)
    added = record_feedback(path, exposures)
    return MaterializeResult(
        metadata={
            "treated_logged": int((exposures["arm"] != "control").sum()),
            "holdout_logged": int((exposures["arm"] == "control").sum()),
            "new_rows": added,
            "feedback_log": MetadataValue.path(str(path)),
        }
    )


@asset(
    deps=[AssetKey("fct_campaign_exposures"), AssetKey("campaign_definitions")],
    group_name=GROUP,
    owners=[OWNER],
    kinds={"parquet"},
    description=(
        "Incremental lift of each of our campaigns per send day (treated vs holdout) with a 95 % "
        "interval, against random targeting at the same volume (the past randomized campaigns' "
        "average effect) and, on the synthetic world, the true effect of the audience chosen."
    ),
)
def campaign_results(
    context: AssetExecutionContext, settings: CampaignSettings
) -> MaterializeResult:
    from orchestration.core.decisioning.campaigns import load_campaigns
    from orchestration.core.observability.lift import measure_lift, plot_lift, randomized_ate

    s = settings.get()
    exposures = open_warehouse(s).read_table("fct_campaign_exposures")
    ours = set(load_campaigns(s.campaigns_dir).campaigns)
    historical = exposures[~exposures["campaign_id"].isin(ours)]
    truth_path = s.ground_truth_dir / "customer_uplift.parquet"
    truth = (
        pd.read_parquet(truth_path) if s.dataset == "synthetic" and truth_path.exists() else None
    )
    results = measure_lift(
        exposures[exposures["campaign_id"].isin(ours)],
        as_of=s.now(),
        ground_truth=truth,
        random_lift=randomized_ate(historical),
    )
    out = s.reports_dir / "campaign_results"
    out.mkdir(parents=True, exist_ok=True)
    results.to_parquet(out / "campaign_results.parquet", index=False)
    metadata: dict = {
        "cohorts": len(results),
        "complete_cohorts": int(results["is_complete"].sum()) if len(results) else 0,
        "results_table": MetadataValue.path(str(out / "campaign_results.parquet")),
    }
    if len(results):
        plot_lift(results, out / "campaign_lift.png")
        metadata["plot"] = MetadataValue.path(str(out / "campaign_lift.png"))
        done = results[results["is_complete"]]
        latest = (done if len(done) else results).iloc[-1]
        metadata.update(
            {
                "latest_cohort": f"{latest['campaign']} {latest['send_day']}",
                "latest_lift": float(latest["lift"]),
                "latest_lift_ci": f"[{latest['lift_ci_low']:.4f}, {latest['lift_ci_high']:.4f}]",
                "latest_incremental_conversions": float(latest["incremental_conversions"]),
                **(
                    {"latest_true_lift": float(latest["true_lift_of_audience"])}
                    if "true_lift_of_audience" in latest
                    else {}
                ),
                **(
                    {"random_targeting_lift": float(latest["random_targeting_lift"])}
                    if "random_targeting_lift" in latest
                    else {}
                ),
            }
        )
    return MaterializeResult(metadata=metadata)
