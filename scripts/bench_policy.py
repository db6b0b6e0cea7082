"""Benchmark: policy evaluation for N candidates across 3 campaigns (default 10M).

    python scripts/bench_policy.py --candidates 10000000

Synthetic inputs shaped like the pipeline's (consent, suppression, reachability, time zones,
scores, a ledger history with today's earlier sends). Prints seconds per phase; not a test.
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime

import numpy as np
import pandas as pd

from orchestration.core.decisioning.campaigns import Campaign
from orchestration.core.decisioning.engine import CampaignScores, PolicyInputs, evaluate
from orchestration.core.decisioning.policy import load_policy
from orchestration.settings import POLICY_FILE

ZONES = [
    "America/New_York",
    "America/Los_Angeles",
    "Europe/London",
    "Europe/Berlin",
    "Asia/Singapore",
]


def inputs(n: int, seed: int = 0) -> tuple[PolicyInputs, list[Campaign]]:
    rng = np.random.default_rng(seed)
    ids = np.arange(1, n + 1, dtype=np.int64)
    candidates = pd.DataFrame(
        {
            "customer_id": ids,
            "region": pd.Categorical.from_codes(
                rng.integers(0, 5, n), ["us-east", "us-west", "eu-west", "eu-central", "apac"]
            ),
            "time_zone": pd.Categorical.from_codes(rng.integers(0, 5, n), ZONES),
            "signed_up_at": pd.Timestamp("2025-01-01", tz="UTC"),
        }
    )
    for channel, p in (("email", 0.75), ("sms", 0.35), ("push", 0.5)):
        candidates[f"is_{channel}_opted_in"] = rng.random(n) < p
        candidates[f"is_{channel}_suppressed"] = rng.random(n) < 0.03
        candidates[f"is_{channel}_reachable"] = rng.random(n) < 0.97
    campaigns = [
        Campaign(
            name="email_winback",
            channel="email",
            max_sends=n // 20,
            holdout_share=0.1,
            budget={"cost_per_send": 0.002, "value_per_conversion": 45},
            priority=1,
        ),
        Campaign(
            name="sms_flash_sale",
            channel="sms",
            max_sends=n // 50,
            holdout_share=0.1,
            budget={"cost_per_send": 0.05, "value_per_conversion": 45},
        ),
        Campaign(
            name="push_new_arrivals",
            channel="push",
            max_sends=n // 20,
            holdout_share=0.05,
            budget={"cost_per_send": 0.0, "value_per_conversion": 45},
        ),
    ]
    versions = np.full(n, "3", dtype=object)
    by = np.full(n, "champion", dtype=object)
    scores = {c.name: CampaignScores(rng.normal(0.01, 0.05, n), versions, by) for c in campaigns}
    m = n // 10  # a tenth of the customers were messaged in the last week
    history = pd.DataFrame(
        {
            "campaign": "email_winback",
            "customer_id": rng.choice(ids, m),
            "channel": rng.choice(["email", "sms", "push"], m),
            "send_date": (
                pd.Timestamp("2026-11-23") - pd.to_timedelta(rng.integers(0, 7, m), "D")
            ).strftime("%Y-%m-%d"),
        }
    )
    decided_at = datetime(2026, 11, 23, 7, 30, tzinfo=UTC)
    return PolicyInputs(candidates, scores, history, decided_at), campaigns


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--candidates", type=int, default=10_000_000)
    args = parser.parse_args()
    started = time.perf_counter()
    data, campaigns = inputs(args.candidates)
    built = time.perf_counter()
    policy = load_policy(POLICY_FILE)
    decisions = evaluate(data, campaigns, policy)
    evaluated = time.perf_counter()
    counts = decisions.counts()
    print(f"candidates: {args.candidates:,} x {len(campaigns)} campaigns")
    print(f"building inputs: {built - started:.1f} s")
    print(f"policy evaluation: {evaluated - built:.2f} s")
    for name, row in counts.items():
        print(
            f"  {name}: "
            + ", ".join(f"{k[9:]}={v:,}" for k, v in row.items() if k.startswith("decision_"))
        )


if __name__ == "__main__":
    main()
