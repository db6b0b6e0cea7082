"""The champion gate decides on evidence: the lower bound of the Qini's 95 % interval.

The decision rule (``core.model.gates.champion_gate``) is tested where it matters, on models
trained and evaluated by the pipeline's own ``train_and_evaluate``: a world whose features carry
no signal must be blocked, the default synthetic world must pass. Then the asset check that calls
it (``champion_beats_random``, on ``model_promotion``) is run through Dagster on its failing paths.
"""

from __future__ import annotations

import math

import dagster as dg
import numpy as np
import pandas as pd
import pytest

from orchestration.core.model.gates import RULE, champion_gate
from orchestration.core.model.training import train_and_evaluate
from tests.model.conftest import FAST, FEATURES, simulate

# 12 000 exposures (3 600 held out): the smallest round size at which the default world's Qini
# interval clears 0 (at 3 000-5 000 rows its lower bound is still below 0: an honest interval on
# a small holdout says "not shown"). The pipeline's 200 bootstrap resamples.
ROWS = 12_000
N_BOOT = 200
SEEDS = range(20)


@pytest.fixture(scope="module")
def world() -> pd.DataFrame:
    return simulate(ROWS, seed=3)


def _permuted(frame: pd.DataFrame, seed: int) -> pd.DataFrame:
    """The same exposures with every feature row handed to another customer: treatment and
    outcome stay, the link between features and outcome is gone."""
    rng = np.random.default_rng(seed)
    permuted = frame.copy()
    permuted[FEATURES] = frame[FEATURES].to_numpy()[rng.permutation(len(frame))]
    return permuted


def _gate(frame: pd.DataFrame):
    result = train_and_evaluate(frame, FEATURES, params=FAST, n_boot=N_BOOT)
    return champion_gate(result.metrics, floor=0.0)


def test_the_default_world_passes_on_its_interval(world):
    gate = _gate(world)
    ev = gate.evidence
    print(f"\ndefault world: qini {ev['qini']:.4f} 95% CI {ev['qini_ci']} on {ev['holdout_rows']}")
    assert gate.passed, gate.description
    assert ev["qini_ci_low"] > 0
    assert ev["qini_ci_low"] <= ev["qini"] <= ev["qini_ci_high"]
    assert ev["bootstrap_resamples"] == N_BOOT
    assert ev["holdout_rows"] == pytest.approx(0.3 * ROWS, rel=0.05)


def test_a_world_without_signal_is_blocked_in_19_of_20_seeds(world):
    gates = [_gate(_permuted(world, seed)) for seed in SEEDS]
    blocked = sum(not g.passed for g in gates)
    lows = [g.evidence["qini_ci_low"] for g in gates]
    qinis = [g.evidence["qini"] for g in gates]
    print(
        f"\nno signal: blocked {blocked} of {len(gates)}; qini {min(qinis):.4f}..{max(qinis):.4f}, "
        f"ci_low {min(lows):.4f}..{max(lows):.4f}"
    )
    assert blocked >= 19, [g.description for g in gates if g.passed]
    # the point estimate alone would have let many of them through
    assert sum(q > 0 for q in qinis) > len(gates) - blocked


# --------------------------------------------------------------------------------------------
# the rule itself


def _metrics(**overrides: float) -> dict[str, float]:
    return {
        "qini": 0.0438,
        "qini_ci_low": -0.0087,
        "qini_ci_high": 0.0937,
        "holdout_rows": 3000.0,
        "bootstrap_resamples": 200.0,
    } | overrides


def test_the_real_campaign_without_signal_is_blocked():
    gate = champion_gate(_metrics(), floor=0.0, version="4")
    assert not gate.passed
    assert "champion v4" in gate.description and "[-0.0087, 0.0937]" in gate.description
    assert gate.evidence == {
        "rule": RULE,
        "floor": 0.0,
        "qini": 0.0438,
        "qini_ci_low": -0.0087,
        "qini_ci_high": 0.0937,
        "qini_ci": "[-0.0087, 0.0937]",
        "ci_level": 0.95,
        "holdout_rows": 3000,
        "bootstrap_resamples": 200,
    }


@pytest.mark.parametrize(
    ("low", "floor", "passed"),
    [(0.0, 0.0, False), (0.001, 0.0, True), (0.02, 0.03, False), (0.04, 0.03, True)],
)
def test_the_lower_bound_must_be_strictly_above_the_floor(low, floor, passed):
    assert champion_gate(_metrics(qini_ci_low=low), floor=floor).passed is passed


@pytest.mark.parametrize("missing", [("qini_ci_low",), ("qini_ci_high",), ("qini_ci_low", "qini")])
def test_no_stored_interval_fails(missing):
    metrics = {k: v for k, v in _metrics(qini=0.2).items() if k not in missing}
    gate = champion_gate(metrics, floor=0.0)
    assert not gate.passed
    assert "no stored 95% interval" in gate.description


def test_a_nan_interval_fails_and_unknown_samples_are_said():
    gate = champion_gate({"qini": 0.1, "qini_ci_low": math.nan, "qini_ci_high": 0.2})
    assert not gate.passed
    assert gate.evidence["holdout_rows"] == "unknown"
    assert gate.evidence["bootstrap_resamples"] == "unknown"


def test_training_stores_the_interval_and_its_sample():
    result = train_and_evaluate(simulate(2_000, seed=5), FEATURES, params=FAST, n_boot=20)
    m = result.metrics
    assert {"qini", "qini_ci_low", "qini_ci_high", "holdout_rows"} <= set(m)
    assert m["bootstrap_resamples"] == 20.0


# --------------------------------------------------------------------------------------------
# the asset check through Dagster: its failing paths


def _champion(metrics: dict[str, float] | None):
    from orchestration.core.model.registry import CHAMPION, RegisteredModel

    def describe(settings, alias: str = CHAMPION):
        if alias != CHAMPION or metrics is None:
            return None
        return RegisteredModel("uplift_model", "3", "run-3", (CHAMPION,), dict(metrics))

    return describe


def _run_champion_gate(monkeypatch, metrics):
    from orchestration.defs.model import champion_beats_random, model_promotion
    from orchestration.resources import CampaignSettings

    monkeypatch.setattr(
        "orchestration.core.model.registry.describe_alias", _champion(metrics), raising=True
    )
    result = dg.materialize(
        [model_promotion, champion_beats_random],
        resources={"settings": CampaignSettings()},
        raise_on_error=False,
    )
    (evaluation,) = result.get_asset_check_evaluations()
    assert evaluation.check_name == "champion_beats_random"
    assert evaluation.asset_key == dg.AssetKey("model_promotion")
    return result, evaluation, {k: v.value for k, v in evaluation.metadata.items()}


def test_the_check_fails_without_a_champion(data_dir, monkeypatch):
    result, evaluation, metadata = _run_champion_gate(monkeypatch, None)
    assert not result.success  # blocking: the run fails
    assert evaluation.passed is False
    assert evaluation.severity == dg.AssetCheckSeverity.ERROR
    assert "carries the alias 'champion'" in evaluation.description
    assert metadata["rule"] == RULE and metadata["floor"] == 0.0


@pytest.mark.parametrize(
    "metrics",
    [
        pytest.param(_metrics(qini_ci_low=0.0), id="interval-touching-0"),
        pytest.param(_metrics(), id="interval-across-0"),
        pytest.param({"qini": 0.0438, "holdout_rows": 3000.0}, id="no-interval"),
    ],
)
def test_the_check_fails_on_a_champion_whose_interval_reaches_0(data_dir, monkeypatch, metrics):
    result, evaluation, metadata = _run_champion_gate(monkeypatch, metrics)
    assert not result.success
    assert evaluation.passed is False
    assert evaluation.severity == dg.AssetCheckSeverity.ERROR
    assert metadata["rule"] == "qini_ci_low > floor"
    assert metadata["floor"] == 0.0
    assert metadata["qini"] == pytest.approx(0.0438)
    assert metadata["holdout_rows"] == 3000
    assert metadata["champion_version"] == "3"
    assert metadata["mlflow_run_id"] == "run-3"
    if "qini_ci_low" in metrics:
        assert metadata["qini_ci_low"] == metrics["qini_ci_low"]
        assert metadata["qini_ci_high"] == pytest.approx(0.0937)
        assert metadata["bootstrap_resamples"] == 200
    else:
        assert "no stored 95% interval" in evaluation.description


def test_the_check_passes_on_a_champion_whose_interval_clears_the_floor(data_dir, monkeypatch):
    result, evaluation, metadata = _run_champion_gate(
        monkeypatch, _metrics(qini_ci_low=0.012, qini=0.05)
    )
    assert result.success
    assert evaluation.passed is True
    assert metadata["qini_ci"] == "[0.0120, 0.0937]"
