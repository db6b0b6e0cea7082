"""Each run executes notebook 04 and saves the campaign report as HTML under data/reports/."""

from __future__ import annotations

from pathlib import Path

import pytest
from dagster import AssetKey

pytestmark = pytest.mark.e2e


def _report_metadata(result) -> dict:
    for event in result.get_asset_materialization_events():
        if event.asset_key == AssetKey("campaign_report"):
            return {k: getattr(v, "value", v) for k, v in event.materialization.metadata.items()}
    raise AssertionError("campaign_report was not materialized")


def test_each_run_saves_the_campaign_report_as_html(world):
    from orchestration.core.decisioning.campaigns import load_campaigns

    result = world["first"]
    assert result.success
    s = world["settings"]
    metadata = _report_metadata(result)
    path = Path(metadata["report"])
    assert path == s.reports_dir / f"campaign_report_{result.run_id[:8]}.html"
    assert path.exists()
    assert metadata["execution_seconds"] > 0
    html = path.read_text(encoding="utf-8")
    for name in load_campaigns(s.campaigns_dir).campaigns:
        assert name in html
    assert "Measured lift" in html
    # Decisions and the ledger carry pseudonymous ids only: no contact detail reaches the report.
    assert "@example.com" not in html
    print(f"campaign report: {metadata['execution_seconds']:.1f} s, {len(html) // 1024} KiB")
