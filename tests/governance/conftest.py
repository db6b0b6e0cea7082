"""Governance fixtures: a data directory, the four-identity team, approvals required."""

from __future__ import annotations

import pytest

from orchestration.settings import Settings
from tests.governance.approvers import write_approvers


@pytest.fixture
def settings(data_dir, tmp_path, monkeypatch) -> Settings:
    write_approvers(tmp_path / "team", monkeypatch)
    return Settings.from_env()


@pytest.fixture
def governance(settings):
    from orchestration.core.governance.approvals import governance_for

    return governance_for(settings)
