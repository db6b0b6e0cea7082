"""One run at a time per data directory: a second run stops, names the first and writes nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from orchestration.core.common.run_lock import LOCK_FILE, RunLockBusy, lock_path, run_lock
from orchestration.settings import PROJECT_DIR

HOLD = textwrap.dedent(
    """
    import sys
    from orchestration.core.common.run_lock import run_lock

    with run_lock(sys.argv[1], run_id="first-run"):
        print("holding", flush=True)
        sys.stdin.read()  # until the test closes our stdin
    """
)


@pytest.fixture
def first_run(tmp_path):
    """Another process holding the lock of ``tmp_path / 'data'``; yields (data_dir, pid)."""
    data_dir = tmp_path / "data"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(data_dir)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=PROJECT_DIR,
    )
    try:
        assert holder.stdout.readline().strip() == "holding"
        yield data_dir, holder.pid
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)


def _files(directory: Path) -> dict[str, int]:
    return {
        str(p.relative_to(directory)): p.stat().st_mtime_ns for p in sorted(directory.rglob("*"))
    }


def test_a_second_run_gets_a_message_naming_the_first_and_exits_non_zero(first_run, tmp_path):
    data_dir, pid = first_run
    before = _files(data_dir)
    env = {
        **os.environ,
        "CAMPAIGN_DATA_DIR": str(data_dir),
        "DAGSTER_HOME": str(tmp_path / "dagster_home"),
    }
    env.pop("CAMPAIGN_DATASET", None)
    second = subprocess.run(
        [sys.executable, "-c", "from orchestration.cli import main; main()", "run"],
        env=env,
        capture_output=True,
        text=True,
        cwd=PROJECT_DIR,
        timeout=120,
    )
    assert second.returncode != 0
    message = second.stderr + second.stdout
    assert f"pid {pid}" in message and "run first-run" in message, message
    assert "in use by another run" in message and str(data_dir / LOCK_FILE) in message
    assert len([line for line in second.stderr.splitlines() if line.strip()]) == 1, second.stderr
    assert _files(data_dir) == before  # nothing written: no raw files, no run history
    assert not (data_dir / "raw").exists()


def test_the_lock_names_its_holder_and_is_released_on_exit(first_run):
    data_dir, pid = first_run
    with (
        pytest.raises(RunLockBusy) as busy,
        run_lock(data_dir, run_id="second-run", wait_seconds=0.3),
    ):
        pytest.fail("two runs held the same data directory")
    assert busy.value.holder is not None and busy.value.holder.pid == pid
    assert json.loads(lock_path(data_dir).read_text())["run_id"] == "first-run"


def test_a_lock_file_left_behind_does_not_block(tmp_path):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    # what a killed run leaves: the file with its holder, but no flock (its process is gone)
    lock_path(data_dir).write_text(
        json.dumps({"host": "h", "pid": 999999, "run_id": "dead", "started_at": "then"})
    )
    with run_lock(data_dir, run_id="next") as path:
        assert json.loads(path.read_text())["run_id"] == "next"
    with run_lock(data_dir, run_id="after"):  # released on exit of the block
        pass


def test_the_same_run_reenters_another_run_in_the_process_does_not(tmp_path):
    data_dir = tmp_path / "data"
    with run_lock(data_dir, run_id="cli-run"):
        with run_lock(data_dir, run_id="cli-run"):  # its raw_data step
            pass
        with run_lock(data_dir):  # no run id: the run that holds it
            pass
        with (
            pytest.raises(RunLockBusy, match="run cli-run"),
            run_lock(data_dir, run_id="another-run"),
        ):
            pass
    with run_lock(data_dir, run_id="another-run"):
        pass
