"""The real-time session features of ``POST /v1/events``: counted from the recorded events, pushed
to the Feast online store through the ``customer_sessions_push`` push source and read back through
Feast (``customer_sessions_rt``), the way a decision reads every online feature.

``PushMode.ONLINE``, not ``ONLINE_AND_OFFLINE``: the DuckDB offline store appends a push by reading
the whole Parquet file and writing it again (the cost grows with history, and two concurrent
pushes lose one of them), and nothing offline reads these features: they are no model's input
(no feature service holds them), so the training set stays point-in-time correct on the batch
snapshots. The events themselves are kept in the API's event store, from which the counts are
recomputed on every event (a replay or a late event cannot double-count or roll them back).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import pandas as pd

from orchestration.core.decisioning.realtime.timestamps import utc
from orchestration.settings import Settings

SESSION_EVENT = "session_start"
PUSH_SOURCE = "customer_sessions_push"
REALTIME_VIEW = "customer_sessions_rt"
REALTIME_FEATURES = ("last_session_at", "sessions_24h")


@dataclass(frozen=True)
class SessionFeatures:
    """A customer's real-time session features as of ``as_of`` (the event timestamp pushed)."""

    customer_id: int
    last_session_at: datetime | None
    sessions_24h: int
    as_of: datetime

    def as_answer(self, now: datetime) -> dict[str, Any]:
        minutes = None
        if self.last_session_at is not None:
            minutes = round(
                (pd.Timestamp(now) - pd.Timestamp(self.last_session_at)).total_seconds() / 60, 3
            )
        return {
            "last_session_at": None
            if self.last_session_at is None
            else pd.Timestamp(self.last_session_at).isoformat(),
            "sessions_24h": int(self.sessions_24h),
            "minutes_since_last_session": minutes,
            "as_of": pd.Timestamp(self.as_of).isoformat(),
        }


class RealtimeFeatures(Protocol):
    def push(self, features: SessionFeatures) -> None: ...

    def read(self, customer_id: int) -> SessionFeatures | None:
        """What the online store holds for the customer (None: nothing yet)."""
        ...


class FeastSessionFeatures:
    """Push and read ``customer_sessions_rt`` through the Feast store (opened once, in-process)."""

    def __init__(self, settings: Settings, store: Any = None):
        self.settings = settings
        self._store = store
        self._lock = threading.Lock()

    def _feast(self):
        if self._store is None:
            from orchestration.core.features.feast_store import open_feature_store

            self._store = open_feature_store(self.settings)
        return self._store

    def push(self, features: SessionFeatures) -> None:
        from feast.data_source import PushMode

        row = pd.DataFrame(
            {
                "customer_id": [int(features.customer_id)],
                "event_timestamp": [pd.Timestamp(features.as_of)],
                "last_session_at": [pd.Timestamp(features.last_session_at or features.as_of)],
                "sessions_24h": [int(features.sessions_24h)],
            }
        )
        if features.last_session_at is None:
            row["last_session_at"] = pd.Series([pd.NaT], dtype="datetime64[us, UTC]")
        with self._lock:
            self._feast().push(PUSH_SOURCE, row, to=PushMode.ONLINE)

    def read(self, customer_id: int) -> SessionFeatures | None:
        refs = [f"{REALTIME_VIEW}:{name}" for name in REALTIME_FEATURES]
        with self._lock:
            response = (
                self._feast()
                .get_online_features(features=refs, entity_rows=[{"customer_id": int(customer_id)}])
                .to_dict(include_event_timestamps=True)
            )
        count = response["sessions_24h"][0]
        if count is None:
            return None
        seconds = response["sessions_24h__ts"][0]
        last = response["last_session_at"][0]
        return SessionFeatures(
            customer_id=int(customer_id),
            last_session_at=None if last is None else utc(last).to_pydatetime(),
            sessions_24h=int(count),
            as_of=pd.Timestamp(seconds, unit="s", tz="UTC").to_pydatetime(),
        )
