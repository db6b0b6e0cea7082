"""Moments as UTC timestamps and int64 microseconds, and the stamp of a file (has it changed?)."""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd


def utc(moment: datetime | pd.Timestamp) -> pd.Timestamp:
    ts = pd.Timestamp(moment)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def epoch_us(moment: datetime | pd.Timestamp) -> int:
    return int(utc(moment).value // 1000)


def column_us(series: pd.Series) -> np.ndarray:
    """Timestamps as int64 microseconds since the epoch (UTC); missing ones as the int64 minimum."""
    stamps = pd.to_datetime(series, utc=True).dt.tz_localize(None)
    return stamps.to_numpy(dtype="datetime64[us]").astype(np.int64)


def file_stamp(path: Path) -> tuple[int, int, int] | None:
    try:
        status = os.stat(path)
    except OSError:
        return None
    return (status.st_mtime_ns, status.st_size, status.st_ino)
