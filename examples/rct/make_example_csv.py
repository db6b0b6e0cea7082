"""How ``rct.csv`` was made: a seeded, generic randomized campaign with customer attributes.

It stands for the CSV a team exports from a past experiment (one row per customer: who they are,
which arm they were in, what they did in the two weeks after): nothing in it comes from the
pipeline's synthetic world. Three arms, randomized in thirds: ``control`` (no message),
``offer`` (a discount email) and ``reminder`` (a plain reminder email). The effects live in the
attributes on purpose, and differ by arm: the offer moves premium customers (plus ones a little,
basic ones hardly), the reminder moves loyalty members whatever their plan. So a model that reads
the attributes can find who responds, and a campaign with both messages as variants has a real
choice to make per customer.

    python examples/rct/make_example_csv.py   # rewrites examples/rct/rct.csv (same bytes)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

ROWS = 3_600
SEED = 2025
SENT_AT = pd.Timestamp("2025-03-03 09:00:00", tz="UTC")
PLANS = ("basic", "plus", "premium")
ARMS = ("control", "offer", "reminder")
OFFER_UPLIFT_BY_PLAN = {"basic": 0.02, "plus": 0.15, "premium": 0.40}
REMINDER_UPLIFT = {True: 0.25, False: 0.02}  # by loyalty membership
AGE_BANDS = ("18-29", "30-44", "45-64", "65+")


def make(rows: int = ROWS, seed: int = SEED) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    plan = rng.choice(PLANS, rows, p=[0.40, 0.35, 0.25])
    tenure_months = rng.integers(2, 60, rows)
    signup = SENT_AT - pd.to_timedelta(tenure_months * 30 + rng.integers(0, 30, rows), unit="D")
    member = rng.random(rows) < 0.4
    arm = np.asarray(ARMS, dtype=object)[rng.integers(0, len(ARMS), rows)]
    base = 0.10 + 0.05 * member
    offer = np.array([OFFER_UPLIFT_BY_PLAN[p] for p in plan]) * (arm == "offer")
    reminder = np.where(member, REMINDER_UPLIFT[True], REMINDER_UPLIFT[False]) * (arm == "reminder")
    lift = offer + reminder
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
