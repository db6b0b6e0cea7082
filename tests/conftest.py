"""Shared test set-up: every test that touches data gets its own data directory."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Tests never read the developer's data/ or MLflow store by accident.
os.environ.setdefault("CAMPAIGN_DATA_DIR", "/nonexistent-set-by-fixture")
# A fixed key for the recipient refs, so no test warns about the public development key
# (tests of the fallback itself delete it with monkeypatch).
os.environ.setdefault("CAMPAIGN_PSEUDONYM_KEY", "test-only-pseudonym-key")


def point_at(monkeypatch: pytest.MonkeyPatch, data_dir: Path) -> None:
    """Point the whole system (settings, dbt, Feast, MLflow) at ``data_dir``."""
    data_dir.mkdir(parents=True, exist_ok=True)
    monkeypatch.setenv("CAMPAIGN_DATA_DIR", str(data_dir))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{data_dir / 'mlflow' / 'mlflow.db'}")
    monkeypatch.delenv("CAMPAIGN_SENDS_DISABLED", raising=False)


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "data"
    point_at(monkeypatch, path)
    return path
