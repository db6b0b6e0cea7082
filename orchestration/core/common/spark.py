"""The pipeline process's Spark session (the spark profile), built from the settings.

dbt-spark builds the warehouse in its own process (``method: session``) and keeps the catalog in
a Hive metastore only that process opens (embedded Derby allows one). This session is the
pipeline's: it reads the warehouse tables by their directories, serves Feast's Spark offline
store and runs the scoring UDF. It has no Hive catalog, so it never locks dbt's metastore.

pyspark is imported inside the function (the JVM starts on the first call, ~20 s on 2 cores);
``getOrCreate`` hands every later caller in the process the same session.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from orchestration.settings import PROJECT_DIR, spark_workers_run_this_interpreter

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from orchestration.settings import Settings

APP_NAME = "campaign_pipeline"
LOG_CONFIG = PROJECT_DIR / "config" / "spark-log4j2.properties"
MISSING_PYSPARK = (
    "CAMPAIGN_PROFILE=spark needs pyspark, dbt-spark and feast[spark]: install the spark extra "
    "with `make setup-spark`"
)


def spark_conf(settings: Settings) -> dict[str, str]:
    """The session's configuration: master, memory, UTC, Parquet timestamps as UTC instants.

    Whoever starts the session (our reader, or Feast's offline store with this configuration)
    starts it with workers on this interpreter (``settings.spark_workers_run_this_interpreter``).
    """
    spark_workers_run_this_interpreter()
    tmp = settings.spark_dir / "tmp"
    return {
        "spark.master": settings.spark_master,
        "spark.app.name": APP_NAME,
        "spark.driver.memory": f"{max(int(settings.spark_driver_memory_gb), 1)}g",
        "spark.sql.warehouse.dir": str(settings.spark_warehouse_dir),
        "spark.local.dir": str(tmp),
        "spark.sql.session.timeZone": "UTC",
        # UTC-adjusted microseconds (not INT96): pandas and DuckDB read them as UTC instants
        "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        "spark.sql.shuffle.partitions": "4",
        # the UDF's Python workers run this interpreter (its packages, this project)
        "spark.pyspark.python": sys.executable,
        "spark.pyspark.driver.python": sys.executable,
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        # Spark's log4j output to <data>/spark/logs/pipeline.log, not the console
        # a driver out of heap exits (the step fails and says why) instead of hanging: an
        # OutOfMemoryError in Spark's Arrow server thread left toPandas waiting forever
        "spark.driver.extraJavaOptions": (
            "-XX:+ExitOnOutOfMemoryError "
            f"-Dlog4j2.configurationFile={LOG_CONFIG} "
            f"-Dcampaign.spark.log={settings.spark_dir / 'logs' / 'pipeline.log'}"
        ),
    }


def spark_session(settings: Settings) -> SparkSession:
    """The process's Spark session on ``settings.spark_master`` (created on first use)."""
    try:
        from pyspark.sql import SparkSession
    except ImportError as exc:  # pragma: no cover - depends on the installed extra
        raise RuntimeError(MISSING_PYSPARK) from exc

    (settings.spark_dir / "tmp").mkdir(parents=True, exist_ok=True)
    builder = SparkSession.builder
    for key, value in spark_conf(settings).items():
        builder = builder.config(key, value)
    return builder.getOrCreate()
