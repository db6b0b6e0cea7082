"""The raw customer rows a real-time decision starts from: customers, consent, suppressions and
reachability as sorted arrays, computed as ``dim_customers`` computes them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from orchestration.core.decisioning.realtime.timestamps import column_us, epoch_us, file_stamp
from orchestration.core.world.contract import CHANNELS, raw_path


def _channel_codes(channels: pd.Series, null_code: int) -> np.ndarray:
    """A channel as its position in CHANNELS; ``null_code`` for a null one, -2 for any other value
    (dim_customers compares channels exactly: ``channel = 'email'``)."""
    codes = np.full(len(channels), -2, dtype=np.int8)
    codes[channels.isna().to_numpy()] = null_code
    for i, name in enumerate(CHANNELS):
        codes[channels.eq(name).fillna(False).to_numpy(dtype=bool)] = i
    return codes


def _ranges(keys: np.ndarray, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row positions in the sorted ``keys`` equal to each of ``ids``, and the position in ``ids``
    each of them belongs to."""
    lo = np.searchsorted(keys, ids, side="left")
    lengths = np.searchsorted(keys, ids, side="right") - lo
    total = int(lengths.sum())
    if total == 0:
        empty = np.array([], dtype=np.int64)
        return empty, empty
    owner = np.repeat(np.arange(len(ids)), lengths)
    offsets = np.arange(total) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    return np.repeat(lo, lengths) + offsets, owner


@dataclass(frozen=True)
class CustomerRecords:
    """The raw customers, consent events, suppressions and reachability, as sorted arrays: one
    lookup per request, no scan. Timestamps are int64 microseconds (UTC)."""

    ids: np.ndarray
    signed_up_us: np.ndarray
    region: np.ndarray
    time_zone: np.ndarray
    reachable: dict[str, np.ndarray]
    consent_customer: np.ndarray  # sorted by (customer, channel, consented_at, event id)
    consent_channel: np.ndarray
    consent_us: np.ndarray
    consent_in: np.ndarray
    suppression_customer: np.ndarray  # sorted by customer
    suppression_channel: np.ndarray  # -1: every channel
    suppression_us: np.ndarray
    stamp: tuple

    @staticmethod
    def files(raw_dir: Path) -> list[Path]:
        names = ("customers", "consent_events", "suppressions", "contact_points")
        return [raw_path(raw_dir, name) for name in names]

    @classmethod
    def load(cls, raw_dir: Path) -> CustomerRecords:
        from orchestration.core.delivery.reachability import reachability_flags

        stamp = tuple(file_stamp(p) for p in cls.files(raw_dir))
        customers = pd.read_parquet(
            raw_path(raw_dir, "customers"),
            columns=["customer_id", "signed_up_at", "region", "time_zone"],
        ).dropna(subset=["customer_id", "signed_up_at"])
        customers = customers.sort_values("customer_id", kind="stable")
        customers = customers.drop_duplicates("customer_id", keep="last")
        ids = customers["customer_id"].to_numpy(dtype=np.int64)
        reach = reachability_flags(raw_dir, customers["customer_id"])
        consent = pd.read_parquet(
            raw_path(raw_dir, "consent_events"),
            columns=["consent_event_id", "customer_id", "channel", "is_opted_in", "consented_at"],
        ).dropna(subset=["customer_id", "consented_at", "is_opted_in"])
        consent = consent.assign(code=_channel_codes(consent["channel"], -2))
        consent = consent.sort_values(
            ["customer_id", "code", "consented_at", "consent_event_id"], kind="stable"
        )
        suppressions = pd.read_parquet(
            raw_path(raw_dir, "suppressions"), columns=["customer_id", "channel", "suppressed_at"]
        ).dropna(subset=["customer_id", "suppressed_at"])
        suppressions = suppressions.assign(code=_channel_codes(suppressions["channel"], -1))
        suppressions = suppressions.sort_values("customer_id", kind="stable")
        return cls(
            ids=ids,
            signed_up_us=column_us(customers["signed_up_at"]),
            region=customers["region"].to_numpy(dtype=object),
            time_zone=customers["time_zone"].to_numpy(dtype=object),
            reachable={c: reach[f"is_{c}_reachable"].to_numpy(dtype=bool) for c in CHANNELS},
            consent_customer=consent["customer_id"].to_numpy(dtype=np.int64),
            consent_channel=consent["code"].to_numpy(),
            consent_us=column_us(consent["consented_at"]),
            consent_in=consent["is_opted_in"].to_numpy(dtype=bool),
            suppression_customer=suppressions["customer_id"].to_numpy(dtype=np.int64),
            suppression_channel=suppressions["code"].to_numpy(),
            suppression_us=column_us(suppressions["suppressed_at"]),
            stamp=stamp,
        )

    def known(self, customer_ids: np.ndarray, decided_at: datetime) -> np.ndarray:
        """Per id: a raw customer signed up at or before the decision time."""
        ids = np.asarray(customer_ids, dtype=np.int64)
        pos = np.minimum(np.searchsorted(self.ids, ids), max(len(self.ids) - 1, 0))
        if len(self.ids) == 0:
            return np.zeros(len(ids), dtype=bool)
        return (self.ids[pos] == ids) & (self.signed_up_us[pos] <= epoch_us(decided_at))

    def candidates(self, customer_ids: np.ndarray, decided_at: datetime) -> pd.DataFrame:
        """The engine's candidate rows (sorted, unique) for the known ones of ``customer_ids``."""
        ids = np.unique(np.asarray(customer_ids, dtype=np.int64))
        ids = ids[self.known(ids, decided_at)]
        pos = np.searchsorted(self.ids, ids)
        at = epoch_us(decided_at)
        opted = self._latest_consent(ids, at)
        suppressed = self._suppressed(ids, at)
        columns: dict[str, Any] = {
            "customer_id": ids,
            "region": self.region[pos],
            "time_zone": self.time_zone[pos],
            "signed_up_at": pd.DatetimeIndex(
                self.signed_up_us[pos].astype("datetime64[us]"), tz="UTC"
            ),
        }
        for i, channel in enumerate(CHANNELS):
            columns[f"is_{channel}_opted_in"] = opted[i]
            columns[f"is_{channel}_suppressed"] = suppressed[i]
            columns[f"is_{channel}_reachable"] = self.reachable[channel][pos]
        return pd.DataFrame(columns)

    def _latest_consent(self, ids: np.ndarray, at: int) -> np.ndarray:
        """(channel, customer) opted in: the latest event at or before ``at`` says so."""
        out = np.zeros((len(CHANNELS), len(ids)), dtype=bool)
        rows, owner = _ranges(self.consent_customer, ids)
        known = self.consent_us[rows] <= at
        rows, owner = rows[known], owner[known]
        if len(rows) == 0:
            return out
        channel = self.consent_channel[rows]
        last = np.ones(len(rows), dtype=bool)  # the last known row of each (customer, channel)
        last[:-1] = (owner[1:] != owner[:-1]) | (channel[1:] != channel[:-1])
        keep = last & self.consent_in[rows] & (channel >= 0)
        out[channel[keep].astype(np.int64), owner[keep]] = True
        return out

    def _suppressed(self, ids: np.ndarray, at: int) -> np.ndarray:
        out = np.zeros((len(CHANNELS), len(ids)), dtype=bool)
        rows, owner = _ranges(self.suppression_customer, ids)
        known = self.suppression_us[rows] <= at
        channel, owner = self.suppression_channel[rows][known], owner[known]
        for i in range(len(CHANNELS)):
            out[i, owner[(channel == i) | (channel == -1)]] = True
        return out
