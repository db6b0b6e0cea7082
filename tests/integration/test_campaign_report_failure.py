"""The campaign_report asset fails with the notebook cell's error (and still saves the HTML)."""

from __future__ import annotations

from dagster import materialize

from orchestration.defs.reports import campaign_report, report_path
from orchestration.resources import CampaignSettings


def test_a_failing_cell_fails_the_asset_with_the_cell_error(data_dir):
    # An empty data directory: no run has written decisions yet, so the decisions cell raises.
    result = materialize(
        [campaign_report], resources={"settings": CampaignSettings()}, raise_on_error=False
    )
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    message = failure.step_failure_data.user_failure_data.description
    assert "04_campaign_report.ipynb failed in cell" in message
    assert "FileNotFoundError" in message
    assert "no decisions under" in message
    html = report_path(data_dir / "reports", result.run_id)
    assert html.exists()
    assert "FileNotFoundError" in html.read_text(encoding="utf-8")
