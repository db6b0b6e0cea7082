"""Freshness of the online store, measured by us: Feast applies TTL to offline reads only, and
online reads return stale values as PRESENT.

A sample of customers is looked up online with event timestamps; a customer is stale when any of
its feature values is missing or older than the window.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import pandas as pd

from orchestration.settings import Settings


@dataclass(frozen=True)
class OnlineFreshness:
    sampled: int
    stale: int
    missing: int
    oldest_age_hours: float | None
    window_hours: float

    @property
    def stale_share(self) -> float:
        return (self.stale / self.sampled) if self.sampled else 1.0


def measure_online_freshness(
    settings: Settings,
    customer_ids: np.ndarray,
    window_hours: float,
    sample_size: int = 2_000,
    now: datetime | None = None,
    seed: int = 0,
) -> OnlineFreshness:
    """Look up ``sample_size`` customers online and count those with missing or old features."""
    from orchestration.core.features.feast_store import FEATURE_SERVICE, open_feature_store

    now = now or datetime.now(UTC)
    ids = np.asarray(customer_ids)
    if len(ids) > sample_size:
        ids = np.random.default_rng(seed).choice(ids, sample_size, replace=False)
    store = open_feature_store(settings)
    response = store.get_online_features(
        features=store.get_feature_service(FEATURE_SERVICE),
        entity_rows=[{"customer_id": int(c)} for c in ids],
    ).to_dict(include_event_timestamps=True)
    # Event times come as epoch seconds per feature; 0 means "no value" (the entity key has 0 too).
    stamps = pd.DataFrame(
        {k: v for k, v in response.items() if k.endswith("__ts") and k != "customer_id__ts"}
    )
    return freshness_from_event_times(stamps, len(ids), now, window_hours)


def freshness_from_event_times(
    stamps: pd.DataFrame, sampled: int, now: datetime, window_hours: float
) -> OnlineFreshness:
    """Count stale customers from per-feature event times in epoch seconds (0 = no value)."""
    if stamps.empty:
        return OnlineFreshness(sampled, sampled, sampled, None, window_hours)
    # Ages are computed on epoch seconds directly: converting an all-missing float column with
    # pd.to_datetime(unit="s") rounds uninitialised memory inside pandas, which overflows (and
    # raises under np.seterr(over="raise")).
    seconds = stamps.apply(pd.to_numeric, errors="coerce").astype("float64")
    seconds = seconds.where(seconds > 0)
    missing = seconds.isna().any(axis=1)
    age_hours = (now.timestamp() - seconds.min(axis=1)) / 3600
    stale = missing | (age_hours > window_hours)
    return OnlineFreshness(
        sampled=sampled,
        stale=int(stale.sum()),
        missing=int(missing.sum()),
        oldest_age_hours=float(age_hours.max()) if age_hours.notna().any() else None,
        window_hours=window_hours,
    )
