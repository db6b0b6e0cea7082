"""The failing paths of two gates that had none: feature availability and the dbt tests.

One small world (5,000 customers) is built once for the module with a good run that sends. Each
test then breaks one input, runs, and asserts that the gate named fails, that nothing is released
and that the ledger and the outbox hold exactly what they held before.

The 5,000-customer champion does not beat random with its Qini interval (its lower bound is just
below 0; the shared e2e world uses 20,000 customers for that), so this module lowers the model
floor (CAMPAIGN_MIN_CHAMPION_QINI=-1): these tests are about the other gates, and the good run
must send for "nothing new was released" to mean something.
"""

from __future__ import annotations

import shutil
import sqlite3
from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from dagster import AssetCheckKey, AssetCheckSeverity, AssetKey, DagsterInstance

from orchestration.settings import Settings
from tests.conftest import local_instance, point_at

pytestmark = pytest.mark.e2e

CUSTOMERS = 5_000
SEED = 11
WORLD_NOW = (datetime.now(UTC) - timedelta(days=2)).replace(
    hour=10, minute=0, second=0, microsecond=0
)


def _run(instance: DagsterInstance, asset_selection=None):
    from orchestration.definitions import defs

    return defs.resolve_job_def("campaign_pipeline").execute_in_process(
        instance=instance,
        run_config={"ops": {"raw_data": {"config": {"customers": CUSTOMERS, "seed": SEED}}}},
        asset_selection=asset_selection,
        raise_on_error=False,
    )


def _checks(result) -> dict[str, object]:
    return {
        f"{e.asset_key.to_user_string()}:{e.check_name}": e
        for e in result.get_asset_check_evaluations()
    }


def _materialized(result) -> set[str]:
    return {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}


def _ledger_rows(s: Settings) -> int:
    path = s.gateway_dir / "ledger.db"
    if not path.exists():
        return 0
    with sqlite3.connect(path) as con:
        return con.execute("select count(*) from deliveries").fetchone()[0]


def _outbox_messages(s: Settings) -> int:
    path = s.gateway_dir / "outbox.db"
    if not path.exists():
        return 0
    with sqlite3.connect(path) as con:
        return con.execute("select count(*) from messages").fetchone()[0]


@pytest.fixture(scope="module")
def gate_world(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("gate_failing_paths") / "data"
    with pytest.MonkeyPatch.context() as mp:
        point_at(mp, data_dir)
        mp.setenv("CAMPAIGN_WORLD_NOW", WORLD_NOW.isoformat())
        mp.setenv("CAMPAIGN_MIN_CHAMPION_QINI", "-1")
        home = data_dir.parent / "dagster_home"
        home.mkdir(parents=True, exist_ok=True)
        instance = local_instance(home)
        good = _run(instance)
        s = Settings.from_env()
        assert good.success, [k for k, e in _checks(good).items() if not e.passed]
        assert _ledger_rows(s) > 0 and _outbox_messages(s) > 0
        yield {"instance": instance, "settings": s, "mp": mp}


def _assert_nothing_new_released(result, s: Settings, ledger: int, outbox: int) -> None:
    materialized = _materialized(result)
    assert "campaign_release" not in materialized
    assert "campaign_sends" not in materialized
    assert _ledger_rows(s) == ledger  # 0 new ledger rows
    assert _outbox_messages(s) == outbox  # 0 new messages


def test_features_missing_for_customers_block_the_release(gate_world):
    """A staged version without today's features for 10% of the customers: the availability gate
    fails, the version is not published and nothing is released."""
    import orchestration.defs.features as feature_defs
    from orchestration.core.features.publishing import FEATURE_TABLES

    s, instance, mp = gate_world["settings"], gate_world["instance"], gate_world["mp"]
    ledger, outbox = _ledger_rows(s), _outbox_messages(s)
    published = (s.features_dir / "current").resolve().name
    original = feature_defs.stage_feature_version

    def staged_with_a_gap(*args, **kwargs):
        version = original(*args, **kwargs)
        path = version.table(FEATURE_TABLES[0])
        table = pq.read_table(path)
        newest = pa.compute.max(table["event_timestamp"])
        customers = table["customer_id"].to_numpy()
        today = pa.compute.equal(table["event_timestamp"], newest).to_numpy(zero_copy_only=False)
        dropped = today & (customers % 10 == 0)  # one customer in ten has no features today
        pq.write_table(table.filter(pa.array(~dropped)), path)
        return version

    mp.setattr(feature_defs, "stage_feature_version", staged_with_a_gap)
    try:
        result = _run(instance)
    finally:
        mp.setattr(feature_defs, "stage_feature_version", original)

    assert not result.success
    checks = _checks(result)
    check = checks["feature_snapshot:features_cover_candidates"]
    assert check.passed is False
    coverage, threshold = check.metadata["coverage"].value, check.metadata["threshold"].value
    assert coverage < threshold and 0.85 < coverage < 0.95
    assert check.metadata["customers"].value == CUSTOMERS
    # it is THE gate that stopped the run: every other check evaluated passed
    assert [k for k, e in checks.items() if not e.passed] == [
        "feature_snapshot:features_cover_candidates"
    ]
    assert "published_features" not in _materialized(result)
    assert (s.features_dir / "current").resolve().name == published
    _assert_nothing_new_released(result, s, ledger, outbox)


def test_a_failing_dbt_error_test_blocks_the_release(gate_world):
    """A duplicated customer in the raw table (landed after raw_data's own validation ran, as a
    manual re-run from the dbt step would see it): dbt's first `unique` test on the customer id
    (staging, severity error) fails, and the run stops before the marts, the features, the model
    and the release."""
    from orchestration.core.world.contract import CUSTOMERS as RAW_CUSTOMERS
    from orchestration.core.world.contract import raw_path
    from orchestration.definitions import defs

    s, instance = gate_world["settings"], gate_world["instance"]
    ledger, outbox = _ledger_rows(s), _outbox_messages(s)
    raw = raw_path(s.raw_dir, RAW_CUSTOMERS)
    backup = raw.with_name(raw.name + ".bak")
    shutil.copy2(raw, backup)
    table = pq.read_table(raw)
    pq.write_table(pa.concat_tables([table, table.slice(0, 1)]), raw)
    # from the dbt step onward: everything in campaign_pipeline but the raw data asset
    job = defs.resolve_job_def("campaign_pipeline")
    from_dbt = [
        k
        for k in job.asset_layer.asset_graph.executable_asset_keys
        if k.path[0] not in ("raw", "ground_truth")
    ]
    assert AssetKey("dim_customers") in from_dbt
    try:
        result = _run(instance, asset_selection=from_dbt)
    finally:
        shutil.move(backup, raw)

    assert not result.success
    checks = _checks(result)
    failing = "stg_raw__customers:unique_stg_raw__customers_customer_id"
    assert [k for k, e in checks.items() if not e.passed] == [failing]
    assert checks[failing].severity == AssetCheckSeverity.ERROR
    spec = job.asset_layer.asset_graph.get_check_spec(
        AssetCheckKey(AssetKey("stg_raw__customers"), "unique_stg_raw__customers_customer_id")
    )
    assert spec.blocking
    materialized = _materialized(result)
    assert "stg_raw__customers" in materialized  # built, then its test failed ...
    # ... and nothing downstream of it was built: the marts, the features, the model
    assert not {"dim_customers", "feature_snapshot", "uplift_model"} & materialized
    _assert_nothing_new_released(result, s, ledger, outbox)
