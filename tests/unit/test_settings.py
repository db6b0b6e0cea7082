"""Settings: each default stated once and effective, one-line errors for bad values, the
pseudonym key's development fallback and production refusal, one outcome window."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from orchestration import settings as settings_module
from orchestration.settings import (
    DEVELOPMENT_PSEUDONYM_KEY,
    PROJECT_DIR,
    DevelopmentKeyWarning,
    Settings,
    SettingsError,
    Thresholds,
    pseudonym_key,
    secret,
)


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No CAMPAIGN_* (nor MLflow) variable: the embedded defaults."""
    for name in list(os.environ):
        if name.upper().startswith("CAMPAIGN_") or name.upper() == "MLFLOW_TRACKING_URI":
            monkeypatch.delenv(name)
    settings_module._development_key_allowed.cache_clear()
    yield monkeypatch
    settings_module._development_key_allowed.cache_clear()


def test_each_default_is_stated_once_and_effective(clean_env) -> None:
    s = Settings.from_env()
    for model, values in ((Settings, s), (Thresholds, s.thresholds)):
        for name, field in model.model_fields.items():
            if field.default_factory is None:
                assert getattr(values, name) == field.default, name
    # the derived defaults
    assert s.target == "has_converted"
    assert s.mlflow_tracking_uri == f"sqlite:///{(s.data_dir / 'mlflow' / 'mlflow.db').as_posix()}"
    assert s.data_dir == PROJECT_DIR / "data"
    # what the checks and the world have always used
    t = s.thresholds
    assert (t.raw_freshness_hours, t.drift_share, t.drift_sample_rows) == (24.0, 0.5, 10_000)
    assert (t.feature_coverage, t.online_freshness_hours, t.online_stale_share) == (
        0.95,
        48.0,
        0.01,
    )
    assert t.min_champion_qini == 0.0
    assert (s.world_customers, s.world_seed, s.env, s.sends_disabled) == (
        100_000,
        42,
        "development",
        False,
    )


@pytest.mark.parametrize(
    ("var", "raw", "read"),
    [
        ("CAMPAIGN_DRIFT_SHARE_THRESHOLD", "0.3", lambda s: s.thresholds.drift_share == 0.3),
        ("CAMPAIGN_FEATURE_COVERAGE_THRESHOLD", "1", lambda s: s.thresholds.feature_coverage == 1),
        ("CAMPAIGN_MIN_CHAMPION_QINI", "0.02", lambda s: s.thresholds.min_champion_qini == 0.02),
        ("CAMPAIGN_DRIFT_SAMPLE_ROWS", "5_000", lambda s: s.thresholds.drift_sample_rows == 5000),
        ("CAMPAIGN_CUSTOMERS", "1_000", lambda s: s.world_customers == 1000),
        ("CAMPAIGN_SEED", "7", lambda s: s.world_seed == 7),
        ("CAMPAIGN_DATASET", "hillstrom", lambda s: s.target == "has_visited"),
        ("CAMPAIGN_SENDS_DISABLED", "on", lambda s: s.sends_disabled),
        ("CAMPAIGN_PROMOTE_OVERRIDE", "  ", lambda s: s.promote_override is None),
        ("CAMPAIGN_MODEL_NAME", " m ", lambda s: s.model_name == "m"),
        (
            "MLFLOW_TRACKING_URI",
            "http://mlflow:5000",
            lambda s: "mlflow:5000" in s.mlflow_tracking_uri,
        ),
        ("CAMPAIGN_DAGSTER_UI_URL", "http://ui", lambda s: s.dagster_ui_url == "http://ui"),
        ("CAMPAIGN_DOWNLOAD_DIR", "/tmp/dl", lambda s: s.download_dir == Path("/tmp/dl").resolve()),
        ("CAMPAIGN_WAREHOUSE_THREADS", "3", lambda s: s.warehouse_threads == 3),
        ("CAMPAIGN_WAREHOUSE_MEMORY_GB", "4.5", lambda s: s.warehouse_memory_gb == 4.5),
        ("CAMPAIGN_TRAINING_MAX_ROWS", "50_000", lambda s: s.training_max_rows == 50_000),
    ],
)
def test_each_setting_comes_from_its_variable(clean_env, var, raw, read) -> None:
    clean_env.setenv(var, raw)
    assert read(Settings.from_env())


@pytest.mark.parametrize(
    ("var", "raw", "expected"),
    [
        ("CAMPAIGN_DRIFT_SHARE_THRESHOLD", "1.5", "a number in (0, 1]"),
        ("CAMPAIGN_FEATURE_COVERAGE_THRESHOLD", "high", "a number in [0, 1]"),
        ("CAMPAIGN_ONLINE_STALE_SHARE_THRESHOLD", "-0.1", "a number in [0, 1]"),
        ("CAMPAIGN_RAW_FRESHNESS_HOURS", "0", "a number > 0"),
        ("CAMPAIGN_CUSTOMERS", "0", "an integer >= 1"),
        ("CAMPAIGN_PROMOTION_MARGIN", "a lot", "a number"),
        ("CAMPAIGN_ENV", "staging", "one of development, production"),
        ("CAMPAIGN_SENDS_DISABLED", "ture", "true or false"),
        ("CAMPAIGN_ONLINE_STORE", "dynamodb", "one of sqlite, redis"),
        ("CAMPAIGN_WAREHOUSE_THREADS", "0", "an integer >= 1"),
        ("CAMPAIGN_WAREHOUSE_MEMORY_GB", "0", "a number > 0"),
        ("CAMPAIGN_TRAINING_MAX_ROWS", "10", "an integer >= 1000"),
    ],
)
def test_a_bad_value_is_one_line_naming_the_variable_and_the_range(
    clean_env, var, raw, expected
) -> None:
    clean_env.setenv(var, raw)
    with pytest.raises(SettingsError) as error:
        Settings.from_env()
    message = str(error.value)
    assert "\n" not in message
    assert message == f"environment variable {var}={raw!r} is not valid: expected {expected}"


def test_a_bad_redis_url_is_one_line_without_the_password(clean_env) -> None:
    clean_env.setenv("CAMPAIGN_REDIS_URL", "http://user:s3cret@cache:6379/0")
    with pytest.raises(SettingsError) as error:
        Settings.from_env()
    message = str(error.value)
    assert message.startswith("CAMPAIGN_REDIS_URL='http://user:***@cache:6379/0' is not valid")
    assert "s3cret" not in message and "\n" not in message
    clean_env.setenv("CAMPAIGN_REDIS_URL", "redis://cache:6379/cache")
    with pytest.raises(SettingsError, match="the path must be a database number"):
        Settings.from_env()


def test_the_redis_url_becomes_feasts_connection_string(clean_env) -> None:
    from orchestration.core.features.redis_online_store import feast_connection_string

    clean_env.setenv("CAMPAIGN_ONLINE_STORE", "redis")
    clean_env.setenv("CAMPAIGN_REDIS_URL", "rediss://app:p%40ss@cache.internal:6380/3")
    settings = Settings.from_env()
    assert settings.online_store == "redis"
    assert "p%40ss" not in repr(settings)
    assert feast_connection_string(settings.redis_url) == (
        "cache.internal:6380,db=3,username=app,password=p@ss,ssl=true"
    )
    assert feast_connection_string("redis://127.0.0.1") == "127.0.0.1:6379"


def test_a_bad_world_clock_names_the_variable(clean_env) -> None:
    clean_env.setenv("CAMPAIGN_WORLD_NOW", "yesterday")
    with pytest.raises(ValueError, match="CAMPAIGN_WORLD_NOW='yesterday' is not an ISO timestamp"):
        Settings.from_env()
    clean_env.setenv("CAMPAIGN_WORLD_NOW", "2026-11-23T09:00:00")  # no zone: UTC
    s = Settings.from_env()
    assert s.world_now == datetime(2026, 11, 23, 9, tzinfo=UTC) == s.now()


def test_production_without_a_pseudonym_key_fails_in_one_line(clean_env) -> None:
    clean_env.setenv("CAMPAIGN_ENV", "production")
    with pytest.raises(SettingsError) as error:
        Settings.from_env()
    assert "\n" not in str(error.value)
    assert "CAMPAIGN_PSEUDONYM_KEY is not set" in str(error.value)
    assert "CAMPAIGN_ENV=production" in str(error.value)
    with pytest.raises(SettingsError, match="CAMPAIGN_PSEUDONYM_KEY is not set"):
        pseudonym_key()  # the per-message path refuses too
    clean_env.setenv("CAMPAIGN_PSEUDONYM_KEY", "s3cret")
    s = Settings.from_env()
    assert s.env == "production" and "s3cret" not in repr(s)
    assert pseudonym_key() == b"s3cret"


def test_outside_production_a_missing_key_warns_once(clean_env) -> None:
    with pytest.warns(DevelopmentKeyWarning, match="CAMPAIGN_PSEUDONYM_KEY is not set"):
        assert pseudonym_key() == DEVELOPMENT_PSEUDONYM_KEY.encode()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert pseudonym_key() == DEVELOPMENT_PSEUDONYM_KEY.encode()  # once: no second warning
    clean_env.setenv("CAMPAIGN_PSEUDONYM_KEY", "k")
    assert pseudonym_key() == b"k"


def test_paths_live_under_the_data_dir_where_the_alerting_looks(clean_env, tmp_path) -> None:
    from orchestration.core.observability.alerting.evaluate import alert_book_path, alert_log_path

    clean_env.setenv("CAMPAIGN_DATA_DIR", str(tmp_path))
    s = Settings.from_env()
    assert s.data_dir == tmp_path.resolve()
    assert s.metrics_db == s.data_dir / "metrics" / "metrics.db"
    assert s.alert_log == alert_log_path(s.data_dir)
    assert s.incident_book == alert_book_path(s.data_dir)
    moved = s.model_copy(update={"model_name": "other"})  # what dataclasses.replace did
    assert (moved.model_name, moved.data_dir) == ("other", s.data_dir)


def test_alert_env_and_named_secrets(clean_env) -> None:
    clean_env.setenv("CAMPAIGN_ALERT_NOTIFIERS", "log")
    clean_env.setenv("CAMPAIGN_SEED", "1")
    clean_env.setenv("GATEWAY_TEST_TOKEN", "t0ken")
    assert dict(Settings.from_env().alert_env) == {"CAMPAIGN_ALERT_NOTIFIERS": "log"}
    assert secret("GATEWAY_TEST_TOKEN") == "t0ken"
    assert secret("GATEWAY_TEST_UNSET") == ""


def test_reading_the_settings_imports_no_heavy_package() -> None:
    code = (
        "import sys, orchestration.settings as s; s.Settings.from_env(); "
        "print(sorted(m for m in ('dagster', 'feast', 'mlflow', 'lightgbm') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=PROJECT_DIR
    )
    assert out.stdout.strip() == "[]"


def test_one_outcome_window_in_python_and_dbt() -> None:
    from orchestration.core.observability import lift
    from orchestration.core.world import feedback, synthetic
    from orchestration.core.world.contract import OUTCOME_WINDOW_DAYS
    from orchestration.core.world.datasets import hillstrom

    window = timedelta(days=OUTCOME_WINDOW_DAYS)
    assert lift.WINDOW == feedback.WINDOW == window
    assert synthetic.ATTRIBUTION_WINDOW_DAYS == hillstrom.OUTCOME_WINDOW_DAYS == OUTCOME_WINDOW_DAYS
    dbt_vars = yaml.safe_load((PROJECT_DIR / "dbt_project" / "dbt_project.yml").read_text())["vars"]
    assert dbt_vars["attribution_window_days"] == OUTCOME_WINDOW_DAYS
