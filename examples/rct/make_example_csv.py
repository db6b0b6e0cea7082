"""How ``rct.csv`` was made: a seeded, generic randomized campaign with customer attributes.

It stands for the CSV a team exports from a past experiment (one row per customer: who they are,
which arm they were in, what they did in the two weeks after): nothing in it comes from the
pipeline's synthetic world. The effect lives in the attributes on purpose (premium customers
respond, basic ones hardly), so a model that reads the attributes can find it.

    python examples/rct/make_example_csv.py   # rewrites examples/rct/rct.csv (same bytes)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

ROWS = 1_500
SEED = 2025
SENT_AT = pd.Timestamp("2025-03-03 09:00:00", tz="UTC")
PLANS = ("basic", "plus", "premium")
UPLIFT_BY_PLAN = {"basic": 0.0, "plus": 0.12, "premium": 0.35}
AGE_BANDS = ("18-29", "30-44", "45-64", "65+")


def make(rows: int = ROWS, seed: int = SEED) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    plan = rng.choice(PLANS, rows, p=[0.45, 0.35, 0.20])
    tenure_months = rng.integers(2, 60, rows)
    signup = SENT_AT - pd.to_timedelta(tenure_months * 30 + rng.integers(0, 30, rows), unit="D")
    member = rng.random(rows) < 0.4
    arm = np.where(rng.random(rows) < 0.5, "treatment", "control")
    base = 0.10 + 0.05 * member
    lift = np.array([UPLIFT_BY_PLAN[p] for p in plan]) * (arm == "treatment")
    converted = rng.random(rows) < base + lift
    visited = converted | (rng.random(rows) < 0.25)
    offset = pd.to_timedelta(rng.integers(3_600, 14 * 86_400, rows), unit="s")  # the 14 days after
    last_purchase = SENT_AT - pd.to_timedelta(rng.integers(5, 300, rows), unit="D")
    return pd.DataFrame(
        {
            "customer_id": np.arange(1, rows + 1),
            "signup_date": signup.strftime("%Y-%m-%d"),
            "region": rng.choice(("north", "south", "east", "west"), rows),
            "plan": plan,
            "loyalty_member": np.where(member, "yes", "no"),
            "tenure_months": tenure_months,
            "age_band": rng.choice(AGE_BANDS, rows, p=[0.25, 0.30, 0.30, 0.15]),
            "arm": arm,
            "sent_at": SENT_AT.strftime("%Y-%m-%d %H:%M:%S"),
            "visit": visited.astype(int),
            "conversion": converted.astype(int),
            "outcome_at": (SENT_AT + offset).strftime("%Y-%m-%d %H:%M:%S"),
            "spend": np.where(converted, np.round(rng.gamma(2.0, 30.0, rows), 2), 0.0),
            "last_purchase_at": last_purchase.strftime("%Y-%m-%d"),
            "last_purchase_amount": np.round(rng.gamma(2.0, 25.0, rows), 2),
        }
    )


if __name__ == "__main__":
    make().to_csv(Path(__file__).with_name("rct.csv"), index=False)
