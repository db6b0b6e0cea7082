"""Benchmark: the same pipeline on DuckDB (the local profile) and on Spark (the spark profile).

    python scripts/bench_spark.py --customers 1000000 10000000     # make bench-spark
    python scripts/bench_spark.py --customers 100000                 # a quick look

Per scale, each profile runs ``campaign run`` on a fresh data directory of its own (the same
world size and seed), and the table puts their per-stage seconds side by side with the whole
run's wall time and peak memory (the process tree: the pipeline, dbt and, on Spark, the JVMs,
sampled every 0.2 s). Spark runs on ``CAMPAIGN_SPARK_MASTER`` (default ``local[2]``).

Figures, not a pass/fail test. On one machine Spark is expected to be slower: it pays a JVM
start per process (dbt's and the pipeline's), a Hive metastore, shuffles between stages and
Arrow copies between the JVM and Python, for parallelism that one machine does not have. It is
for data that outgrows one machine, on a cluster. On a shared machine the figures move with the
load: the load average is printed with them.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

import psutil

PROJECT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT / "scripts"))

from bench_pipeline import run_pipeline  # noqa: E402

PROFILES = {"duckdb": "local", "spark": "spark"}
# the stages where the footing differs (everything else is the same code on both)
SPARK_STAGES = (
    "warehouse_models",
    "feature_snapshot",
    "training_set",
    "scoring_features",
    "customer_scores",
    "online_features",
    "campaign_decisions",
)


def run_profile(profile: str, customers: int, root: Path) -> dict:
    os.environ["CAMPAIGN_PROFILE"] = PROFILES[profile]
    try:
        result, data_dir = run_pipeline(customers, root / profile)
    finally:
        os.environ.pop("CAMPAIGN_PROFILE", None)
    result["data_dir"] = data_dir
    result["load_at_end"] = os.getloadavg()[0]
    return result


def _seconds(result: dict, step: str) -> str:
    for stage in result["stages"]:
        if stage["step"] == step and stage["seconds"] is not None:
            return f"{stage['seconds']:.1f}"
    return "-"


def report(customers: int, results: dict[str, dict]) -> None:
    duck, spark = results["duckdb"], results["spark"]
    print(f"\n== {customers:,} customers")
    print(f"   {'stage':<28} {'DuckDB s':>10} {'Spark s':>10}")
    for step in SPARK_STAGES:
        print(f"   {step:<28} {_seconds(duck, step):>10} {_seconds(spark, step):>10}")
    print(
        f"   {'pipeline (summary wall)':<28} {duck['wall_seconds']:>10.1f} {spark['wall_seconds']:>10.1f}"
    )
    print(
        f"   {'process wall (with start-up)':<28} {duck['process_wall_seconds']:>10.1f} "
        f"{spark['process_wall_seconds']:>10.1f}"
    )
    print(
        f"   {'peak RSS, process tree MB':<28} {duck['peak_tree_rss_mb']:>10,} "
        f"{spark['peak_tree_rss_mb']:>10,}"
    )
    print(f"   {'status':<28} {duck['status']:>10} {spark['status']:>10}")
    print(
        f"   (load average at the end of each run: DuckDB {duck['load_at_end']:.1f}, "
        f"Spark {spark['load_at_end']:.1f})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--root", type=Path, default=PROJECT / "data" / "bench_spark")
    parser.add_argument("--keep", action="store_true", help="keep each run's data directory")
    parser.add_argument(
        "--profiles",
        nargs="+",
        choices=list(PROFILES),
        default=list(PROFILES),
        help="which, in order",
    )
    args = parser.parse_args()
    master = os.environ.get("CAMPAIGN_SPARK_MASTER", "local[2]")
    print(
        f"machine: {psutil.cpu_count()} CPUs, {psutil.virtual_memory().total / 2**30:.0f} GB; "
        f"Spark master {master}"
    )
    for customers in args.customers:
        results = {}
        for profile in args.profiles:
            results[profile] = run_profile(profile, customers, args.root)
            r = results[profile]
            print(
                f"   {customers:,} customers on {profile}: {r['status']}, pipeline "
                f"{r['wall_seconds']:.1f} s, peak RSS {r['peak_tree_rss_mb']:,} MB",
                flush=True,
            )
        if set(results) == set(PROFILES):
            report(customers, results)
        if not args.keep:
            for result in results.values():
                shutil.rmtree(result["data_dir"], ignore_errors=True)


if __name__ == "__main__":
    main()
