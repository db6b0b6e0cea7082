"""Paths and configuration, resolved in one place from the environment.

Nothing here does work at import: ``Settings.from_env()`` reads the environment when called, so a
test (or a second deployment) points the whole system at another data directory by setting
``CAMPAIGN_DATA_DIR`` before it builds its resources.

Every setting has an embedded default that runs on one machine; switching a part to its
production counterpart is an environment variable (or the dbt target / feature_store.yaml), never
a code edit.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parents[1]
DBT_PROJECT_DIR = PROJECT_DIR / "dbt_project"
FEATURE_REPO_DIR = PROJECT_DIR / "feature_repo"
CAMPAIGNS_DIR = PROJECT_DIR / "campaigns"
POLICY_FILE = PROJECT_DIR / "policies" / "global_policy.yaml"
GATEWAY_CONFIG = PROJECT_DIR / "config" / "gateway.yaml"


def _env(name: str, default: str) -> str:
    value = os.environ.get(name, "").strip()
    return value or default


def _env_float(name: str, default: float) -> float:
    raw = _env(name, str(default))
    try:
        return float(raw)
    except ValueError as exc:
        raise ValueError(f"environment variable {name}={raw!r} is not a number") from exc


def _env_int(name: str, default: int) -> int:
    raw = _env(name, str(default))
    try:
        return int(raw.replace("_", ""))
    except ValueError as exc:
        raise ValueError(f"environment variable {name}={raw!r} is not an integer") from exc


# The uplift learners (orchestration.core.model.learners.LEARNERS; duplicated so that reading the
# settings never imports LightGBM; a unit test keeps the two in step).
LEARNERS: tuple[str, ...] = ("two_model", "class_transformation", "response")
# Where the raw data comes from (CAMPAIGN_DATASET): the generated world, a team's own Parquet
# files in data/raw, or the public Hillstrom e-mail campaign (orchestration.core.world.datasets).
DATASETS: tuple[str, ...] = ("synthetic", "files", "hillstrom")
# Outcomes of fct_campaign_exposures a model can learn (CAMPAIGN_TARGET).
TARGETS: tuple[str, ...] = ("has_converted", "has_visited")


def default_target(dataset: str) -> str:
    """The outcome a dataset's protocol models: Hillstrom's is the visit (conversions are rare)."""
    return "has_visited" if dataset == "hillstrom" else "has_converted"


def _env_choice(name: str, default: str, allowed: tuple[str, ...]) -> str:
    value = _env(name, default)
    if value not in allowed:
        raise ValueError(
            f"environment variable {name}={value!r} is not valid; choose one of {', '.join(allowed)}"
        )
    return value


def _parse_utc(raw: str) -> datetime:
    try:
        value = datetime.fromisoformat(raw)
    except ValueError as exc:
        raise ValueError(
            f"CAMPAIGN_WORLD_NOW={raw!r} is not an ISO timestamp (e.g. 2026-11-23T09:00:00Z)"
        ) from exc
    return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Thresholds:
    """Gate thresholds. Each is the value a check compares its measurement against."""

    # Source freshness: the newest order/engagement event must be at most this old.
    raw_freshness_hours: float = 24.0
    # Feature drift: share of drifted feature columns (Evidently) that blocks the sends.
    drift_share: float = 0.5
    # Rows sampled from each side for the drift test (stated in the check's metadata).
    drift_sample_rows: int = 10_000
    # Feature availability: share of candidates that must have today's features.
    feature_coverage: float = 0.95
    # Online store: features older than this are stale (Feast serves them anyway) ...
    online_freshness_hours: float = 48.0
    # ... and at most this share of sampled customers may be stale or missing online.
    online_stale_share: float = 0.01


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    project_dir: Path = PROJECT_DIR
    dbt_project_dir: Path = DBT_PROJECT_DIR
    feature_repo_dir: Path = FEATURE_REPO_DIR
    campaigns_dir: Path = CAMPAIGNS_DIR
    policy_file: Path = POLICY_FILE
    # Providers per channel, retries, breaker (CAMPAIGN_GATEWAY_CONFIG to use another file).
    gateway_config: Path = GATEWAY_CONFIG
    mlflow_tracking_uri: str = ""
    model_name: str = "uplift_model"
    # Synthetic world defaults (the raw data asset's run config can override them).
    dataset: str = "synthetic"
    # The outcome the uplift model learns (CAMPAIGN_TARGET; default_target(dataset) if unset).
    target: str = "has_converted"
    world_customers: int = 100_000
    world_seed: int = 42
    thresholds: Thresholds = field(default_factory=Thresholds)
    # The world clock: None is the real time. Set (CAMPAIGN_WORLD_NOW, ISO) it pins "now" for the
    # whole pipeline (world generation, dbt's decision day, freshness, decisions), so a
    # simulation or a drill can move a world through days in minutes.
    world_now: datetime | None = None
    # Model lifecycle: the learner uplift_model trains (CAMPAIGN_LEARNER), the Qini margin a
    # challenger must beat the champion by to be promoted (CAMPAIGN_PROMOTION_MARGIN), a manual
    # promotion (CAMPAIGN_PROMOTE_OVERRIDE=<version>) and the measured-lift floor below which the
    # retraining sensor asks for a new model (CAMPAIGN_MIN_LIFT).
    learner: str = "two_model"
    promotion_margin: float = 0.0
    promote_override: str | None = None
    min_lift: float = 0.0

    def now(self) -> datetime:
        return self.world_now or datetime.now(UTC)

    @classmethod
    def from_env(cls) -> Settings:
        data_dir = Path(_env("CAMPAIGN_DATA_DIR", str(PROJECT_DIR / "data"))).resolve()
        campaigns_dir = Path(_env("CAMPAIGN_CAMPAIGNS_DIR", str(CAMPAIGNS_DIR))).resolve()
        policy_file = Path(_env("CAMPAIGN_POLICY_FILE", str(POLICY_FILE))).resolve()
        mlflow_uri = _env(
            "MLFLOW_TRACKING_URI", f"sqlite:///{(data_dir / 'mlflow' / 'mlflow.db').as_posix()}"
        )
        thresholds = Thresholds(
            raw_freshness_hours=_env_float("CAMPAIGN_RAW_FRESHNESS_HOURS", 24.0),
            drift_share=_env_float("CAMPAIGN_DRIFT_SHARE_THRESHOLD", 0.5),
            drift_sample_rows=_env_int("CAMPAIGN_DRIFT_SAMPLE_ROWS", 10_000),
            feature_coverage=_env_float("CAMPAIGN_FEATURE_COVERAGE_THRESHOLD", 0.95),
            online_freshness_hours=_env_float("CAMPAIGN_ONLINE_FRESHNESS_HOURS", 48.0),
            online_stale_share=_env_float("CAMPAIGN_ONLINE_STALE_SHARE_THRESHOLD", 0.01),
        )
        world_now = _env("CAMPAIGN_WORLD_NOW", "")
        dataset = _env_choice("CAMPAIGN_DATASET", "synthetic", DATASETS)
        return cls(
            world_now=_parse_utc(world_now) if world_now else None,
            data_dir=data_dir,
            campaigns_dir=campaigns_dir,
            policy_file=policy_file,
            gateway_config=Path(_env("CAMPAIGN_GATEWAY_CONFIG", str(GATEWAY_CONFIG))).resolve(),
            mlflow_tracking_uri=mlflow_uri,
            model_name=_env("CAMPAIGN_MODEL_NAME", "uplift_model"),
            dataset=dataset,
            target=_env_choice("CAMPAIGN_TARGET", default_target(dataset), TARGETS),
            world_customers=_env_int("CAMPAIGN_CUSTOMERS", 100_000),
            world_seed=_env_int("CAMPAIGN_SEED", 42),
            thresholds=thresholds,
            learner=_env_choice("CAMPAIGN_LEARNER", "two_model", LEARNERS),
            promotion_margin=_env_float("CAMPAIGN_PROMOTION_MARGIN", 0.0),
            promote_override=_env("CAMPAIGN_PROMOTE_OVERRIDE", "") or None,
            min_lift=_env_float("CAMPAIGN_MIN_LIFT", 0.0),
        )

    # --- where things live under data/ -------------------------------------------------
    @property
    def raw_dir(self) -> Path:
        return self.data_dir / "raw"

    @property
    def ground_truth_dir(self) -> Path:
        return self.data_dir / "ground_truth"

    @property
    def warehouse_path(self) -> Path:
        return self.data_dir / "warehouse" / "warehouse.duckdb"

    @property
    def exports_dir(self) -> Path:
        """Where dbt writes its Parquet exports (the marts and the unpublished feature tables)."""
        return self.data_dir / "warehouse" / "exports"

    @property
    def features_dir(self) -> Path:
        """Published feature versions; ``current`` points at the one Feast reads."""
        return self.data_dir / "features"

    @property
    def feast_dir(self) -> Path:
        return self.data_dir / "feast"

    @property
    def mlflow_dir(self) -> Path:
        return self.data_dir / "mlflow"

    @property
    def pipeline_dir(self) -> Path:
        """Intermediate Python asset outputs (training set, scoring features, scores)."""
        return self.data_dir / "pipeline"

    @property
    def decisions_dir(self) -> Path:
        return self.data_dir / "decisions"

    @property
    def gateway_dir(self) -> Path:
        return self.data_dir / "gateway"

    @property
    def reports_dir(self) -> Path:
        return self.data_dir / "reports"

    @property
    def dagster_home(self) -> Path:
        return self.data_dir / "dagster_home"

    def dbt_env(self) -> dict[str, str]:
        """Environment the dbt subprocess needs to find the same data directory."""
        return {"CAMPAIGN_DATA_DIR": str(self.data_dir)}
