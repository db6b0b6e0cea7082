"""The drift dashboard in a real browser: `evidently ui` on 127.0.0.1 over a workspace that two
drift gate runs filled, opened in headless Debian Chromium (Playwright, no browser download).

Checks that the project's dashboard draws both plots with a point per run and the column lines,
and saves a screenshot (DRIFT_SCREENSHOT_PATH copies it out).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from orchestration.core.observability.drift_workspace import COLUMN_PANEL, SHARE_PANEL
from tests.features.test_drift_workspace import _record
from tests.ui.test_dagster_ui import CHROMIUM, CHROMIUM_ARGS, _free_port

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def drift_ui(tmp_path_factory):
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} not found: apt-get install chromium, or set CHROMIUM_PATH")
    root = tmp_path_factory.mktemp("drift_ui")
    workspace = root / "evidently"
    _record(workspace, 0.0, "run-calm")
    _record(workspace, 2.0, "run-drifted")
    port = _free_port()
    log = (root / "evidently_ui.log").open("w")
    process = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "evidently"),
            "ui",
            "--workspace",
            str(workspace),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{url}/api/projects", timeout=2) as response:
                    projects = json.load(response)
                    break
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"evidently ui did not come up; see {log.name}")
            time.sleep(0.5)
        yield url, projects[0]["id"], root
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


def test_the_drift_dashboard_plots_share_and_columns_over_runs(drift_ui):
    from playwright.sync_api import sync_playwright

    url, project, root = drift_ui
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1600, "height": 1100})
        page.goto(f"{url}/projects/{project}", wait_until="networkidle", timeout=120_000)
        page.get_by_text(COLUMN_PANEL).wait_for(timeout=60_000)
        shot = root / "drift_dashboard.png"
        page.screenshot(path=str(shot))
        body = page.inner_text("body")
        browser.close()
    assert SHARE_PANEL in body and COLUMN_PANEL in body
    assert "drift share" in body and "recency" in body and "spend" in body
    assert body.count("Timestamps") == 2  # both plots have their x axis of runs
    assert shot.stat().st_size > 20_000
    target = os.environ.get("DRIFT_SCREENSHOT_PATH")
    if target:
        shutil.copy(shot, target)
