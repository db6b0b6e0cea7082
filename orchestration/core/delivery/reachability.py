"""Which customers can be reached on which channel, without revealing how.

The policy layer must not pick customers the gateway cannot deliver to, but it must not see
contact details either. The gateway answers with (customer_id, channel) pairs only.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from orchestration.core.world.contract import CHANNELS, raw_path


def reachability_flags(raw_dir: Path, customer_ids: pd.Series) -> pd.DataFrame:
    """customer_id plus ``is_<channel>_reachable`` (a verified contact point exists), one row
    per id of ``customer_ids``, in their order."""
    import duckdb

    ids = pd.DataFrame(
        {
            "customer_id": customer_ids.astype("int64").to_numpy(),
            "position": np.arange(len(customer_ids)),
        }
    )
    flags = ", ".join(
        f"coalesce(bool_or(p.channel = '{channel}'), false) as is_{channel}_reachable"
        for channel in CHANNELS
    )
    con = duckdb.connect()
    try:
        con.register("ids", ids)
        return con.execute(
            f"""
            select o.customer_id, {flags}
            from ids o
            left join read_parquet($path) p on p.customer_id = o.customer_id and p.is_verified
            group by o.position, o.customer_id
            order by o.position
            """,
            {"path": str(raw_path(raw_dir, "contact_points"))},
        ).df()
    finally:
        con.close()
