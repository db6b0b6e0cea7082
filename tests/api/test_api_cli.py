"""`campaign token create / list / revoke` and `campaign serve` (the one test over a socket)."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
from typer.testing import CliRunner

from orchestration.api.tokens import TokenStore
from orchestration.cli import app

ENV = {"COLUMNS": "200", "NO_COLOR": "1", "TERM": "dumb"}
TOKEN = re.compile(r"^cmp_[0-9a-f]{12}_[A-Za-z0-9_-]{43}$")


def _invoke(*args: str):
    result = CliRunner().invoke(app, list(args), env=ENV, prog_name="campaign")
    return result, result.output


def test_token_create_prints_the_token_once_and_stores_only_a_salted_hash(data_dir: Path):
    result, output = _invoke(
        "token", "create", "--scope", "decide", "--scope", "admin", "--name", "web"
    )
    assert result.exit_code == 0, output
    token = output.strip().splitlines()[-1]
    assert TOKEN.match(token), output
    path = data_dir / "api" / "tokens.json"
    stored = path.read_text()
    secret = token.split("_", 2)[2]
    assert secret not in stored and token not in stored
    entry = json.loads(stored)["tokens"][0]
    assert entry["name"] == "web" and entry["scopes"] == ["admin", "decide"]
    assert len(entry["salt"]) == 32 and len(entry["digest"]) == 64
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    record = TokenStore(path).authenticate(token)
    assert record is not None and record.name == "web"

    listed, text = _invoke("token", "list")
    assert listed.exit_code == 0 and "web" in text and "admin, decide" in text
    assert secret not in text and entry["digest"] not in text and entry["salt"] not in text

    revoked, text = _invoke("token", "revoke", "web")
    assert revoked.exit_code == 0 and "revoked" in text
    assert TokenStore(path).authenticate(token) is None
    assert json.loads(path.read_text())["tokens"][0]["revoked_at"]
    assert "revoked" not in _invoke("token", "revoke", "web")[1]  # already revoked: an error


def test_token_commands_fail_clearly(data_dir: Path):
    result, output = _invoke("token", "create", "--scope", "everything")
    assert result.exit_code == 1 and "unknown scope(s) everything" in output
    assert _invoke("token", "create", "--scope", "decide", "--name", "ci")[0].exit_code == 0
    again, output = _invoke("token", "create", "--scope", "decide", "--name", "ci")
    assert again.exit_code == 1 and "a token named 'ci' exists" in output
    missing, output = _invoke("token", "revoke", "nobody")
    assert missing.exit_code == 1 and "no active token named 'nobody'" in output
    empty_file = data_dir / "elsewhere.json"
    listed, output = _invoke("token", "list", "--tokens-file", str(empty_file))
    assert listed.exit_code == 0 and "no tokens" in output


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_campaign_serve_binds_the_loopback_and_answers_health(data_dir: Path):
    """On an empty data directory the service starts, degraded: nothing to decide with, and
    every decision would be a safe default."""
    port = _free_port()
    campaign = Path(sys.executable).with_name("campaign")
    process = subprocess.Popen(
        [str(campaign), "serve", "--port", str(port)],
        env={**os.environ, **ENV},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        health = None
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and process.poll() is None:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/v1/health", timeout=2).json()
                break
            except httpx.HTTPError:
                time.sleep(0.5)
        assert health is not None, process.stdout.read().decode() if process.poll() else "timeout"
        assert health["status"] == "degraded" and health["released"] is False
        assert health["problems"]  # no feature registry, no model, no raw data
        unauthorised = httpx.post(
            f"http://127.0.0.1:{port}/v1/decisions",
            json={"request_id": "r", "customer_id": 1, "campaign": "x"},
            timeout=5,
        )
        assert unauthorised.status_code == 401
    finally:
        process.terminate()
        process.wait(timeout=30)
