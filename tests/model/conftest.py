"""A synthetic randomised campaign with a known uplift, shaped like the project's training set."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from orchestration.settings import Settings

FEATURES = ["x_effect", "x_base", "noise"]
# few, shallow trees: the tests compare models, they do not need the best one
FAST = {"n_estimators": 60, "learning_rate": 0.1, "min_child_samples": 50}


def true_uplift(x_effect: np.ndarray) -> np.ndarray:
    """The treatment effect of the generator: driven by ``x_effect`` only (increasing in it)."""
    return 0.04 + 0.14 * np.tanh(2 * x_effect)


def simulate(n: int, seed: int) -> pd.DataFrame:
    """One row per exposure: customer_id, is_treated, label and the features.

    ``x_effect`` drives the effect, ``x_base`` the baseline response ("sure things"), ``noise``
    nothing.
    """
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "customer_id": rng.permutation(np.arange(1, n + 1)).astype("int64") + 1000 * seed,
            "x_effect": rng.normal(size=n),
            "x_base": rng.normal(size=n),
            "noise": rng.normal(size=n),
        }
    )
    t = (rng.random(n) < 0.5).astype("int8")
    p_control = 0.05 + 0.5 / (1 + np.exp(-2.5 * frame["x_base"].to_numpy()))
    y = rng.random(n) < p_control + t * true_uplift(frame["x_effect"].to_numpy())
    frame["is_treated"] = t
    frame["label"] = y.astype("int8")
    frame["event_timestamp"] = pd.Timestamp("2026-01-01", tz="UTC")
    return frame


@pytest.fixture
def mlflow_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Settings on a temporary data dir with its own sqlite MLflow store."""
    from tests.conftest import point_at

    data_dir = tmp_path / "data"
    point_at(monkeypatch, data_dir)
    for var in ("CAMPAIGN_PROMOTE_OVERRIDE", "CAMPAIGN_LEARNER", "CAMPAIGN_ALERT_NOTIFIERS"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.delenv("CAMPAIGN_ALERT_LOG", raising=False)
    return Settings.from_env()
