"""A team's own data, end to end: the worked example of docs/bring-your-own-data.md in CI.

The example RCT (examples/rct/rct.csv: 3,600 customers, three arms ``control`` / ``offer`` /
``reminder``, four attributes), mapped by examples/rct/map_rct.py and run on
``CAMPAIGN_DATASET=files`` (``example_run``: tests/e2e/example_rct.py), must learn one uplift per
arm and send each customer the better variant through the gates; one customer's plan, upgraded
the day after the campaign, must not reach its training row. About a minute and a half on a
quiet machine.
"""

from __future__ import annotations

import sqlite3

import numpy as np
import pandas as pd
import pytest
from dagster import AssetKey

from tests.e2e.example_rct import EXAMPLE, UPGRADED

pytestmark = pytest.mark.e2e

PLAN_COLUMNS = ("attr_plan__basic", "attr_plan__plus", "attr_plan__premium")
CAMPAIGN = "spring_offer_or_reminder"


@pytest.fixture(scope="module")
def own_data_run(example_run):
    return example_run


def _metadata(result, key: str) -> dict:
    for event in result.get_asset_materialization_events():
        if event.asset_key == AssetKey.from_user_string(key):
            return {k: getattr(v, "value", v) for k, v in event.materialization.metadata.items()}
    raise AssertionError(f"{key} was not materialized")


def test_the_pipeline_sends_through_every_gate(own_data_run):
    result, s = own_data_run["result"], own_data_run["settings"]
    failed = [
        f"{e.asset_key.to_user_string()}:{e.check_name}"
        for e in result.get_asset_check_evaluations()
        if not e.passed
    ]
    assert result.success, failed
    assert _metadata(result, "raw/customers")["dataset"] == "files"
    release = _metadata(result, "campaign_release")
    assert release, "the run released its decisions through the door"
    delivered = _metadata(result, "campaign_sends")["delivered"]
    assert delivered > 0
    with sqlite3.connect(s.gateway_dir / "outbox.db") as con:
        assert con.execute("select count(*) from messages").fetchone()[0] == delivered


def _decisions(result) -> pd.DataFrame:
    return pd.read_parquet(_metadata(result, "campaign_decisions")["decisions_file"])


def test_one_uplift_per_arm_each_past_the_gate(own_data_run):
    result = own_data_run["result"]
    model = _metadata(result, "uplift_model")
    assert model["arms"] == "offer, reminder"
    for arm in ("offer", "reminder"):
        print(f"{arm}: qini {model[f'arm_{arm}_qini']:.4f} {model[f'arm_{arm}_qini_ci']}")
    gate = next(
        e for e in result.get_asset_check_evaluations() if e.check_name == "champion_beats_random"
    )
    assert gate.passed
    metadata = {k: getattr(v, "value", v) for k, v in gate.metadata.items()}
    assert metadata["arms_offered"] == "offer, reminder"


def test_each_customer_gets_the_variant_that_moves_them(own_data_run):
    """The example's truth (make_example_csv.py): the offer moves premium customers, the
    reminder loyalty members. Premium non-members must be offered the discount, basic-plan
    members reminded; every decision carries the runner-up's value."""
    s, result = own_data_run["settings"], own_data_run["result"]
    decisions = _decisions(result)
    mine = decisions[decisions["campaign"] == CAMPAIGN]
    sent = mine[mine["decision"].isin(["send", "deferred"])]
    assert set(sent["variant"]) == {"offer", "reminder"}
    assert sent["runner_up_value"].notna().all()
    attributes = pd.read_parquet(s.raw_dir / "customer_attributes.parquet")
    latest = attributes.sort_values("valid_from").groupby("customer_id").last().reset_index()
    chosen = sent.merge(latest[["customer_id", "plan", "loyalty_member"]], on="customer_id")
    premium_only = chosen[(chosen["plan"] == "premium") & ~chosen["loyalty_member"]]
    basic_members = chosen[(chosen["plan"] == "basic") & chosen["loyalty_member"]]
    offered = (premium_only["variant"] == "offer").mean()
    reminded = (basic_members["variant"] == "reminder").mean()
    print(
        f"offer to premium non-members {offered:.1%} of {len(premium_only)}; "
        f"reminder to basic members {reminded:.1%} of {len(basic_members)}"
    )
    assert len(premium_only) >= 20 and len(basic_members) >= 20
    assert offered > 0.8 and reminded > 0.8
    with sqlite3.connect(s.gateway_dir / "ledger.db") as con:
        templates = dict(
            con.execute(
                "select template, count(*) from deliveries where campaign = ? group by 1",
                (CAMPAIGN,),
            ).fetchall()
        )
    assert set(templates) == {"spring_discount_offer", "spring_reminder"}
    assert np.isclose(sum(templates.values()), _metadata(result, "campaign_sends")["delivered"])


def test_the_attributes_reached_the_training_set_and_the_model(own_data_run):
    import mlflow

    s = own_data_run["settings"]
    frame = pd.read_parquet(s.pipeline_dir / "training_set.parquet")
    expected = {*PLAN_COLUMNS, "attr_loyalty_member", "attr_tenure_months"}
    assert expected <= set(frame.columns)
    assert not any(c.startswith("attr_age_band") for c in frame.columns)  # sensitive: no feature
    mlflow.set_tracking_uri(s.mlflow_tracking_uri)
    model = mlflow.pyfunc.load_model(f"models:/{s.model_name}@champion")
    features = model.unwrap_python_model().feature_columns
    assert expected <= set(features)
    # the example's effect lives in the plan: the model must have learnt it from the attribute
    rows = frame.sample(300, random_state=0)[features].astype("float64")
    as_premium = rows.assign(**{c: float(c.endswith("premium")) for c in PLAN_COLUMNS})
    as_basic = rows.assign(**{c: float(c.endswith("basic")) for c in PLAN_COLUMNS})
    assert model.predict(as_premium).mean() > model.predict(as_basic).mean() + 0.05


def test_an_attribute_dated_after_the_exposure_does_not_reach_its_training_row(own_data_run):
    s = own_data_run["settings"]
    frame = pd.read_parquet(s.pipeline_dir / "training_set.parquet")
    row = frame[frame["customer_id"] == UPGRADED].iloc[0]
    assert (row["attr_plan__basic"], row["attr_plan__premium"]) == (1, 0)
    # ... while today's scoring features see the upgrade
    scoring = pd.read_parquet(s.pipeline_dir / "scoring_features.parquet")
    today = scoring[scoring["customer_id"] == UPGRADED].iloc[0]
    assert (today["attr_plan__basic"], today["attr_plan__premium"]) == (0, 1)


def test_the_sensitive_attribute_is_audited(own_data_run):
    s, result = own_data_run["settings"], own_data_run["result"]
    fairness = [
        e
        for e in result.get_asset_check_evaluations()
        if e.check_name == "audience_selection_rates_fair"
    ]
    assert fairness
    metadata = {k: getattr(v, "value", v) for k, v in fairness[0].metadata.items()}
    assert "ratio_age_band" in metadata
    checks = {e.check_name for e in result.get_asset_check_evaluations()}
    assert {"attribute_plan_has_values", "attribute_age_band_has_values"} <= checks
    assert s.attributes_file == (EXAMPLE / "attributes.yaml").resolve()
