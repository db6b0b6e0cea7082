"""Read-side helpers for analysts (the notebooks import these; nothing here writes).

The warehouse is read through the one warehouse reader (``orchestration.core.world.warehouse``:
the Parquet exports, or the Postgres tables in the production profile) into an in-memory DuckDB,
never by opening the DuckDB file: a reader holding that file, even read-only, makes the next dbt
build fail to lock it.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pandas as pd

from orchestration.core.world.warehouse import ParquetExports, open_warehouse
from orchestration.settings import Settings


def open_marts(settings: Settings):
    """An in-memory DuckDB connection with one view per exported mart (dim_, fct_, feat_).

    Safe to keep open while the pipeline runs: it reads Parquet files (or, in the production
    profile, a copy of the Postgres marts taken now), not the warehouse file.
    """
    import duckdb

    warehouse = open_warehouse(settings)
    marts = warehouse.marts()
    if not marts:
        raise FileNotFoundError(
            f"the warehouse has no marts yet ({warehouse.describe('dim_customers')}): run the "
            "pipeline once (`make run`)"
        )
    con = duckdb.connect()
    for name in marts:
        if isinstance(warehouse, ParquetExports):
            path = warehouse.describe(name)
            con.execute(f"create view {name} as select * from read_parquet('{path}')")
        else:
            con.register(f"_{name}_frame", warehouse.read_table(name))
            con.execute(f"create view {name} as select * from _{name}_frame")
    return con


def point_in_time_features(
    settings: Settings, customer_ids: list[int], timestamps: list[datetime | str]
) -> pd.DataFrame:
    """Features of each customer as of each timestamp (the cross product), from Feast."""
    from orchestration.core.features.feast_store import historical_features

    entity = pd.MultiIndex.from_product(
        [customer_ids, pd.to_datetime(timestamps, utc=True)],
        names=["customer_id", "event_timestamp"],
    ).to_frame(index=False)
    return historical_features(settings, entity).sort_values(["customer_id", "event_timestamp"])


def model_versions(settings: Settings) -> pd.DataFrame:
    """Every registered version of the uplift model with its aliases and evaluation metrics."""
    from orchestration.core.model.registry import configure

    client = configure(settings)
    rows = []
    versions = client.search_model_versions(f"name = '{settings.model_name}'")
    # search results carry no aliases (MLflow 3): the registered model has them
    aliases: dict[str, list[str]] = {}
    if versions:
        for alias, number in client.get_registered_model(settings.model_name).aliases.items():
            aliases.setdefault(str(number), []).append(alias)
    for version in versions:
        run = client.get_run(version.run_id)
        rows.append(
            {
                "version": int(version.version),
                "aliases": ", ".join(sorted(aliases.get(str(version.version), []))),
                "created": pd.Timestamp(version.creation_timestamp, unit="ms", tz="UTC"),
                "run_id": version.run_id,
                "learner": run.data.params.get("learner"),
                **{k: v for k, v in run.data.metrics.items()},
            }
        )
    return (
        pd.DataFrame(rows).sort_values("version").reset_index(drop=True) if rows else pd.DataFrame()
    )


def model_curve(settings: Settings, run_id: str) -> Path | None:
    """Local path of the Qini curve image logged with a training run (None if it has none)."""
    import mlflow

    from orchestration.core.model.registry import configure

    client = configure(settings)
    for artifact in client.list_artifacts(run_id, "evaluation"):
        if artifact.path.endswith(".png"):
            return Path(
                mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=artifact.path)
            )
    return None


def latest_decisions(settings: Settings) -> pd.DataFrame:
    """The decisions of the most recent pipeline run (all campaigns)."""
    files = sorted(
        Path(settings.decisions_dir).glob("decided_on=*/run=*.parquet"),
        key=lambda p: p.stat().st_mtime,
    )
    if not files:
        raise FileNotFoundError(
            f"no decisions under {settings.decisions_dir}: run the pipeline once (`make run`)"
        )
    return pd.read_parquet(files[-1])


def decisions_by_reason(decisions: pd.DataFrame) -> pd.DataFrame:
    """Campaign x (decision, reason) counts, the first table of a campaign report."""
    return (
        decisions.groupby(["campaign", "decision", "reason"], observed=True)
        .size()
        .rename("customers")
        .reset_index()
        .sort_values(["campaign", "customers"], ascending=[True, False])
        .reset_index(drop=True)
    )


def send_ledger(settings: Settings) -> pd.DataFrame:
    """Send ledger rows (no contact details: those live only in the provider)."""
    from orchestration.core.delivery.ledger import SendLedger

    path = settings.gateway_dir / "ledger.db"
    if not path.exists():
        return pd.DataFrame()
    return SendLedger(path).frame()


def campaign_results(settings: Settings) -> pd.DataFrame:
    """Measured lift per campaign and send day (the campaign_results asset's table)."""
    path = Path(settings.reports_dir) / "campaign_results" / "campaign_results.parquet"
    return pd.read_parquet(path) if path.exists() else pd.DataFrame()


def run_metrics(settings: Settings) -> pd.DataFrame:
    """The seed metrics of every recorded run (one row per run)."""
    from orchestration.core.observability.metrics_table import read_run_metrics

    return read_run_metrics(Path(settings.data_dir) / "metrics" / "metrics.db")
