"""The floor of a pipeline run: the same work with nothing around it, on the run's own data.

Used by ``scripts/bench_pipeline.py`` right after each run, in the same bench:

* warehouse: every model and data test dbt ran in that run (its compiled SQL, from the run's
  ``run_results.json``), executed in order in one fresh DuckDB database with the run's
  memory limit and threads: views, tables and Parquet exports as dbt materialized them, each
  test's failing rows counted. dbt's unit tests (fixture rows, not the data) are left out.
* model: LightGBM fit of the two T-learner models (treated, control) with the pipeline's
  parameters on the rows the pipeline trained on, and the prediction of every scoring row.
* policy: one numpy pass over the scored customers: consent and suppression masks, the global
  control group by hash, a rank by predicted uplift and the budget cut.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

PROJECT = Path(__file__).resolve().parents[1]
TARGET_DIR = PROJECT / "dbt_project" / "target"


def run_results(run_id: str) -> Path:
    """The run_results.json dagster-dbt wrote for this Dagster run."""
    found = sorted(TARGET_DIR.glob(f"warehouse_models-{run_id[:7]}-*/run_results.json"))
    if not found:
        raise SystemExit(f"no dbt run_results.json for run {run_id[:8]} under {TARGET_DIR}")
    return found[-1]


def warehouse_floor(run_id: str, memory_limit: str, threads: int) -> dict:
    results_path = run_results(run_id)
    results = json.loads(results_path.read_text())["results"]
    manifest = json.loads((results_path.parent / "manifest.json").read_text())["nodes"]
    work = Path(tempfile.mkdtemp(prefix="floor_"))
    con = duckdb.connect(
        str(work / "warehouse.duckdb"),
        config={"memory_limit": memory_limit, "threads": threads},
    )
    try:  # dbt's profile pins TimeZone, which needs DuckDB's icu extension (when available)
        con.execute("load icu")
        con.execute("set TimeZone = 'UTC'")
    except duckdb.Error:
        pass
    models = tests = 0
    started = time.perf_counter()
    try:
        for result in results:
            uid, sql = result["unique_id"], result.get("compiled_code") or ""
            if uid.startswith("model."):
                _materialize(con, manifest[uid], result["relation_name"], sql, work)
                models += 1
            elif uid.startswith("test."):
                con.execute(f"select count(*) from ({sql}) as failures").fetchone()
                tests += 1
    finally:
        con.close()
        seconds = time.perf_counter() - started
        shutil.rmtree(work, ignore_errors=True)
    return {"seconds": seconds, "models": models, "tests": tests}


def _materialize(con, node: dict, relation: str, sql: str, work: Path) -> None:
    kind = node["config"]["materialized"]
    if kind == "view":
        con.execute(f"create or replace view {relation} as ({sql})")
    elif kind == "table":
        con.execute(f"create or replace table {relation} as ({sql})")
    else:  # external: a Parquet file and a view over it, as dbt-duckdb writes them
        path = work / f"{node['name']}.parquet"
        con.execute(f"copy ({sql}) to '{path}' (format parquet)")
        con.execute(f"create or replace view {relation} as select * from read_parquet('{path}')")


def model_floor(data_dir: Path, train_rows: int | None) -> dict:
    # learners first: it sets OpenMP's wait policy before LightGBM loads, as in the pipeline
    from orchestration.core.features.feast_store import FEATURE_SERVICE, feature_names
    from orchestration.core.model.learners import LGBMClassifier, lgbm_params
    from orchestration.core.model.training import feature_matrix
    from orchestration.settings import Settings

    s = Settings.from_env()
    features = feature_names(s, FEATURE_SERVICE)
    train = pd.read_parquet(data_dir / "pipeline" / "training_set.parquet")
    if train_rows is not None and train_rows < len(train):
        train = train.sample(n=train_rows, random_state=0)
    scoring = pd.read_parquet(data_dir / "pipeline" / "scoring_features.parquet")
    started = time.perf_counter()
    X, t, y = feature_matrix(train, features), train["is_treated"].to_numpy(), train["label"]
    params = lgbm_params()
    treated = LGBMClassifier(**params).fit(X[t == 1], y[t == 1])
    control = LGBMClassifier(**params).fit(X[t == 0], y[t == 0])
    fit = time.perf_counter() - started
    inputs = feature_matrix(scoring, features)
    uplift = treated.predict_proba(inputs)[:, 1] - control.predict_proba(inputs)[:, 1]
    return {
        "seconds": time.perf_counter() - started,
        "fit_seconds": fit,
        "train_rows": len(train),
        "scored_rows": int(uplift.size),
    }


def policy_floor(data_dir: Path, channel: str = "email", budget: int = 5_000) -> dict:
    scores = pd.read_parquet(data_dir / "pipeline" / "customer_scores.parquet")
    customers = pd.read_parquet(data_dir / "warehouse" / "exports" / "dim_customers.parquet")
    started = time.perf_counter()
    frame = scores.merge(customers, on="customer_id", how="inner")
    uplift = frame["uplift__uplift_model@champion"].to_numpy(dtype=float)
    eligible = (
        frame[f"is_{channel}_opted_in"].to_numpy(dtype=bool)
        & ~frame["is_suppressed_all_channels"].to_numpy(dtype=bool)
        & ~frame[f"is_{channel}_suppressed"].to_numpy(dtype=bool)
    )
    ids = frame["customer_id"].to_numpy().astype(np.uint64)
    control = ((ids * np.uint64(0x9E3779B97F4A7C15)) >> np.uint64(54)) < np.uint64(51)  # ~5 %
    candidate = eligible & ~control & (uplift > 0)
    order = np.argsort(-np.where(candidate, uplift, -np.inf), kind="stable")
    chosen = order[: min(budget, int(candidate.sum()))]
    return {
        "seconds": time.perf_counter() - started,
        "rows": len(frame),
        "selected": int(chosen.size),
    }
