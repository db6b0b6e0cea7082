"""Gateway fixtures: a small raw world and the stub HTTP provider on 127.0.0.1."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.gateway.raw_world import write_raw
from tests.gateway.stub_provider import StubProvider


@pytest.fixture
def raw_dir(tmp_path: Path) -> Path:
    return write_raw(tmp_path / "raw", 4, unverified=(4,))


@pytest.fixture
def stub(monkeypatch: pytest.MonkeyPatch):
    provider = StubProvider(token="test-token")
    provider.start()
    monkeypatch.setenv("STUB_PROVIDER_TOKEN", "test-token")
    yield provider
    provider.stop()
