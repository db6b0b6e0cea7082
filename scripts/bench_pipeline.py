"""Benchmark: the whole pipeline at given scales, each in a fresh data directory.

    python scripts/bench_pipeline.py --customers 100000 1000000

Prints wall time, peak memory and per-stage seconds per scale (figures, not a pass/fail test).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]


def bench(customers: int, root: Path) -> dict:
    data_dir = root / f"customers_{customers}"
    shutil.rmtree(data_dir, ignore_errors=True)
    data_dir.mkdir(parents=True)
    env = {
        **os.environ,
        "CAMPAIGN_DATA_DIR": str(data_dir),
        "DAGSTER_HOME": str(data_dir / "dagster_home"),
        "MLFLOW_TRACKING_URI": f"sqlite:///{data_dir / 'mlflow' / 'mlflow.db'}",
    }
    (data_dir / "dagster_home").mkdir()
    shutil.copy(PROJECT / "dagster.yaml", data_dir / "dagster_home" / "dagster.yaml")
    summary = data_dir / "summary.json"
    started = time.perf_counter()
    completed = subprocess.run(
        [
            str(Path(sys.executable).parent / "campaign"),
            "run",
            "--customers",
            str(customers),
            "--summary-json",
            str(summary),
        ],
        env=env,
        cwd=PROJECT,
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.perf_counter() - started
    if not summary.exists():
        print(completed.stdout[-3000:], completed.stderr[-3000:])
        raise SystemExit(f"run at {customers} customers failed before writing a summary")
    result = json.loads(summary.read_text())
    result["process_wall_seconds"] = round(wall, 1)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, nargs="+", default=[100_000])
    parser.add_argument("--root", type=Path, default=PROJECT / "data" / "bench")
    args = parser.parse_args()
    for customers in args.customers:
        r = bench(customers, args.root)
        print(
            f"\n== {customers:,} customers: {r['status']}  process wall {r['process_wall_seconds']}s "
            f"(pipeline {r['wall_seconds']}s), peak RSS {r['peak_rss_mb']:,.0f} MB"
        )
        for stage in r["stages"]:
            seconds = f"{stage['seconds']:.1f}" if stage["seconds"] is not None else "-"
            print(f"   {stage['step']:<45} {stage['status']:<8} {seconds:>8} s")
        model = r["materializations"].get("uplift_model", {})
        if model:
            print(
                f"   model: qini {model.get('qini'):.4f} {model.get('qini_ci')}, uplift@30 "
                f"{model.get('uplift_at_30'):.4f} {model.get('uplift_at_30_ci')}, auuc "
                f"{model.get('auuc', float('nan')):.4f} {model.get('auuc_ci')}, "
                f"oracle ratio {model.get('oracle_ratio_qini', float('nan')):.2f}"
            )
        sends = r["materializations"].get("campaign_sends", {})
        if sends:
            print(
                f"   sends: delivered {sends.get('delivered')}, deferred {sends.get('deferred')}, "
                f"failed {sends.get('failed')}, cancelled {sends.get('cancelled')}, provider p50 "
                f"{sends.get('provider_latency_p50_ms')} ms, breaker {sends.get('breaker_state')}"
            )
        failed = [f"{c['asset']}:{c['check']}" for c in r["checks"] if not c["passed"]]
        print(f"   checks: {len(r['checks'])} evaluated, failed: {failed or 'none'}")


if __name__ == "__main__":
    main()
