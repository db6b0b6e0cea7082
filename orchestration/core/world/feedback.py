"""The closed loop of the synthetic world: our sends change what its customers do.

After each run, the campaign's treated customers (delivered sends) and its measurement holdout
are appended to a feedback log. When the world is (re)generated, every logged exposure is played
into it like one of its own randomized campaigns: inside the outcome window after the exposure
(``OUTCOME_WINDOW_DAYS``) the customer's background orders are replaced by one Bernoulli draw
with the ground-truth probability of the arm (treated: p1, holdout: p0); treated customers may
unsubscribe (sleeping dogs more often). Outcomes land with a delay: only events up to the world's
"now" exist, so a cohort's results fill in over the following window. The exposures themselves are written to
``campaign_exposures``, so later models learn from our own campaigns too.

Draws are salted hashes of (seed, campaign, customer, day): regenerating the world gives the
same outcomes.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from orchestration.core.common.hashing import stable_unit_interval
from orchestration.core.world.contract import OUTCOME_WINDOW_DAYS, RAW_TABLES_BY_NAME, raw_path

WINDOW = timedelta(days=OUTCOME_WINDOW_DAYS)
FEEDBACK_COLUMNS = ["campaign_id", "customer_id", "channel", "arm", "exposed_at", "source_run"]
# Unsubscribe probability per treated message: everyone a little, sleeping dogs much more.
UNSUBSCRIBE_BASE = 0.005
UNSUBSCRIBE_SLEEPING_DOG = 0.08


def _append(frame: pd.DataFrame, rows: pd.DataFrame) -> pd.DataFrame:
    """``frame`` followed by ``rows``; an empty side is left out so it cannot change dtypes."""
    if rows.empty:
        return frame.reset_index(drop=True)
    if frame.empty:
        extra = [c for c in rows.columns if c not in frame.columns]
        return rows.reindex(columns=[*frame.columns, *extra]).reset_index(drop=True)
    return pd.concat([frame, rows], ignore_index=True)


def feedback_path(data_dir: Path) -> Path:
    return Path(data_dir) / "world" / "feedback.parquet"


def load_feedback(path: Path) -> pd.DataFrame:
    if not Path(path).exists():
        return pd.DataFrame(columns=FEEDBACK_COLUMNS)
    return pd.read_parquet(path)


def record_feedback(path: Path, exposures: pd.DataFrame) -> int:
    """Append (campaign_id, customer_id, channel, arm, exposed_at, source_run) rows; a customer
    is logged once per campaign and day. Returns how many rows were new."""
    path = Path(path)
    current = load_feedback(path)
    incoming = exposures[FEEDBACK_COLUMNS].copy()
    incoming["exposed_at"] = pd.to_datetime(incoming["exposed_at"], utc=True)
    combined = _append(current, incoming)
    combined["exposed_at"] = pd.to_datetime(combined["exposed_at"], utc=True)
    day = combined["exposed_at"].dt.floor("D")
    deduplicated = combined[
        ~pd.DataFrame(
            {"c": combined["campaign_id"], "i": combined["customer_id"], "d": day}
        ).duplicated()
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".parquet.tmp")
    deduplicated.reset_index(drop=True).to_parquet(tmp, index=False)
    tmp.replace(path)
    return len(deduplicated) - len(current)


def _salt(seed: int, kind: str, frame: pd.DataFrame) -> np.ndarray:
    """One uniform draw per row, stable for (seed, kind, campaign, day, customer)."""
    out = np.empty(len(frame))
    keys = frame["campaign_id"].astype(str) + "|" + frame["exposed_at"].dt.strftime("%Y-%m-%d")
    for key, index in frame.groupby(keys).indices.items():
        ids = frame["customer_id"].to_numpy()[index]
        out[index] = stable_unit_interval(ids, f"{kind}:{seed}:{key}")
    return out


def _write(raw_dir: Path, name: str, frame: pd.DataFrame) -> None:
    schema = RAW_TABLES_BY_NAME[name].schema
    table = pa.Table.from_pandas(frame[schema.names], schema=schema, preserve_index=False)
    path = raw_path(raw_dir, name)
    tmp = path.with_suffix(".parquet.tmp")
    pq.write_table(table, tmp)
    tmp.replace(path)


def _replace_window_orders(
    raw_dir: Path, fb: pd.DataFrame, p: np.ndarray, as_of_ts: pd.Timestamp, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Background orders inside an exposure window give way to the outcome draw (probability
    ``p``); ``(converted, landed)``: landed are the conversions that happened by ``as_of``."""
    orders = pd.read_parquet(raw_path(raw_dir, "orders"))
    window_end = fb["exposed_at"] + WINDOW
    spans = fb[["customer_id", "exposed_at"]].assign(window_end=window_end)
    joined = orders[["order_id", "customer_id", "ordered_at"]].merge(spans, on="customer_id")
    inside = joined[
        (joined["ordered_at"] >= joined["exposed_at"])
        & (joined["ordered_at"] < joined["window_end"])
    ]
    orders = orders[~orders["order_id"].isin(inside["order_id"])]
    typical = orders.groupby("customer_id")["amount"].median()

    converted = _salt(seed, "convert", fb) < p
    at = fb["exposed_at"] + pd.to_timedelta(
        _salt(seed, "when", fb) * WINDOW.total_seconds(), unit="s"
    )
    landed = converted & (at <= as_of_ts).to_numpy()  # outcomes land with a delay
    new_orders = pd.DataFrame(
        {
            "order_id": np.arange(landed.sum())
            + int(orders["order_id"].max() if len(orders) else 0)
            + 1,
            "customer_id": fb.loc[landed, "customer_id"].to_numpy(),
            "amount": typical.reindex(fb.loc[landed, "customer_id"])
            .fillna(50.0)
            .round(2)
            .to_numpy(),
            "ordered_at": at[landed].dt.floor("s").to_numpy(),
            # the outcome draw says nothing about what was bought or where
            "category": pd.Series([None] * int(landed.sum()), dtype=object),
            "sales_channel": pd.Series([None] * int(landed.sum()), dtype=object),
        }
    )
    _write(raw_dir, "orders", _append(orders, new_orders))
    return converted, landed


def _add_unsubscribes(
    raw_dir: Path,
    fb: pd.DataFrame,
    segment: np.ndarray,
    treated: np.ndarray,
    as_of_ts: pd.Timestamp,
    seed: int,
) -> np.ndarray:
    """Treated customers may unsubscribe (sleeping dogs more often); who did by ``as_of``."""
    p_unsub = (
        np.where(segment == "sleeping_dog", UNSUBSCRIBE_SLEEPING_DOG, UNSUBSCRIBE_BASE) * treated
    )
    unsub_at = fb["exposed_at"] + pd.to_timedelta(
        _salt(seed, "unsub_when", fb) * WINDOW.total_seconds(), unit="s"
    )
    unsubscribed = (_salt(seed, "unsubscribe", fb) < p_unsub) & (unsub_at <= as_of_ts).to_numpy()
    consents = pd.read_parquet(raw_path(raw_dir, "consent_events"))
    new_consents = pd.DataFrame(
        {
            "consent_event_id": np.arange(unsubscribed.sum())
            + int(consents["consent_event_id"].max())
            + 1,
            "customer_id": fb.loc[unsubscribed, "customer_id"].to_numpy(),
            "channel": fb.loc[unsubscribed, "channel"].to_numpy(),
            "is_opted_in": False,
            "source": "unsubscribe_link",
            "consented_at": unsub_at[unsubscribed].dt.floor("s").to_numpy(),
        }
    )
    _write(raw_dir, "consent_events", _append(consents, new_consents))
    return unsubscribed


def _add_exposures(raw_dir: Path, fb: pd.DataFrame) -> None:
    exposures = pd.read_parquet(raw_path(raw_dir, "campaign_exposures"))
    new_exposures = pd.DataFrame(
        {
            "exposure_id": np.arange(len(fb))
            + int(exposures["exposure_id"].max() if len(exposures) else 0)
            + 1,
            "campaign_id": fb["campaign_id"].to_numpy(),
            "customer_id": fb["customer_id"].to_numpy(),
            "channel": fb["channel"].to_numpy(),
            "arm": fb["arm"].to_numpy(),
            "exposed_at": fb["exposed_at"].dt.floor("s").to_numpy(),
        }
    )
    _write(raw_dir, "campaign_exposures", pd.concat([exposures, new_exposures], ignore_index=True))


def _arm_probability(truth: pd.DataFrame, fb: pd.DataFrame) -> np.ndarray:
    """Each logged exposure's true conversion probability: base for control, base plus the
    arm's own true uplift for a variant of the variants world (``true_uplift__<arm>``), the
    treated probability for any other treatment."""
    rows = truth.loc[fb["customer_id"]]
    base = rows["base_conversion_probability"].to_numpy()
    p = rows["treated_conversion_probability"].to_numpy().copy()
    arms = fb["arm"].to_numpy()
    for arm in pd.unique(arms):
        column = f"true_uplift__{arm}"
        if column in truth.columns:
            here = arms == arm
            p[here] = np.clip(base[here] + rows[column].to_numpy()[here], 0.001, 0.999)
    return np.where(arms == "control", base, p)


def apply_feedback(
    raw_dir: Path, ground_truth: pd.DataFrame, feedback: pd.DataFrame, as_of: datetime, seed: int
) -> dict[str, int]:
    """Play the logged exposures into freshly generated raw tables (see the module doc)."""
    as_of_ts = pd.Timestamp(as_of)
    fb = feedback.copy()
    if fb.empty:
        return {"exposures": 0, "conversions": 0, "unsubscribes": 0}
    fb["exposed_at"] = pd.to_datetime(fb["exposed_at"], utc=True)
    fb = fb[fb["exposed_at"] <= as_of_ts]
    truth = ground_truth.set_index("customer_id")
    fb = fb[fb["customer_id"].isin(truth.index)].reset_index(drop=True)
    if fb.empty:
        return {"exposures": 0, "conversions": 0, "unsubscribes": 0}
    treated = (fb["arm"] != "control").to_numpy()
    p = _arm_probability(truth, fb)
    converted, landed = _replace_window_orders(raw_dir, fb, p, as_of_ts, seed)
    segment = truth.loc[fb["customer_id"], "segment"].to_numpy()
    unsubscribed = _add_unsubscribes(raw_dir, fb, segment, treated, as_of_ts, seed)
    _add_exposures(raw_dir, fb)
    return {
        "exposures": len(fb),
        "conversions": int(landed.sum()),
        "pending_outcomes": int((converted & ~landed).sum()),
        "unsubscribes": int(unsubscribed.sum()),
    }
