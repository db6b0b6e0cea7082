"""The closed loop: logged exposures play into the world with their true effect; lift measured."""

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from orchestration.core.observability.lift import measure_lift, randomized_ate
from orchestration.core.world.feedback import apply_feedback, load_feedback, record_feedback
from orchestration.core.world.synthetic import WorldSpec, generate_world

AS_OF = datetime(2026, 11, 23, 10, tzinfo=UTC)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("world")
    generate_world(WorldSpec(customers=20_000, seed=3, as_of=AS_OF), root / "raw", root / "gt")
    return root


def _log(root, sent_at, n_treated=6000, n_control=6000):
    truth = pd.read_parquet(root / "gt" / "customer_uplift.parquet")
    ids = truth["customer_id"].to_numpy()[: n_treated + n_control]
    exposures = pd.DataFrame(
        {
            "campaign_id": "loop_test",
            "customer_id": ids,
            "channel": "email",
            "arm": ["treatment"] * n_treated + ["control"] * n_control,
            "exposed_at": pd.Timestamp(sent_at),
            "source_run": "r1",
        }
    )
    path = root / "feedback.parquet"
    assert record_feedback(path, exposures) == len(exposures)
    assert record_feedback(path, exposures) == 0  # logged once per campaign, customer and day
    return load_feedback(path), truth


def test_outcomes_follow_the_true_effect_and_land_with_a_delay(world, tmp_path):
    feedback, truth = _log(world, AS_OF - timedelta(days=20))
    root = tmp_path / "later"
    generate_world(WorldSpec(customers=20_000, seed=3, as_of=AS_OF), root / "raw", root / "gt")
    applied = apply_feedback(root / "raw", truth, feedback, AS_OF, seed=3)
    assert applied["exposures"] == 12_000 and applied["pending_outcomes"] == 0
    exposures = pd.read_parquet(root / "raw" / "campaign_exposures.parquet")
    ours = exposures[exposures["campaign_id"] == "loop_test"]
    orders = pd.read_parquet(root / "raw" / "orders.parquet")
    assert orders["order_id"].is_unique and exposures["exposure_id"].is_unique
    start = pd.Timestamp(AS_OF - timedelta(days=20))
    window = orders[
        (orders["ordered_at"] >= start) & (orders["ordered_at"] < start + pd.Timedelta(days=14))
    ]
    converted = ours["customer_id"].isin(window["customer_id"])
    observed = (
        converted[ours["arm"] == "treatment"].mean() - converted[ours["arm"] == "control"].mean()
    )
    expected = (
        truth.set_index("customer_id")
        .loc[ours.loc[ours["arm"] == "treatment", "customer_id"], "true_uplift"]
        .mean()
    )
    assert observed == pytest.approx(expected, abs=0.03)

    # the same exposures one day old: most outcomes have not landed yet
    fresh, _ = _log(world, AS_OF - timedelta(days=1))
    root2 = tmp_path / "fresh"
    generate_world(WorldSpec(customers=20_000, seed=3, as_of=AS_OF), root2 / "raw", root2 / "gt")
    pending = apply_feedback(
        root2 / "raw", truth, fresh[fresh["exposed_at"] > start], AS_OF, seed=3
    )
    assert pending["pending_outcomes"] > pending["conversions"]


def test_measured_lift_has_an_interval_and_completeness():
    rng = np.random.default_rng(0)
    n = 4000
    arm = np.where(np.arange(n) < 3000, "treatment", "control")
    converted = np.where(arm == "treatment", rng.random(n) < 0.30, rng.random(n) < 0.20)
    exposures = pd.DataFrame(
        {
            "campaign_id": "c",
            "customer_id": np.arange(n),
            "arm": arm,
            "exposed_at": pd.Timestamp("2026-11-01", tz="UTC"),
            "has_converted": converted,
            "revenue_in_window": converted * 50.0,
            "is_outcome_complete": True,
        }
    )
    result = measure_lift(exposures, datetime(2026, 11, 20, tzinfo=UTC), random_lift=0.03).iloc[0]
    assert result["is_complete"]
    assert result["lift_ci_low"] < 0.10 < result["lift_ci_high"]
    assert result["lift_ci_high"] - result["lift_ci_low"] < 0.08
    assert result["targeting_gain_over_random"] == pytest.approx(result["lift"] - 0.03)
    early = measure_lift(exposures, datetime(2026, 11, 5, tzinfo=UTC)).iloc[0]
    assert not early["is_complete"]
    assert randomized_ate(exposures) == pytest.approx(result["lift"])
