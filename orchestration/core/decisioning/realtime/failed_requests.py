"""Decision requests that failed before their answer could be recorded.

The decisions store records every answer the service built, the safe default ``unavailable``
included. A request can still fail after that point (the store itself, the batcher): the API
then answers ``unavailable`` too, and appends the failure here, one JSON line per request
(request id, customer id, campaign, time, the error's type and message; never the request's
context), so the seed metrics count it (``online_metrics``). A failure to append is logged by
the caller and lost: this file is for measuring, not for replay.
"""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

import orjson
import pandas as pd

from orchestration.core.decisioning.realtime.timestamps import utc

_LOCK = threading.Lock()


def failures_path(store_path: Path) -> Path:
    """The failure log beside the decisions store ``store_path``."""
    return Path(store_path).with_name("failed_requests.jsonl")


@dataclass(frozen=True)
class FailedRequest:
    request_id: str
    customer_id: int
    campaign: str
    failed_at: str  # ISO 8601, UTC
    error: str


def record_failure(path: Path, failure: FailedRequest) -> None:
    """Append ``failure`` to the log at ``path`` (created when missing)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    line = orjson.dumps(asdict(failure)) + b"\n"
    with _LOCK, path.open("ab") as handle:
        handle.write(line)


def failures_between(path: Path, since: datetime, until: datetime) -> pd.DataFrame:
    """The logged failures with ``since < failed_at <= until``; a line that does not parse (a
    write cut short) is skipped."""
    columns = list(FailedRequest.__dataclass_fields__)
    if not Path(path).exists():
        return pd.DataFrame(columns=columns)
    rows = []
    for line in Path(path).read_bytes().splitlines():
        try:
            rows.append(orjson.loads(line))
        except orjson.JSONDecodeError:
            continue
    frame = pd.DataFrame(rows, columns=columns)
    if frame.empty:
        return frame
    at = pd.to_datetime(frame["failed_at"], utc=True, format="ISO8601")
    return frame[(at > utc(since)) & (at <= utc(until))].reset_index(drop=True)
