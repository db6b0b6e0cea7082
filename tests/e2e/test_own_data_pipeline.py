"""A team's own data, end to end: the worked example of docs/bring-your-own-data.md in CI.

The example RCT (examples/rct/rct.csv: 1,500 customers, control/treatment, four attributes) is
mapped by examples/rct/map_rct.py into raw Parquet files; one customer's plan is then upgraded
the day after the campaign (a hand-made attribute row that must not reach the training row).
The whole pipeline runs on ``CAMPAIGN_DATASET=files`` with the example's attribute declaration
and sends through the gates. About a minute and a half on a quiet machine.
"""

from __future__ import annotations

import importlib.util
import sqlite3
import sys

import pandas as pd
import pytest
from dagster import AssetKey, DagsterInstance

from orchestration.settings import PROJECT_DIR, Settings
from tests.conftest import point_at

pytestmark = pytest.mark.e2e

EXAMPLE = PROJECT_DIR / "examples" / "rct"
UPGRADED = 2  # a basic-plan customer of the example (row 2 of rct.csv), upgraded after the send
PLAN_COLUMNS = ("attr_plan__basic", "attr_plan__plus", "attr_plan__premium")


def _map_rct():
    spec = importlib.util.spec_from_file_location("map_rct", EXAMPLE / "map_rct.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["map_rct"] = module
    spec.loader.exec_module(module)
    return module


def _upgrade_after_the_send(raw_dir, customer_id: int) -> pd.Timestamp:
    """Add a 'premium' row for ``customer_id`` valid from the day after the campaign."""
    path = raw_dir / "customer_attributes.parquet"
    attributes = pd.read_parquet(path)
    exposed_at = pd.read_parquet(raw_dir / "campaign_exposures.parquet")["exposed_at"].max()
    row = attributes[attributes["customer_id"] == customer_id].copy()
    assert (row["plan"] == "basic").all()
    row["plan"], row["valid_from"] = "premium", exposed_at + pd.Timedelta(days=1)
    pd.concat([attributes, row]).sort_values(["customer_id", "valid_from"]).to_parquet(
        path, index=False
    )
    return exposed_at


@pytest.fixture(scope="module")
def own_data_run(tmp_path_factory):
    from orchestration.definitions import defs

    data_dir = tmp_path_factory.mktemp("own_data") / "data"
    map_rct = _map_rct()
    tables, clock = map_rct.map_rct(pd.read_csv(EXAMPLE / "rct.csv"))
    map_rct.write_raw(tables, data_dir / "raw")
    exposed_at = _upgrade_after_the_send(data_dir / "raw", UPGRADED)
    with pytest.MonkeyPatch.context() as mp:
        point_at(mp, data_dir)
        mp.setenv("CAMPAIGN_DATASET", "files")
        mp.setenv("CAMPAIGN_ATTRIBUTES_FILE", str(EXAMPLE / "attributes.yaml"))
        mp.setenv("CAMPAIGN_WORLD_NOW", clock.isoformat())
        mp.delenv("CAMPAIGN_TARGET", raising=False)
        home = data_dir.parent / "dagster_home"
        home.mkdir(parents=True, exist_ok=True)
        instance = DagsterInstance.local_temp(str(home))
        result = defs.resolve_job_def("campaign_pipeline").execute_in_process(
            instance=instance, raise_on_error=False
        )
        yield {"settings": Settings.from_env(), "result": result, "exposed_at": exposed_at}


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
