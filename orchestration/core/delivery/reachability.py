"""Which customers can be reached on which channel, without revealing how.

The policy layer must not pick customers the gateway cannot deliver to, but it must not see
contact details either. The gateway answers with (customer_id, channel) pairs only.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from orchestration.core.world.contract import CHANNELS, raw_path


def reachability_flags(raw_dir: Path, customer_ids: pd.Series) -> pd.DataFrame:
    """customer_id plus ``is_<channel>_reachable`` (a verified contact point exists)."""
    import duckdb

    con = duckdb.connect()
    try:
        pairs = con.execute(
            "select distinct customer_id, channel from read_parquet($path) where is_verified",
            {"path": str(raw_path(raw_dir, "contact_points"))},
        ).df()
    finally:
        con.close()
    flags = pd.DataFrame({"customer_id": customer_ids.astype("int64").to_numpy()})
    for channel in CHANNELS:
        reachable = pairs.loc[pairs["channel"] == channel, "customer_id"]
        flags[f"is_{channel}_reachable"] = flags["customer_id"].isin(reachable)
    return flags
