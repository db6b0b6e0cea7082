"""Benchmark: the uplift metrics with bootstrap intervals (was a timed unit test; timings belong here).

    .venv/bin/python scripts/bench_metrics.py --rows 50000 200000 --n-boot 200

A synthetic scored holdout (binary outcome, 50/50 treatment, an informative score). Prints the
seconds of ``evaluate_uplift`` (Qini, AUUC, uplift@k, each with a stratified bootstrap interval)
and the process's peak RSS. Target: 50k rows x 200 resamples in under 8 s on 2 cores.
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np

from orchestration.core.model.metrics import evaluate_uplift


def scored_holdout(rows: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.random(rows)
    t = rng.integers(0, 2, rows)
    y = (rng.random(rows) < 0.05 + 0.1 * x * t).astype(np.int8)
    return y, t, x


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[50_000, 200_000])
    parser.add_argument("--n-boot", type=int, default=200)
    args = parser.parse_args()
    print(f"{'rows':>10} {'resamples':>10} {'seconds':>9} {'qini':>8}")
    for rows in args.rows:
        y, t, x = scored_holdout(rows)
        started = time.perf_counter()
        figures = evaluate_uplift(y, t, x, n_boot=args.n_boot)
        seconds = time.perf_counter() - started
        print(f"{rows:>10,} {args.n_boot:>10} {seconds:>9.2f} {figures['qini']:>8.4f}")
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS {peak_mb:,.0f} MB")


if __name__ == "__main__":
    main()
