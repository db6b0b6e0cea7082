"""Candidates as the policy engine takes them: every channel opted in, unsuppressed and
reachable, in one region and time zone; columns overridden by keyword."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd


def open_candidates(customer_ids: Sequence[int], **overrides) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "customer_id": np.asarray(customer_ids, dtype="int64"),
            "region": "eu-west",
            "time_zone": "Europe/London",
            "signed_up_at": pd.Timestamp("2024-01-01", tz="UTC"),
        }
    )
    for channel in ("email", "sms", "push"):
        frame[f"is_{channel}_opted_in"] = True
        frame[f"is_{channel}_suppressed"] = False
        frame[f"is_{channel}_reachable"] = True
    for column, value in overrides.items():
        frame[column] = value
    return frame
