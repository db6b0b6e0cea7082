"""The spark profile end to end on ``local[2]``: dbt-spark (session method) builds the
warehouse, the pipeline reads it through the Spark reader, Feast's Spark offline store does the
point-in-time retrieval for training and scoring, mlflow's spark_udf scores, and the policy
step reads Spark's output. Then a policy-violation drill: the release door still stops the
sends on that footing.

A 3k world; several minutes on 2 cores (the dbt build on Spark alone is minutes there):
marked ``spark`` and ``slow``, run by ``make test-spark``. The good run's wall time is printed.
"""

from __future__ import annotations

import sqlite3
import time
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from orchestration.settings import Settings
from tests.conftest import point_at

pytest.importorskip("pyspark", reason="the spark extra is not installed (make setup-spark)")

pytestmark = [pytest.mark.spark, pytest.mark.slow, pytest.mark.e2e]

CUSTOMERS = 3_000
SEED = 7
WORLD_START = (datetime.now(UTC) - timedelta(days=1)).replace(
    hour=10, minute=0, second=0, microsecond=0
)


def _run(instance):
    from orchestration.definitions import defs

    job = defs.resolve_job_def("campaign_pipeline")
    return job.execute_in_process(
        instance=instance,
        run_config={"ops": {"raw_data": {"config": {"customers": CUSTOMERS, "seed": SEED}}}},
        raise_on_error=False,
    )


@pytest.fixture(scope="module")
def spark_run(tmp_path_factory):
    from orchestration.instance import dagster_instance

    with pytest.MonkeyPatch.context() as mp:
        data_dir = tmp_path_factory.mktemp("spark") / "data"
        point_at(mp, data_dir)
        mp.setenv("CAMPAIGN_PROFILE", "spark")
        mp.setenv("CAMPAIGN_WORLD_NOW", WORLD_START.isoformat())
        # a 3k world's holdout is too small to show the ranking beats random; this test is
        # about the footing, the model gate has its own tests
        mp.setenv("CAMPAIGN_MIN_CHAMPION_QINI", "-1")
        settings = Settings.from_env()
        instance = dagster_instance(settings, data_dir.parent / "dagster_home")
        started = time.perf_counter()
        first = _run(instance)
        seconds = time.perf_counter() - started
        print(f"\nspark profile, {CUSTOMERS} customers: the pipeline took {seconds:.1f} s")
        yield {"settings": settings, "instance": instance, "first": first, "mp": mp}
        instance.dispose()


def _ledger_rows(settings: Settings) -> int:
    path = settings.gateway_dir / "ledger.db"
    if not path.exists():
        return 0
    with sqlite3.connect(path) as con:
        return con.execute("select count(*) from deliveries").fetchone()[0]


def _materialized(result) -> set[str]:
    return {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}


def test_good_run_builds_on_spark_and_sends(spark_run):
    from orchestration.core.features.feast_store import open_feature_store
    from orchestration.core.world.warehouse import SparkWarehouse, open_warehouse

    s, first = spark_run["settings"], spark_run["first"]
    assert first.success
    assert {"dim_customers", "customer_scores", "campaign_release", "campaign_sends"} <= (
        _materialized(first)
    )
    warehouse = open_warehouse(s)
    assert isinstance(warehouse, SparkWarehouse)
    # dbt-spark's tables, under the Spark warehouse directory; no DuckDB file, no exports
    assert (s.spark_warehouse_dir / "analytics.db" / "dim_customers").is_dir()
    assert not (s.data_dir / "warehouse" / "warehouse.duckdb").exists()
    customers = warehouse.read_table("dim_customers")
    assert len(customers) == CUSTOMERS
    assert str(customers["signed_up_at"].dtype) == "datetime64[us, UTC]"
    assert "feat_customer_rfm" in warehouse.marts()
    # the contact details never enter the Spark warehouse
    assert not list(s.spark_dir.rglob("*contact_points*"))
    # Feast ran on its Spark offline store
    assert open_feature_store(s).config.offline_store.type == "spark"
    # the scores the policy step read are Spark's output (a directory Spark wrote)
    scores = s.pipeline_dir / "customer_scores.parquet"
    assert scores.is_dir() and (scores / "_SUCCESS").exists()
    assert _ledger_rows(s) > 0


def test_scoring_features_are_point_in_time_correct(spark_run):
    """Feast's Spark store returned, for every customer, the published row with the latest
    snapshot at or before the decision time (the oracle: pandas over the published file)."""
    s = spark_run["settings"]
    assert spark_run["first"].success
    retrieved = pd.read_parquet(s.pipeline_dir / "scoring_features.parquet")
    published = pd.read_parquet(s.features_dir / "current" / "feat_customer_rfm.parquet")
    decided_at = pd.Timestamp(s.now())
    known = published[published["event_timestamp"] <= decided_at]
    expected = (
        known.sort_values("event_timestamp").groupby("customer_id").tail(1).set_index("customer_id")
    )
    got = retrieved.set_index("customer_id").loc[expected.index]
    for column in ("days_since_last_order", "count_orders_365d", "tenure_days"):
        np.testing.assert_allclose(
            got[column].to_numpy(dtype=float), expected[column].to_numpy(dtype=float)
        )


def test_policy_violation_sends_nothing_on_spark(spark_run):
    """An opted-out customer forced into the audience: the compliance gate stops the release."""
    import orchestration.core.decisioning.decide as decisioning
    from orchestration.core.decisioning.engine import DECISIONS, REASONS

    s = spark_run["settings"]
    original = decisioning.evaluate

    def buggy_evaluate(inputs, campaigns, policy, sent_today=None):
        result = original(inputs, campaigns, policy, sent_today)
        for decisions in result.campaigns:
            channel = decisions.campaign.channel
            opted_out = ~inputs.candidates[f"is_{channel}_opted_in"].to_numpy(dtype=bool)
            victim = int(np.flatnonzero(opted_out)[0])
            decisions.decision[victim] = DECISIONS.index("send")
            decisions.reason[victim] = REASONS.index("selected_top_uplift")
        return result

    before = _ledger_rows(s)
    spark_run["mp"].setattr(decisioning, "evaluate", buggy_evaluate)
    try:
        result = _run(spark_run["instance"])
    finally:
        spark_run["mp"].setattr(decisioning, "evaluate", original)
    assert not result.success
    checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert not checks["audience_compliant"].passed
    assert {"campaign_release", "campaign_sends"}.isdisjoint(_materialized(result))
    assert _ledger_rows(s) == before
