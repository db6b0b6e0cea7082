"""Multi-arm experiments: one uplift per treatment arm against control, the best-arm policy,
and the champion gate's per-arm rule.

The generator below is written independently of the learners: two message variants whose true
effect depends on opposite halves of one feature, so the right arm per customer is known.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from orchestration.core.model.arms import arm_metric, arms_in_metrics, best_arm
from orchestration.core.model.gates import MULTI_ARM_RULE, champion_gate, usable_arms
from orchestration.core.model.training import train_and_evaluate
from tests.model.conftest import FAST

FEATURES = ["x_effect", "x_base", "noise"]
ARMS = ("control", "offer", "reminder")


def true_uplift(arm: str, x: np.ndarray) -> np.ndarray:
    """``offer`` works where x > 0, ``reminder`` where x < 0 (``inert``: never)."""
    if arm == "offer":
        return 0.30 / (1 + np.exp(-4 * x))
    if arm == "reminder":
        return 0.30 / (1 + np.exp(4 * x))
    return np.zeros_like(x)


def three_arm_world(n: int, seed: int, second: str = "reminder") -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    base = rng.normal(size=n)
    arm = rng.choice(np.array(["control", "offer", second], dtype=object), size=n)
    p = 0.10 + 0.3 / (1 + np.exp(-2 * base))
    for name in ("offer", second):
        p = p + np.where(arm == name, true_uplift(name, x), 0.0)
    return pd.DataFrame(
        {
            "customer_id": np.arange(1, n + 1, dtype=np.int64) + 10_000 * seed,
            "arm": arm,
            "is_treated": (arm != "control").astype("int8"),
            "label": (rng.random(n) < p).astype("int8"),
            "x_effect": x,
            "x_base": base,
            "noise": rng.normal(size=n),
        }
    )


@pytest.fixture(scope="module")
def trained():
    return train_and_evaluate(three_arm_world(24_000, seed=5), FEATURES, params=FAST, n_boot=100)


def test_each_arm_gets_its_own_uplift_against_control(trained):
    assert trained.arms == ("offer", "reminder")
    x = np.linspace(-2, 2, 9)
    probe = pd.DataFrame({"x_effect": x, "x_base": 0.0, "noise": 0.0})
    per_arm = trained.learner.predict_arm_uplift(probe)
    assert list(per_arm.columns) == ["offer", "reminder"]
    # the direction of each arm's effect is learned (oracle: the generator's true_uplift)
    assert per_arm["offer"].iloc[-1] > per_arm["offer"].iloc[0] + 0.05
    assert per_arm["reminder"].iloc[0] > per_arm["reminder"].iloc[-1] + 0.05
    picked, best = best_arm(per_arm)
    assert picked[0] == "reminder" and picked[-1] == "offer"
    np.testing.assert_allclose(trained.learner.predict_uplift(probe), best)


def test_metrics_are_reported_per_arm_and_for_the_policy(trained):
    m = trained.metrics
    assert arms_in_metrics(m) == ("offer", "reminder")
    for arm in ("offer", "reminder"):
        low, high = m[arm_metric(arm, "qini_ci_low")], m[arm_metric(arm, "qini_ci_high")]
        assert low > 0, f"{arm}: {low} .. {high}"
        assert arm_metric(arm, "uplift_at_30_ci_low") in m
    # the best-arm policy sends well (every customer gains from one arm or the other, so its
    # Qini, a ranking measure, is near 0: it is reported, not gated)
    assert m["uplift_at_30_ci_low"] > 0.05
    assert "qini_ci_low" in m
    shares = [m[arm_metric(a, "share_picked")] for a in ("offer", "reminder")]
    assert sum(shares) == pytest.approx(1.0)
    assert min(shares) > 0.3  # the world is symmetric: each arm is best for about half


def test_the_gate_offers_every_arm_that_beats_random(trained):
    gate = champion_gate(trained.metrics, floor=0.0)
    assert gate.passed, gate.description
    assert gate.evidence["rule"] == MULTI_ARM_RULE
    assert gate.evidence["arms"] == "offer, reminder"
    assert gate.evidence["arms_offered"] == "offer, reminder"
    assert usable_arms(trained.metrics, 0.0) == ("offer", "reminder")


def _without_signal(frame: pd.DataFrame, seed: int) -> pd.DataFrame:
    """The same exposures with every feature row handed to another customer."""
    rng = np.random.default_rng(seed)
    out = frame.copy()
    out[FEATURES] = frame[FEATURES].to_numpy()[rng.permutation(len(frame))]
    return out


def test_a_weak_arm_is_not_offered_and_is_named():
    # the second arm has no effect at all: its ranking is noise
    result = train_and_evaluate(
        three_arm_world(24_000, seed=6, second="inert"), FEATURES, params=FAST, n_boot=100
    )
    low = result.metrics[arm_metric("inert", "qini_ci_low")]
    floor = max(0.0, low)  # a noise arm clearing 0 by chance: a floor at its bound drops it
    gate = champion_gate(result.metrics, floor=floor)
    assert gate.passed, gate.description  # the offer still ranks
    assert gate.evidence["arms_not_offered"] == "inert"
    assert "not offered" in gate.description and "inert" in gate.description
    assert usable_arms(result.metrics, floor) == ("offer",)


def test_a_model_whose_arms_all_rank_by_noise_is_blocked():
    frame = _without_signal(three_arm_world(24_000, seed=8), seed=1)
    result = train_and_evaluate(frame, FEATURES, params=FAST, n_boot=100)
    lows = [result.metrics[arm_metric(a, "qini_ci_low")] for a in ("offer", "reminder")]
    floor = max(0.0, *lows)  # both arms at or below the floor
    gate = champion_gate(result.metrics, floor=floor)
    assert not gate.passed
    assert gate.evidence["arms_offered"] == "none"
    assert "no arm's ranking beats random" in gate.description
    assert usable_arms(result.metrics, floor) == ()


def test_a_binary_training_set_stays_binary():
    frame = three_arm_world(6_000, seed=7)
    frame = frame[frame["arm"] != "reminder"].replace({"arm": {"offer": "treatment"}})
    result = train_and_evaluate(frame, FEATURES, params=FAST, n_boot=0)
    assert result.arms == ()
    assert result.learner_name == "two_model"
    assert not arms_in_metrics(result.metrics)
