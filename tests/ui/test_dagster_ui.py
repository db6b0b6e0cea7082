"""The Dagster UI in a real browser: `dagster dev` on 127.0.0.1, headless Debian Chromium
driven by Playwright (the system browser: no browser download).

Checks that every asset group and every send gate shows, and saves a screenshot of the asset
graph (`make screenshot` refreshes the one in the README).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from orchestration.settings import PROJECT_DIR

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
GROUPS = [
    "raw",
    "warehouse",
    "features",
    "model",
    "targeting",
    "campaigns",
    "delivery",
    "evaluation",
    "observability",
]
# (asset page, check name) of every gate in front of the sends
GATES = [
    ("raw/orders", "fresh_within_window"),
    ("feature_snapshot", "drift_share_below_threshold"),
    ("feature_snapshot", "features_cover_candidates"),
    ("online_features", "online_store_fresh"),
    ("model_promotion", "champion_beats_random"),
    ("campaign_decisions", "audience_compliant"),
]

pytestmark = pytest.mark.e2e


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _restore_sigint() -> None:
    # A background `dagster dev` inherits SIGINT ignored; it must stop on SIGINT (SIGTERM hangs).
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.fixture(scope="module")
def dagster_ui(tmp_path_factory):
    if not Path(CHROMIUM).exists():
        pytest.fail(
            f"{CHROMIUM} not found: install Debian's browser (apt-get install chromium) or set CHROMIUM_PATH"
        )
    root = tmp_path_factory.mktemp("ui")
    home = root / "dagster_home"
    home.mkdir()
    shutil.copy(PROJECT_DIR / "dagster.yaml", home / "dagster.yaml")
    port = _free_port()
    env = {**os.environ, "DAGSTER_HOME": str(home), "CAMPAIGN_DATA_DIR": str(root / "data")}
    log = (root / "dagster_dev.log").open("w")
    process = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "dagster"),
            "dev",
            "-w",
            "workspace.yaml",
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
        ],
        cwd=PROJECT_DIR,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        preexec_fn=_restore_sigint,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                with urllib.request.urlopen(f"{url}/server_info", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"dagster dev did not come up; see {log.name}")
            time.sleep(1)
        yield url, root
    finally:
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
        log.close()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def _open(browser, url: str):
    page = browser.new_page(viewport={"width": 2000, "height": 1150})
    page.goto(url, wait_until="networkidle", timeout=180_000)
    page.wait_for_timeout(2000)
    skip = page.get_by_role("button", name="Skip")  # the one-time newsletter dialog
    if skip.count():
        skip.click()
    return page


def test_asset_graph_shows_every_group(dagster_ui, browser):
    url, root = dagster_ui
    page = _open(browser, f"{url}/asset-groups")
    page.wait_for_timeout(3000)
    shot = root / "asset_graph.png"
    page.screenshot(path=str(shot))  # first, so a failure below has its picture
    body = page.inner_text("body")
    missing = [g for g in GROUPS if g not in body]
    assert missing == [], f"groups missing from the asset graph: {missing}"
    assert shot.stat().st_size > 50_000
    target = os.environ.get("UI_SCREENSHOT_PATH")
    if target:
        shutil.copy(shot, target)
    page.close()


@pytest.mark.parametrize(
    ("group", "assets"),
    [
        ("delivery", ["campaign_sends"]),
        ("targeting", ["campaign_decisions", "customer_scores"]),
        ("features", ["feature_snapshot", "online_features"]),
        ("model", ["uplift_model", "training_set"]),
    ],
)
def test_each_group_opens_on_its_assets(dagster_ui, browser, group, assets):
    url, _ = dagster_ui
    page = _open(browser, f"{url}/asset-groups?expanded=global%40global%3A{group}")
    page.wait_for_timeout(2000)
    body = page.inner_text("body")
    for asset in assets:
        assert asset in body, f"{asset} not drawn in group {group}"
    page.close()


@pytest.mark.parametrize(("asset", "check"), GATES)
def test_each_send_gate_is_shown_as_a_blocking_check(dagster_ui, browser, asset, check):
    url, _ = dagster_ui
    page = _open(browser, f"{url}/assets/{asset}?view=checks")
    page.get_by_text(check).first.click()
    page.wait_for_timeout(1000)
    body = page.inner_text("body")
    assert check in body
    assert "This is a blocking asset check." in body
    page.close()
