"""One run at a time per data directory: an exclusive ``flock`` on ``<data_dir>/.run.lock``.

Two runs writing the same data directory (raw files, warehouse, features, ledger) would
interleave their writes. The ``campaign run`` command holds the lock around the whole pipeline,
and the ``raw_data`` asset holds it while it lands the raw tables (a run started from the UI or a
schedule). The lock is taken before anything is written; a second run waits at most
``wait_seconds`` and then stops with one line naming the holder::

    the data directory /srv/data is in use by another run: pid 4242 on host worker-1, run
    5f0c..., started 2026-11-23T09:00:02+00:00 (lock /srv/data/.run.lock); wait for it to finish,
    or point CAMPAIGN_DATA_DIR at another directory

The holder (host, pid, run id, start time) is written into the lock file for that message only:
the lock itself is the kernel's ``flock``, released when the holder's process exits however it
exits, so a lock file left by a dead process never blocks anyone.

Within one process the lock is re-entrant for the same run (``campaign run`` holds it and its
``raw_data`` step takes it again); another run in the same process is refused like any other.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

LOCK_FILE = ".run.lock"
# How long a second run waits for the first by default: not at all (the caller may pass more).
WAIT_SECONDS = 0.0
_POLL_SECONDS = 0.2


@dataclass(frozen=True)
class Holder:
    host: str
    pid: int
    run_id: str | None
    started_at: str

    def describe(self) -> str:
        run = f", run {self.run_id}" if self.run_id else ""
        return f"pid {self.pid} on host {self.host}{run}, started {self.started_at}"


class RunLockBusy(RuntimeError):
    """Another run holds the data directory; the message is one line naming it."""

    def __init__(self, data_dir: Path, lock: Path, holder: Holder | None) -> None:
        self.data_dir, self.lock, self.holder = data_dir, lock, holder
        who = holder.describe() if holder else "a run that has not recorded itself yet"
        super().__init__(
            f"the data directory {data_dir} is in use by another run: {who} (lock {lock}); "
            "wait for it to finish, or point CAMPAIGN_DATA_DIR at another directory"
        )


_held: dict[Path, tuple[str | None, int]] = {}  # lock path -> (run id, depth) in this process
_held_guard = threading.Lock()


def lock_path(data_dir: Path) -> Path:
    return Path(data_dir) / LOCK_FILE


def _read_holder(fd: int) -> Holder | None:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        raw = os.read(fd, 4096).decode("utf-8", "replace").strip()
        return Holder(**json.loads(raw)) if raw else None
    except (OSError, ValueError, TypeError):
        return None


def _write_holder(fd: int, holder: Holder) -> None:
    os.ftruncate(fd, 0)
    os.lseek(fd, 0, os.SEEK_SET)
    os.write(fd, (json.dumps(asdict(holder)) + "\n").encode())


def _reenter(path: Path, run_id: str | None) -> bool:
    """Whether this process already holds ``path`` for this run (then one level deeper)."""
    with _held_guard:
        if path not in _held:
            return False
        held_run, depth = _held[path]
        if run_id is not None and held_run is not None and run_id != held_run:
            return False
        _held[path] = (held_run, depth + 1)
        return True


def _leave(path: Path) -> None:
    with _held_guard:
        run, depth = _held[path]
        if depth > 1:
            _held[path] = (run, depth - 1)
        else:
            del _held[path]


@contextmanager
def run_lock(
    data_dir: Path, run_id: str | None = None, wait_seconds: float = WAIT_SECONDS
) -> Iterator[Path]:
    """Hold the data directory's run lock for the ``with`` block; raise :class:`RunLockBusy`
    when another run still holds it after ``wait_seconds``. Creates the directory if needed
    (the lock file is the first thing written there). Yields the lock file's path."""
    data_dir = Path(data_dir).resolve()
    path = lock_path(data_dir)
    if _reenter(path, run_id):
        try:
            yield path
        finally:
            _leave(path)
        return
    data_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + max(wait_seconds, 0.0)
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise RunLockBusy(data_dir, path, _read_holder(fd)) from None
                time.sleep(min(_POLL_SECONDS, max(deadline - time.monotonic(), 0.01)))
        holder = Holder(
            host=socket.gethostname(),
            pid=os.getpid(),
            run_id=run_id,
            started_at=datetime.now(UTC).isoformat(timespec="seconds"),
        )
        _write_holder(fd, holder)
        with _held_guard:
            _held[path] = (run_id, 1)
        try:
            yield path
        finally:
            with _held_guard:
                _held.pop(path, None)
            os.ftruncate(fd, 0)  # no stale holder for the next reader
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
