"""Paths and configuration, resolved in one place from the environment.

Nothing here does work at import: ``Settings.from_env()`` reads the environment when called, so a
test (or a second deployment) points the whole system at another data directory by setting
``CAMPAIGN_DATA_DIR`` before it builds its resources.

Every setting has an embedded default that runs on one machine, stated once, in its field; its
environment variable is ``CAMPAIGN_<FIELD NAME>`` unless the field names another one. Switching a
part to its production counterpart is an environment variable (or the dbt target /
feature_store.yaml), never a code edit. A bad value fails ``from_env()`` with one line that names
the variable and what it accepts.

Secrets are not settings: a provider's credentials are referenced *by name* from
``config/gateway.yaml`` and resolved at use by :func:`secret`; the pseudonym key is read at each
use by :func:`pseudonym_key` (cheap: it runs once per message).
"""

from __future__ import annotations

import functools
import logging
import os
import sys
import warnings
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType
from typing import Annotated, Any, Literal, get_args, get_origin
from urllib.parse import urlsplit

import annotated_types
from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_DIR = Path(__file__).resolve().parents[1]
DBT_PROJECT_DIR = PROJECT_DIR / "dbt_project"
FEATURE_REPO_DIR = PROJECT_DIR / "feature_repo"
CAMPAIGNS_DIR = PROJECT_DIR / "campaigns"
POLICY_FILE = PROJECT_DIR / "policies" / "global_policy.yaml"
GATEWAY_CONFIG = PROJECT_DIR / "config" / "gateway.yaml"
APPROVERS_FILE = PROJECT_DIR / "config" / "approvers.yaml"
# The customer attributes a dataset declares (orchestration.core.world.attributes): the default
# file, and Hillstrom's own (its columns mapped to attributes).
ATTRIBUTES_FILE = PROJECT_DIR / "config" / "attributes.yaml"
HILLSTROM_ATTRIBUTES_FILE = PROJECT_DIR / "config" / "attributes.hillstrom.yaml"

ENV_PREFIX = "CAMPAIGN_"
# The notifier configuration (CAMPAIGN_ALERT_NOTIFIERS, _WEBHOOK_URL, _SMTP_*): checked by
# orchestration.core.observability.alerting.notifiers.notifier_from_env.
ALERT_ENV_PREFIX = "CAMPAIGN_ALERT_"
PSEUDONYM_KEY_ENV = "CAMPAIGN_PSEUDONYM_KEY"
# Public, so anyone can recompute the refs: only for development (pseudonym_key() warns).
DEVELOPMENT_PSEUDONYM_KEY = "development-only-pseudonym-key"

logger = logging.getLogger(__name__)

# The uplift learners (orchestration.core.model.learners.LEARNERS; duplicated so that reading the
# settings never imports LightGBM; a unit test keeps the two in step).
Learner = Literal["two_model", "class_transformation", "response", "x_learner"]
LEARNERS: tuple[str, ...] = get_args(Learner)
# Where the raw data comes from (CAMPAIGN_DATASET): the generated world, a team's own Parquet
# files in data/raw, the tables of a schema in a DuckDB file (warehouse: CAMPAIGN_RAW_DUCKDB,
# CAMPAIGN_RAW_SCHEMA), or the public Hillstrom e-mail campaign
# (orchestration.core.world.datasets).
Dataset = Literal["synthetic", "files", "hillstrom", "warehouse"]
DATASETS: tuple[str, ...] = get_args(Dataset)
# Outcomes of fct_campaign_exposures a model can learn (CAMPAIGN_TARGET).
Target = Literal["has_converted", "has_visited"]
TARGETS: tuple[str, ...] = get_args(Target)
# The deployment (CAMPAIGN_ENV): production refuses development fallbacks (the pseudonym key).
Environment = Literal["development", "production"]
ENVIRONMENTS: tuple[str, ...] = get_args(Environment)
# The Feast online store (CAMPAIGN_ONLINE_STORE): the embedded SQLite file of feature_store.yaml
# (under the data directory) or a Redis server at CAMPAIGN_REDIS_URL
# (orchestration.core.features.redis_online_store).
OnlineStoreKind = Literal["sqlite", "redis"]
ONLINE_STORE_KINDS: tuple[str, ...] = get_args(OnlineStoreKind)
# Where the stores live (CAMPAIGN_PROFILE): ``local`` is the embedded default (DuckDB warehouse,
# SQLite for Dagster, MLflow and the online store); ``production`` puts Dagster's run storage,
# MLflow's tracking/registry store and the dbt warehouse on Postgres (CAMPAIGN_POSTGRES_URL) and
# the Feast online store on Redis (CAMPAIGN_REDIS_URL). `scripts/services.sh env` prints both for
# the servers `make services-up` starts. ``spark`` builds the warehouse with dbt-spark (session
# method: pyspark in the dbt process, master CAMPAIGN_SPARK_MASTER, default local[2]), retrieves
# features through Feast's Spark offline store and scores with mlflow's spark_udf; Dagster,
# MLflow and the online store stay embedded (SQLite) unless configured otherwise.
Profile = Literal["local", "production", "spark"]
PROFILES: tuple[str, ...] = get_args(Profile)
# The Postgres databases of the production profile (created by scripts/services.sh).
POSTGRES_DATABASES = ("dagster", "mlflow", "warehouse")


def default_attributes_file(dataset: str | None) -> Path:
    """The attribute declaration of a dataset: Hillstrom's own, else config/attributes.yaml."""
    return HILLSTROM_ATTRIBUTES_FILE if dataset == "hillstrom" else ATTRIBUTES_FILE


def default_target(dataset: str | None) -> str:
    """The outcome a dataset's protocol models: Hillstrom's is the visit (conversions are rare)."""
    return "has_visited" if dataset == "hillstrom" else "has_converted"


def default_learner(dataset: str | None) -> str:
    """The uplift learner a dataset trains by default (CAMPAIGN_LEARNER overrides): the
    X-learner for Hillstrom, whose arms' effects are small next to the visit rate's spread (it
    models the imputed effects, not two noisy outcome levels: Womens E-Mail uplift@30 % 0.0668
    against the T-learner's 0.0532 on the pipeline's holdout before the declared attributes;
    0.0552 since, see the README); the T-learner otherwise."""
    return "x_learner" if dataset == "hillstrom" else "two_model"


class SettingsError(ValueError):
    """A setting's environment variable holds a value it does not accept (one-line message)."""


def _parse_utc(raw: Any) -> Any:
    if not isinstance(raw, str):
        return raw
    try:
        value = datetime.fromisoformat(raw)
    except ValueError as exc:
        raise ValueError(
            f"CAMPAIGN_WORLD_NOW={raw!r} is not an ISO timestamp (e.g. 2026-11-23T09:00:00Z)"
        ) from exc
    return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)


def _check_redis_url(url: str) -> str:
    parts = urlsplit(url)
    try:
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        parts = parts._replace(netloc="")
    if parts.scheme not in ("redis", "rediss") or not parts.hostname:
        raise ValueError(
            f"CAMPAIGN_REDIS_URL={_without_password(url)!r} is not valid: expected "
            "redis://[user:password@]host[:port][/db] (rediss:// for TLS)"
        )
    db = parts.path.strip("/")
    if db and not db.isdigit():
        raise ValueError(
            f"CAMPAIGN_REDIS_URL={_without_password(url)!r} is not valid: the path must be a "
            f"database number, not {db!r}"
        )
    return url


def _without_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@")).geturl()


ResolvedPath = Annotated[Path, AfterValidator(lambda path: path.resolve())]
RedisUrl = Annotated[str, AfterValidator(_check_redis_url)]
# The world clock: an ISO timestamp; one without a zone is UTC.
WorldClock = Annotated[datetime | None, BeforeValidator(_parse_utc)]


def _local_mlflow_store(data_dir: Path) -> str:
    return f"sqlite:///{(data_dir / 'mlflow' / 'mlflow.db').as_posix()}"


def _default_mlflow_store(data: dict[str, Any]) -> str:
    """SQLite under the data directory; in production MLflow's database on the Postgres server."""
    if data.get("profile") == "production" and data.get("postgres_url"):
        return postgres_database_url(data["postgres_url"], "mlflow")
    return _local_mlflow_store(data["data_dir"])


def postgres_database_url(server_url: str, database: str) -> str:
    """``postgresql://user:password@host:port`` (any database path dropped) + ``/<database>``."""
    scheme, _, rest = server_url.partition("://")
    return f"{scheme}://{rest.split('/', 1)[0]}/{database}"


def _postgres_server_url(raw: Any) -> Any:
    if raw is None or not isinstance(raw, str):
        return raw
    if not raw.startswith(("postgresql://", "postgres://")) or "@" not in raw:
        raise ValueError(
            f"CAMPAIGN_POSTGRES_URL={without_password(raw)!r} is not a Postgres server URL: "
            "expected postgresql://user:password@host:port (scripts/services.sh env prints it)"
        )
    return raw.rstrip("/")


def without_password(url: str) -> str:
    """A URL for logs and summaries: its password replaced by ``***``."""
    head, at, tail = url.rpartition("@")
    if not at:
        return url
    scheme, _, credentials = head.partition("://")
    return f"{scheme}://{credentials.split(':', 1)[0]}:***@{tail}"


def available_cpus() -> int:
    """The CPUs this process may run on (its affinity mask, e.g. a container's cpuset)."""
    if hasattr(os, "sched_getaffinity"):
        return max(len(os.sched_getaffinity(0)), 1)
    return os.cpu_count() or 1


def _machine_memory_gb() -> float:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (AttributeError, OSError, ValueError):
        return 8.0


def _default_warehouse_memory_gb() -> float:
    """Half the machine's memory, at most 12 GB: DuckDB spills to disk beyond its limit, and the
    rest of a 10M-customer run (the pipeline process, Feast) needs the other 4 GB of 16."""
    return round(max(min(_machine_memory_gb() * 0.5, 12.0), 1.0), 1)


def _default_spark_driver_memory_gb() -> float:
    """A quarter of the machine's memory, at least 2 GB and at most 16: with ``local[N]`` the
    executors run inside the driver, and Feast's Spark retrieval of 1M customers' features ran
    a 2 GB driver out of heap (dbt's own JVM keeps its 2 GB: profiles.yml)."""
    return float(int(max(min(_machine_memory_gb() * 0.25, 16.0), 2.0)))


class _FromEnvironment(BaseSettings):
    """What every group of settings shares: the prefix, immutability and the old ``_env`` rule
    that a value is stripped and an empty one means the default."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, frozen=True, populate_by_name=True, env_ignore_empty=True
    )

    @model_validator(mode="before")
    @classmethod
    def _blank_is_unset(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        stripped = {k: v.strip() if isinstance(v, str) else v for k, v in data.items()}
        return {k: v for k, v in stripped.items() if v != ""}


class Thresholds(_FromEnvironment):
    """Gate thresholds. Each is the value a check compares its measurement against."""

    # Source freshness: the newest order/engagement event must be at most this old.
    raw_freshness_hours: float = Field(24.0, gt=0)
    # Feature drift: share of drifted feature columns (Evidently) that blocks the sends.
    drift_share: float = Field(0.5, gt=0, le=1, validation_alias="CAMPAIGN_DRIFT_SHARE_THRESHOLD")
    # Rows sampled from each side for the drift test (stated in the check's metadata).
    drift_sample_rows: int = Field(10_000, ge=1)
    # Feature availability: share of candidates that must have today's features.
    feature_coverage: float = Field(
        0.95, ge=0, le=1, validation_alias="CAMPAIGN_FEATURE_COVERAGE_THRESHOLD"
    )
    # Online store: features older than this are stale (Feast serves them anyway) ...
    online_freshness_hours: float = Field(48.0, gt=0)
    # ... and at most this share of sampled customers may be stale or missing online.
    online_stale_share: float = Field(
        0.01, ge=0, le=1, validation_alias="CAMPAIGN_ONLINE_STALE_SHARE_THRESHOLD"
    )
    # The champion that scores the campaigns must rank better than this Qini on its holdout
    # (0: better than random).
    min_champion_qini: float = 0.0
    # Safety tables only grow: the share of the last release's suppressions (or opt-outs) that
    # may disappear without an explicit lift (0: any disappearance blocks the release; an
    # emptied table blocks whatever the share). The default of
    # orchestration.core.world.safety_tables.MAX_SHRINK_SHARE.
    safety_max_shrink_share: float = Field(0.0, ge=0, le=1)


class Settings(_FromEnvironment):
    """The configuration of one deployment. Build it with :meth:`from_env`."""

    # Everything the pipeline writes lives under the data directory.
    data_dir: ResolvedPath = PROJECT_DIR / "data"
    campaigns_dir: ResolvedPath = CAMPAIGNS_DIR
    policy_file: ResolvedPath = POLICY_FILE
    # Providers per channel, retries, breaker (CAMPAIGN_GATEWAY_CONFIG to use another file).
    gateway_config: ResolvedPath = GATEWAY_CONFIG
    # Public dataset downloads, shared by every data directory (CAMPAIGN_DOWNLOAD_DIR).
    download_dir: ResolvedPath = PROJECT_DIR / "data" / "downloads"
    # The footing (CAMPAIGN_PROFILE): local (embedded), production (Postgres + Redis) or spark.
    profile: Profile = "local"
    # The spark profile's Spark master (CAMPAIGN_SPARK_MASTER): local[2] runs Spark inside the
    # process on 2 cores; a cluster is its URL (spark://host:7077). Its warehouse directory
    # must then be storage every executor reaches (CAMPAIGN_DATA_DIR on a shared file system).
    spark_master: str = "local[2]"
    # Memory of the Spark driver JVM (CAMPAIGN_SPARK_DRIVER_MEMORY_GB): with local[N] the
    # executors run inside it.
    spark_driver_memory_gb: float = Field(default_factory=_default_spark_driver_memory_gb, gt=0)
    # The production profile's Postgres server, without a database
    # (postgresql://user:password@host:port); its databases are POSTGRES_DATABASES.
    postgres_url: Annotated[str | None, BeforeValidator(_postgres_server_url)] = None
    # MLflow's own variable; default: a SQLite store under <data>/mlflow (production: the mlflow
    # database on CAMPAIGN_POSTGRES_URL; artifacts stay under <data>/mlflow/artifacts).
    mlflow_tracking_uri: str = Field(
        default_factory=_default_mlflow_store, validation_alias="MLFLOW_TRACKING_URI"
    )
    model_name: str = "uplift_model"
    # Synthetic world defaults (the raw data asset's run config can override them).
    dataset: Dataset = "synthetic"
    # The outcome the uplift model learns (CAMPAIGN_TARGET; default_target(dataset) if unset).
    target: Target = Field(default_factory=lambda data: default_target(data.get("dataset")))
    # The customer attributes declared for this data (CAMPAIGN_ATTRIBUTES_FILE; default:
    # default_attributes_file(dataset)). Adding one is an edit of that file, not of code.
    attributes_file: ResolvedPath = Field(
        default_factory=lambda data: default_attributes_file(data.get("dataset"))
    )
    # CAMPAIGN_DATASET=warehouse: the DuckDB file (CAMPAIGN_RAW_DUCKDB) and schema
    # (CAMPAIGN_RAW_SCHEMA) whose tables, named like the contract's, are the raw data.
    raw_duckdb: ResolvedPath | None = None
    raw_schema: str = Field("raw", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    world_customers: int = Field(100_000, ge=1, validation_alias="CAMPAIGN_CUSTOMERS")
    world_seed: int = Field(42, ge=0, validation_alias="CAMPAIGN_SEED")
    # The synthetic past campaigns test two message variants (arms ``offer`` and ``reminder``
    # against control, each with its own true effect per customer type) instead of one
    # treatment (CAMPAIGN_WORLD_VARIANTS=true): the world behind campaigns with ``variants:``.
    world_variants: bool = Field(False, validation_alias="CAMPAIGN_WORLD_VARIANTS")
    thresholds: Thresholds = Field(default_factory=Thresholds)
    # The world clock: None is the real time. Set (CAMPAIGN_WORLD_NOW, ISO) it pins "now" for the
    # whole pipeline (world generation, dbt's decision day, freshness, decisions), so a
    # simulation or a drill can move a world through days in minutes.
    world_now: WorldClock = None
    # Model lifecycle: the learner uplift_model trains (CAMPAIGN_LEARNER), the Qini margin a
    # challenger must beat the champion by to be promoted (CAMPAIGN_PROMOTION_MARGIN), a manual
    # promotion (CAMPAIGN_PROMOTE_OVERRIDE=<version>) and the measured-lift floor below which the
    # retraining sensor asks for a new model (CAMPAIGN_MIN_LIFT).
    learner: Learner = Field(default_factory=lambda data: default_learner(data.get("dataset")))
    # The training set keeps at most about this many past exposures (CAMPAIGN_TRAINING_MAX_ROWS):
    # a stable hash sample of customers beyond it (core/model/training.py says why that is
    # enough). 100k customers have ~107,500 exposures, all kept; 10M have ~10.7M.
    training_max_rows: int = Field(600_000, ge=1_000)
    promotion_margin: float = 0.0
    promote_override: str | None = None
    min_lift: float = 0.0
    # The deployment (CAMPAIGN_ENV): production requires CAMPAIGN_PSEUDONYM_KEY.
    env: Environment = "development"
    # The key of the pseudonymous recipient refs (validated here; pseudonym_key() reads it).
    pseudonym_key: SecretStr | None = None
    # The kill switch (CAMPAIGN_SENDS_DISABLED=true): no message leaves the gateway.
    sends_disabled: bool = False
    # Four-eyes approvals (orchestration.core.governance): who may submit and approve, with the
    # key each signs with (CAMPAIGN_APPROVERS_FILE), and whether a campaign or policy version, a
    # manual promotion and lifting the kill switch need an approval before they take effect
    # (CAMPAIGN_REQUIRE_APPROVALS; default: on in production, off in development so that the
    # quick start sends out of the box).
    approvers_file: ResolvedPath = APPROVERS_FILE
    require_approvals: bool = Field(default_factory=lambda data: data.get("env") == "production")
    # Where alerts link to (CAMPAIGN_DAGSTER_UI_URL; None: the alerting package's default).
    dagster_ui_url: str | None = None
    # The online store (CAMPAIGN_ONLINE_STORE): "sqlite", the embedded file feature_store.yaml
    # names, or "redis", the server at CAMPAIGN_REDIS_URL (redis://[user:password@]host:port/db;
    # rediss:// for TLS). The Feast registry stays a file under the data directory either way.
    # (The production profile's default is redis.)
    online_store: OnlineStoreKind = Field(
        default_factory=lambda data: "redis" if data.get("profile") == "production" else "sqlite"
    )
    redis_url: RedisUrl = Field("redis://127.0.0.1:6379/0", repr=False)  # may hold a password
    # DuckDB under dbt (CAMPAIGN_WAREHOUSE_THREADS, CAMPAIGN_WAREHOUSE_MEMORY_GB): dbt's threads
    # and DuckDB's threads and memory limit. Default: the CPUs this process may use, and half
    # the machine's memory up to 12 GB (DuckDB's own default, 80 %, would leave too little for
    # the rest of a 10M run).
    warehouse_threads: int = Field(default_factory=available_cpus, ge=1)
    warehouse_memory_gb: float = Field(default_factory=_default_warehouse_memory_gb, gt=0)
    # How often the freshness sensor checks raw and online freshness without a run, in minutes
    # (CAMPAIGN_FRESHNESS_SENSOR_MINUTES; read when the definitions load).
    freshness_sensor_minutes: int = Field(15, ge=1)
    # Run traces (orchestration.core.observability.tracing): file (default, <data>/traces),
    # otlp (to trace_otlp_endpoint, e.g. http://127.0.0.1:4318/v1/traces) or none.
    trace_exporter: Literal["file", "otlp", "none"] = "file"
    trace_otlp_endpoint: str | None = None
    # CAMPAIGN_ALERT_* as read when the settings were built (see alert_env).
    _alert_env: dict[str, str] = PrivateAttr(
        default_factory=lambda: {
            k: v for k, v in os.environ.items() if k.upper().startswith(ALERT_ENV_PREFIX)
        }
    )

    @model_validator(mode="after")
    def _production_profile_has_its_servers(self) -> Settings:
        if self.profile != "production":
            return self
        missing = [
            name
            for name, value in (
                ("CAMPAIGN_POSTGRES_URL", self.postgres_url),
                ("CAMPAIGN_REDIS_URL", "redis_url" in self.model_fields_set),
            )
            if not value
        ]
        if missing:
            raise ValueError(
                f"CAMPAIGN_PROFILE=production needs {' and '.join(missing)}: start the servers "
                'with `make services-up` and run `eval "$(scripts/services.sh env)"`'
            )
        return self

    @model_validator(mode="after")
    def _warehouse_dataset_names_its_file(self) -> Settings:
        if self.dataset == "warehouse" and self.raw_duckdb is None:
            raise ValueError(
                "CAMPAIGN_DATASET=warehouse needs CAMPAIGN_RAW_DUCKDB: the DuckDB file whose "
                "schema CAMPAIGN_RAW_SCHEMA (default raw) holds the raw contract tables"
            )
        return self

    @model_validator(mode="after")
    def _production_has_a_pseudonym_key(self) -> Settings:
        if self.env == "production" and not (
            self.pseudonym_key and self.pseudonym_key.get_secret_value()
        ):
            raise ValueError(_MISSING_KEY_IN_PRODUCTION)
        return self

    @classmethod
    def from_env(cls) -> Settings:
        """The settings of this process's environment, validated (the one entry point)."""
        try:
            return cls()
        except ValidationError as exc:
            raise SettingsError(_one_line(exc)) from None

    def now(self) -> datetime:
        return self.world_now or datetime.now(UTC)

    @property
    def alert_env(self) -> Mapping[str, str]:
        """The notifier configuration (``CAMPAIGN_ALERT_*``) for ``notifier_from_env``."""
        return MappingProxyType(self._alert_env)

    # --- the production profile's stores ------------------------------------------------
    @property
    def is_production(self) -> bool:
        return self.profile == "production"

    def postgres_database(self, database: str) -> str:
        """The URL of one of the production profile's databases (POSTGRES_DATABASES)."""
        if not self.postgres_url:
            raise SettingsError(
                f"the {database} database is on Postgres only in the production profile: "
                "set CAMPAIGN_PROFILE=production and CAMPAIGN_POSTGRES_URL"
            )
        return postgres_database_url(self.postgres_url, database)

    @property
    def is_spark(self) -> bool:
        return self.profile == "spark"

    @property
    def dbt_target(self) -> str:
        """The output of dbt_project/profiles.yml the warehouse is built with."""
        return {"production": "postgres", "spark": "spark"}.get(self.profile, "dev")

    # --- the code base (not configurable) ------------------------------------------------
    @property
    def project_dir(self) -> Path:
        return PROJECT_DIR

    @property
    def dbt_project_dir(self) -> Path:
        return DBT_PROJECT_DIR

    @property
    def feature_repo_dir(self) -> Path:
        return FEATURE_REPO_DIR

    # --- where things live under data/ -------------------------------------------------
    @property
    def raw_dir(self) -> Path:
        return self.data_dir / "raw"

    @property
    def ground_truth_dir(self) -> Path:
        return self.data_dir / "ground_truth"

    @property
    def exports_dir(self) -> Path:
        """Where dbt writes its Parquet exports (the marts and the unpublished feature tables)."""
        return self.data_dir / "warehouse" / "exports"

    @property
    def features_dir(self) -> Path:
        """Published feature versions; ``current`` points at the one Feast reads."""
        return self.data_dir / "features"

    @property
    def spark_dir(self) -> Path:
        """The spark profile's state: the warehouse directory (``warehouse/<schema>.db/<table>``,
        the tables dbt-spark builds) and the Hive metastore dbt's session keeps them in."""
        return self.data_dir / "spark"

    @property
    def spark_warehouse_dir(self) -> Path:
        return self.spark_dir / "warehouse"

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
    def approvals_db(self) -> Path:
        """Submissions and approvals (orchestration.core.governance.approvals)."""
        return self.data_dir / "governance" / "approvals.db"

    @property
    def reports_dir(self) -> Path:
        return self.data_dir / "reports"

    @property
    def traces_file(self) -> Path:
        """Where the file trace exporter appends spans (one OTLP-shaped JSON span per line)."""
        return self.data_dir / "traces" / "spans.jsonl"

    @property
    def drift_workspace_dir(self) -> Path:
        """The local Evidently workspace with every run's drift snapshot (``make drift-ui``)."""
        return self.data_dir / "evidently"

    @property
    def dagster_home(self) -> Path:
        return self.data_dir / "dagster_home"

    @property
    def metrics_db(self) -> Path:
        """The run metrics table (orchestration.core.observability.metrics_table)."""
        return self.data_dir / "metrics" / "metrics.db"

    @property
    def alerts_dir(self) -> Path:
        return self.data_dir / "alerts"

    @property
    def alert_log(self) -> Path:
        """The JSONL record of every alert sent (always written, whatever the notifiers)."""
        return self.alerts_dir / "alerts.jsonl"

    @property
    def incident_book(self) -> Path:
        """The incident book: one alert per incident, a recovery notice when it clears."""
        return self.alerts_dir / "incidents.db"


# --- the process -------------------------------------------------------------------------------


def prefer_sleeping_openmp_threads() -> None:
    """Make OpenMP threads (LightGBM's) sleep while they wait instead of spinning, unless
    ``OMP_WAIT_POLICY`` is set already. Call it before LightGBM is imported: libgomp reads the
    variable once, when it loads.

    Spinning threads take the cores the working threads need whenever the machine has more
    runnable threads than cores (a shared machine, dbt or DuckDB next to the fit). Measured on
    the 100k training set (107,500 rows, 25 features, 2 threads, identical model): 45.8 s with
    spinning threads on a loaded 2-core machine, 8.1 s with sleeping ones.
    """
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def spark_workers_run_this_interpreter() -> None:
    """Make Spark's Python workers (the scoring UDF, Feast's pandas steps) run this interpreter
    unless ``PYSPARK_PYTHON`` is set already. pyspark reads the variable when a session starts
    (default ``python3`` from PATH, which lacks this project's packages unless PATH starts with
    this environment; the first spark-profile run failed with "No module named 'pandas'")."""
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)


# --- secrets, read at use ----------------------------------------------------------------------

_MISSING_KEY_IN_PRODUCTION = (
    f"{PSEUDONYM_KEY_ENV} is not set: CAMPAIGN_ENV=production requires a secret pseudonym key "
    "(the development key is public, so recipient refs could be joined back to customers)"
)


class DevelopmentKeyWarning(UserWarning):
    """Recipient refs are keyed with the public development key."""


def secret(name: str) -> str:
    """The value of the secret a config file references by environment variable name (a
    provider's ``token_env``, ``username_env``, ``password_env``); "" when it is not set."""
    return os.environ.get(name, "")


def pseudonym_key() -> bytes:
    """The key of the pseudonymous recipient refs (``CAMPAIGN_PSEUDONYM_KEY``), read at each use.

    Without it, production (``CAMPAIGN_ENV=production``) fails with a one-line error; any other
    deployment falls back to the public development key and warns, once.
    """
    key = os.environ.get(PSEUDONYM_KEY_ENV, "").strip()
    if key:
        return key.encode()
    _development_key_allowed(os.environ.get("CAMPAIGN_ENV", "").strip())
    return DEVELOPMENT_PSEUDONYM_KEY.encode()


@functools.cache
def _development_key_allowed(env: str) -> None:
    """Raise in production; warn (once per process and CAMPAIGN_ENV value) anywhere else."""
    env = env or Settings.model_fields["env"].default
    if env not in ENVIRONMENTS:
        raise SettingsError(
            f"environment variable CAMPAIGN_ENV={env!r} is not valid: expected one of "
            + ", ".join(ENVIRONMENTS)
        )
    if env == "production":
        raise SettingsError(_MISSING_KEY_IN_PRODUCTION)
    message = (
        f"{PSEUDONYM_KEY_ENV} is not set: recipient refs use the public development key "
        f"(CAMPAIGN_ENV={env}); set {PSEUDONYM_KEY_ENV} to a secret in any shared deployment"
    )
    logger.warning(message)
    warnings.warn(message, DevelopmentKeyWarning, stacklevel=3)


# --- one-line errors ---------------------------------------------------------------------------


def _env_var(name: str, field: FieldInfo) -> str:
    alias = field.validation_alias
    return alias if isinstance(alias, str) else f"{ENV_PREFIX}{name}".upper()


def _expected(field: FieldInfo) -> str:
    """What a field accepts, in words: its choices, or its kind and range."""
    annotation = field.annotation
    if get_origin(annotation) is not Literal:
        options = [a for a in get_args(annotation) if a is not type(None)]
        annotation = options[0] if options else annotation
    if get_origin(annotation) is Literal:
        return "one of " + ", ".join(str(a) for a in get_args(annotation))
    kind = {int: "an integer", float: "a number", bool: "true or false"}.get(annotation, "a value")
    if annotation is datetime:
        kind = "an ISO timestamp (e.g. 2026-11-23T09:00:00Z)"
    low = high = None
    for bound in field.metadata:
        if isinstance(bound, annotated_types.Gt):
            low = ("(", bound.gt)
        elif isinstance(bound, annotated_types.Ge):
            low = ("[", bound.ge)
        elif isinstance(bound, annotated_types.Lt):
            high = (")", bound.lt)
        elif isinstance(bound, annotated_types.Le):
            high = ("]", bound.le)
    if low and high:
        return f"{kind} in {low[0]}{low[1]}, {high[1]}{high[0]}"
    if low:
        return f"{kind} {'>' if low[0] == '(' else '>='} {low[1]}"
    if high:
        return f"{kind} {'<' if high[0] == ')' else '<='} {high[1]}"
    return kind


def _one_line(exc: ValidationError) -> str:
    """The validation errors as one line per variable, joined: variable, value, what it takes."""
    model = {"Settings": Settings, "Thresholds": Thresholds}.get(exc.title, Settings)
    by_key = {name: (name, f) for name, f in model.model_fields.items()}
    by_key |= {
        f.validation_alias: (name, f)
        for name, f in model.model_fields.items()
        if isinstance(f.validation_alias, str)
    }
    problems = []
    for error in exc.errors():
        if error["type"] == "default_factory_not_called":
            continue  # a default derived from a field that failed: that field is reported
        reason = error.get("ctx", {}).get("error")
        if error["type"] == "value_error" and reason is not None:
            problems.append(str(reason))  # a validator's own message, naming its variable
            continue
        key = error["loc"][0] if error["loc"] else None
        if key not in by_key:
            problems.append(f"{model.__name__}: {error['msg']}")
            continue
        name, field = by_key[key]
        problems.append(
            f"environment variable {_env_var(name, field)}={error['input']!r} is not "
            f"valid: expected {_expected(field)}"
        )
    return "; ".join(problems)
