"""Benchmark: the whole pipeline at given scales, each in a fresh data directory, beside its floor.

    python scripts/bench_pipeline.py --customers 100000 1000000
    python scripts/bench_pipeline.py --customers 10000000      # make bench-10m

Per scale it prints the pipeline's wall time, per-stage seconds and rows, and peak memory (the
whole process tree, dbt and the notebook kernel included, sampled every 0.2 s; and the largest
single process), then the floor measured in the same bench run on the same data (see
``scripts/bench_floor.py``: the bare DuckDB queries dbt ran, the LightGBM fit/predict, a numpy
policy pass) and the ratio pipeline / floor. Figures, not a pass/fail test: on a shared machine
they move with the load, so say so next to them.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil

PROJECT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT / "scripts"))

# the stages the floor stands for: pipeline step(s) -> floor part
FLOOR_OF = {
    "warehouse": ("warehouse_models",),
    "model": ("uplift_model", "customer_scores"),  # the floor fits and predicts every customer
    "policy": ("campaign_decisions",),
}


class TreeMemory:
    """Peak resident memory of a process and its descendants, sampled in a thread."""

    def __init__(self, pid: int, every: float = 0.2, log: Path | None = None) -> None:
        self.root = psutil.Process(pid)
        self.every = every
        self.log = log  # the run's terminal output: its size at the peak says which stage
        self.peak_tree = 0
        self.peak_single = 0
        self.log_size_at_peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._stop.is_set():
            try:
                procs = [self.root, *self.root.children(recursive=True)]
            except psutil.NoSuchProcess:
                return
            sizes = []
            for proc in procs:
                with contextlib.suppress(psutil.Error):
                    sizes.append(proc.memory_info().rss)
            if sum(sizes) > self.peak_tree:
                self.peak_tree = sum(sizes)
                with contextlib.suppress(OSError):
                    self.log_size_at_peak = self.log.stat().st_size if self.log else 0
            self.peak_single = max(self.peak_single, max(sizes, default=0))
            self._stop.wait(self.every)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def _environment(data_dir: Path) -> dict[str, str]:
    return {
        **os.environ,
        "CAMPAIGN_DATA_DIR": str(data_dir),
        "DAGSTER_HOME": str(data_dir / "dagster_home"),
        "MLFLOW_TRACKING_URI": f"sqlite:///{data_dir / 'mlflow' / 'mlflow.db'}",
    }


def run_pipeline(customers: int, root: Path) -> tuple[dict, Path]:
    data_dir = root / f"customers_{customers}"
    shutil.rmtree(data_dir, ignore_errors=True)
    (data_dir / "dagster_home").mkdir(parents=True)
    shutil.copy(PROJECT / "dagster.yaml", data_dir / "dagster_home" / "dagster.yaml")
    summary = data_dir / "summary.json"
    log = data_dir / "bench_stdout.log"
    command = [
        str(Path(sys.executable).parent / "campaign"),
        "run",
        "--customers",
        str(customers),
        "--summary-json",
        str(summary),
    ]
    started = time.perf_counter()
    with log.open("w") as out:
        process = subprocess.Popen(
            command, env=_environment(data_dir), cwd=PROJECT, stdout=out, stderr=subprocess.STDOUT
        )
        memory = TreeMemory(process.pid, log=log)
        process.wait()
        memory.stop()
    wall = time.perf_counter() - started
    if not summary.exists():
        print(log.read_text()[-4000:])
        raise SystemExit(f"run at {customers:,} customers failed before writing a summary")
    result = json.loads(summary.read_text())
    result["process_wall_seconds"] = round(wall, 1)
    result["peak_tree_rss_mb"] = round(memory.peak_tree / 2**20)
    result["peak_single_rss_mb"] = round(memory.peak_single / 2**20)
    result["peak_after_stage"] = _last_stage(log.read_bytes()[: memory.log_size_at_peak])
    return result, data_dir


def _last_stage(output: bytes) -> str:
    """The last stage line (``  ✓ step  12.3s ...``) of the run's output so far (whole
    lines only)."""
    output = output[: output.rfind(b"\n") + 1]
    stages = [
        line.split()[1]
        for line in output.decode(errors="replace").splitlines()
        if line.strip()[:1] in {"✓", "!", "✗"} and len(line.split()) > 1
    ]
    return stages[-1] if stages else "(before the first stage)"


def measure_floor(result: dict, data_dir: Path) -> dict:
    """The floor parts on this run's data, in this (bench) process."""
    os.environ.update(_environment(data_dir))
    from bench_floor import model_floor, policy_floor, warehouse_floor

    from orchestration.settings import Settings

    s = Settings.from_env()
    model = result["materializations"].get("uplift_model", {})
    train_rows = model.get("train_rows")
    return {
        "warehouse": warehouse_floor(
            result["run_id"], f"{s.warehouse_memory_gb}GB", s.warehouse_threads
        ),
        "model": model_floor(data_dir, int(train_rows) if train_rows else None),
        "policy": policy_floor(data_dir),
    }


def _ratio(pipeline: float, floor: float) -> str:
    return f"{pipeline / floor:5.1f}x" if floor > 0 else "  -  "


def report(customers: int, r: dict, floor: dict) -> None:
    stages = {s["step"]: s for s in r["stages"]}
    print(
        f"\n== {customers:,} customers: {r['status']}  pipeline {r['wall_seconds']:.1f} s "
        f"(process wall {r['process_wall_seconds']} s), peak RSS {r['peak_tree_rss_mb']:,} MB "
        f"process tree / {r['peak_single_rss_mb']:,} MB largest process (the peak came after "
        f"{r.get('peak_after_stage', '?')} had finished)"
    )
    print(f"   {'stage':<46} {'status':<8} {'seconds':>8} {'rows':>12}")
    for stage in r["stages"]:
        seconds = f"{stage['seconds']:.1f}" if stage["seconds"] is not None else "-"
        rows = f"{stage['rows']:,}" if stage.get("rows") is not None else ""
        print(f"   {stage['step']:<46} {stage['status']:<8} {seconds:>8} {rows:>12}")
    print(f"   {'floor (same data, same bench run)':<46} {'pipeline':>8} {'floor':>8} {'ratio':>7}")
    total_pipeline = 0.0
    for part, steps in FLOOR_OF.items():
        seconds = sum(stages[s]["seconds"] or 0.0 for s in steps if s in stages)
        total_pipeline += seconds
        f = floor[part]
        what = {
            "warehouse": f"{f.get('models', 0)} models + {f.get('tests', 0)} tests in DuckDB",
            "model": f"LightGBM 2 fits on {f.get('train_rows', 0):,} rows, predict "
            f"{f.get('scored_rows', 0):,}",
            "policy": f"numpy pass over {f.get('rows', 0):,} scored customers",
        }[part]
        print(
            f"   {part + ': ' + what:<46} {seconds:8.1f} {f['seconds']:8.1f} "
            f"{_ratio(seconds, f['seconds']):>7}"
        )
    floor_total = sum(f["seconds"] for f in floor.values())
    print(
        f"   {'whole pipeline vs the sum of the floors':<46} {r['wall_seconds']:8.1f} "
        f"{floor_total:8.1f} {_ratio(r['wall_seconds'], floor_total):>7}"
    )
    model = r["materializations"].get("uplift_model", {})
    if model:
        print(
            f"   model: trained on {model.get('train_rows')} rows "
            f"({model.get('training_sample', 'all rows')}), qini {model.get('qini'):.4f} "
            f"{model.get('qini_ci')}, uplift@30 {model.get('uplift_at_30'):.4f}, oracle ratio "
            f"{model.get('oracle_ratio_qini', float('nan')):.2f}"
        )
    sends = r["materializations"].get("campaign_sends", {})
    if sends:
        print(
            f"   sends: delivered {sends.get('delivered')}, deferred {sends.get('deferred')}, "
            f"failed {sends.get('failed')}, cancelled {sends.get('cancelled')}"
        )
    failed = [f"{c['asset']}:{c['check']}" for c in r["checks"] if not c["passed"]]
    print(f"   checks: {len(r['checks'])} evaluated, failed: {failed or 'none'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, nargs="+", default=[100_000])
    parser.add_argument("--root", type=Path, default=PROJECT / "data" / "bench")
    parser.add_argument("--keep", action="store_true", help="keep each scale's data directory")
    args = parser.parse_args()
    print(f"machine: {psutil.cpu_count()} CPUs, {psutil.virtual_memory().total / 2**30:.0f} GB")
    for customers in args.customers:
        load = os.getloadavg()[0]
        result, data_dir = run_pipeline(customers, args.root)
        floor = measure_floor(result, data_dir)
        print(f"   (load average at start {load:.1f})", end="")
        report(customers, result, floor)
        if not args.keep:
            shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
