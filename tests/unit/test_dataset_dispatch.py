"""Which raw data the pipeline runs on (CAMPAIGN_DATASET), what its model learns
(CAMPAIGN_TARGET) and the Hillstrom run's clock and data directory."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from orchestration.cli import app
from orchestration.core.world.contract import ACTIVITY_TABLES
from orchestration.core.world.datasets import hillstrom
from orchestration.core.world.datasets.landing import (
    DatasetMixError,
    claim_data_dir,
    land_hillstrom,
    recorded_dataset,
)
from orchestration.core.world.freshness import measure_freshness
from orchestration.core.world.validation import validate_raw_dir
from orchestration.settings import DATASETS, TARGETS, Settings
from tests.unit.test_hillstrom import _fabricate


def test_unknown_dataset_names_the_variable_and_the_choices(monkeypatch, data_dir) -> None:
    monkeypatch.setenv("CAMPAIGN_DATASET", "criteo")
    with pytest.raises(ValueError) as error:
        Settings.from_env()
    message = str(error.value)
    assert "CAMPAIGN_DATASET" in message and "'criteo'" in message
    assert all(name in message for name in DATASETS)


@pytest.mark.parametrize(
    ("dataset", "target"),
    [("", "has_converted"), ("synthetic", "has_converted"), ("hillstrom", "has_visited")],
)
def test_target_follows_the_dataset_protocol(monkeypatch, data_dir, dataset, target) -> None:
    monkeypatch.setenv("CAMPAIGN_DATASET", dataset)
    monkeypatch.delenv("CAMPAIGN_TARGET", raising=False)
    assert Settings.from_env().target == target


def test_target_setting_overrides_and_is_checked(monkeypatch, data_dir) -> None:
    monkeypatch.setenv("CAMPAIGN_DATASET", "hillstrom")
    monkeypatch.setenv("CAMPAIGN_TARGET", "has_converted")
    assert Settings.from_env().target == "has_converted"
    monkeypatch.setenv("CAMPAIGN_TARGET", "revenue")
    with pytest.raises(ValueError, match="CAMPAIGN_TARGET"):
        Settings.from_env()
    assert set(TARGETS) == {"has_converted", "has_visited"}


def test_target_columns_exist_in_the_exposure_mart() -> None:
    sql = (
        Path(__file__).resolve().parents[2] / "dbt_project/models/marts/fct_campaign_exposures.sql"
    ).read_text()
    for target in TARGETS:
        assert f" as {target}," in sql


def test_world_clock_is_an_hour_after_the_outcome_window_closed() -> None:
    as_of = hillstrom.PIPELINE_AS_OF
    exposed = as_of - timedelta(days=hillstrom.EXPOSURE_DAYS_BEFORE_AS_OF)
    window_end = exposed + timedelta(days=hillstrom.OUTCOME_WINDOW_DAYS)
    assert hillstrom.end_of_data(as_of) == window_end
    assert hillstrom.pipeline_world_now() == window_end + timedelta(hours=1)


def test_data_directory_never_mixes_datasets(tmp_path: Path) -> None:
    claim_data_dir(tmp_path, "hillstrom")
    assert recorded_dataset(tmp_path) == "hillstrom"
    with pytest.raises(DatasetMixError, match="CAMPAIGN_DATA_DIR"):
        claim_data_dir(tmp_path, "synthetic")
    synthetic = tmp_path / "synthetic"
    (synthetic / "ground_truth").mkdir(parents=True)
    (synthetic / "ground_truth" / "customer_uplift.parquet").write_bytes(b"")
    assert recorded_dataset(synthetic) == "synthetic"  # a world from before the marker
    with pytest.raises(DatasetMixError, match="'synthetic'"):
        claim_data_dir(synthetic, "hillstrom")
    claim_data_dir(synthetic, "files")  # a team's own files may replace either


def test_land_hillstrom_writes_valid_fresh_raw_data_without_ground_truth(
    tmp_path: Path, monkeypatch, data_dir
) -> None:
    downloads = tmp_path / "downloads"
    (downloads / "hillstrom").mkdir(parents=True)
    _fabricate(300).to_csv(downloads / "hillstrom" / hillstrom.USER_FILE, index=False)
    monkeypatch.setenv("CAMPAIGN_DOWNLOAD_DIR", str(downloads))
    monkeypatch.setenv("CAMPAIGN_DATASET", "hillstrom")
    monkeypatch.setenv("CAMPAIGN_WORLD_NOW", hillstrom.pipeline_world_now().isoformat())
    s = Settings.from_env()
    meta = land_hillstrom(s)
    assert meta["as_of"] == hillstrom.PIPELINE_AS_OF.isoformat()
    assert not any(validate_raw_dir(s.raw_dir, s.now(), attributes=s.attributes_file).values())
    assert not s.ground_truth_dir.exists()
    for table in ACTIVITY_TABLES:
        result = measure_freshness(s.raw_dir, table, s.thresholds.raw_freshness_hours, s.now())
        assert result.is_fresh, table
        assert result.newest <= hillstrom.end_of_data(hillstrom.PIPELINE_AS_OF)
    exposures = pd.read_parquet(s.raw_dir / "campaign_exposures.parquet")
    assert set(exposures["campaign_id"]) == {hillstrom.CAMPAIGN_ID}


def test_cli_rejects_an_unknown_dataset_and_synthetic_options(monkeypatch, data_dir) -> None:
    monkeypatch.setenv("CAMPAIGN_DATASET", "synthetic")  # the CLI sets it; restored afterwards
    runner = CliRunner()
    result = runner.invoke(app, ["run", "--dataset", "criteo"])
    assert result.exit_code == 1
    assert "synthetic, files, hillstrom" in " ".join(result.output.split())
    result = runner.invoke(app, ["run", "--dataset", "hillstrom", "--customers", "5000"])
    assert result.exit_code == 1
    assert "synthetic world" in result.output


def test_cli_pins_the_clock_and_a_separate_data_dir(monkeypatch, tmp_path: Path) -> None:
    from orchestration.cli import _use_dataset
    from orchestration.settings import PROJECT_DIR

    # empty is unset; setenv makes the test restore whatever the CLI writes
    for name in ("CAMPAIGN_DATA_DIR", "DAGSTER_HOME", "CAMPAIGN_WORLD_NOW", "CAMPAIGN_DATASET"):
        monkeypatch.setenv(name, "")
    _use_dataset("hillstrom", customers=None, drift=0.0, as_of=None)

    assert os.environ["CAMPAIGN_DATASET"] == "hillstrom"
    assert Path(os.environ["CAMPAIGN_DATA_DIR"]) == PROJECT_DIR / "data" / "hillstrom"
    assert Path(os.environ["DAGSTER_HOME"]) == PROJECT_DIR / "data" / "hillstrom" / "dagster_home"
    clock = datetime.fromisoformat(os.environ["CAMPAIGN_WORLD_NOW"])
    assert clock == hillstrom.pipeline_world_now()
    assert clock.tzinfo is not None and clock.astimezone(UTC).year == 2008


def test_drift_leaves_out_signals_the_source_does_not_have() -> None:
    """Hillstrom has no e-mail clicks: an all-empty column on both sides is not tested (Evidently
    cannot), while a column that empties on one side only has drifted."""
    import numpy as np

    from orchestration.core.features.drift import measure_feature_drift

    rng = np.random.default_rng(0)
    n = 1_500  # over 1000 rows Evidently uses a distance (Wasserstein), as in the pipeline
    reference = pd.DataFrame(
        {"recency": rng.normal(size=n), "ctr": np.full(n, np.nan), "opens": rng.poisson(2, n)}
    )
    current = reference.copy()
    result = measure_feature_drift(reference, current, ["recency", "ctr", "opens"])
    assert result.empty_columns == ["ctr"]
    assert result.drifted_columns == []
    assert result.drift_share == 0.0
    current["opens"] = np.nan  # the signal vanished
    result = measure_feature_drift(reference, current, ["recency", "ctr", "opens"])
    assert result.drifted_columns == ["opens"]
    assert result.drift_share == pytest.approx(0.5)
