"""The audience gates in Dagster: a failing size band fails the audiences step and nothing
downstream of the audiences runs; on the e2e world the guards pass and record their evidence."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
import yaml
from dagster import AssetCheckSeverity, AssetKey, asset, materialize

from orchestration.settings import CAMPAIGNS_DIR, Settings
from tests.conftest import point_at

CHECKS = (
    "audience_size_within_band",
    "audience_composition_matches_eligible",
    "audience_selection_rates_fair",
)
NOW = datetime(2026, 11, 23, 9, tzinfo=UTC)


def _tiny_world(tmp_path, monkeypatch, expected_audience: dict) -> tuple[Settings, list[str]]:
    """A data directory with dim_customers and a decisions file (300 sends per campaign out of
    2,000 candidates), and a copy of the shipped campaigns with ``expected_audience`` set."""
    from orchestration.core.decisioning.campaigns import load_campaigns

    point_at(monkeypatch, tmp_path / "data")
    folder = tmp_path / "campaigns"
    folder.mkdir()
    for path in sorted(CAMPAIGNS_DIR.glob("*.yaml")):
        body = yaml.safe_load(path.read_text())
        body["expected_audience"] = expected_audience
        (folder / path.name).write_text(yaml.safe_dump(body))
    monkeypatch.setenv("CAMPAIGN_CAMPAIGNS_DIR", str(folder))
    s = Settings.from_env()
    names = sorted(load_campaigns(folder).campaigns)
    n = 2000
    ids = np.arange(1, n + 1)
    regions = np.array(["us-east", "us-west", "eu-west", "eu-central", "apac"])[ids % 5]
    s.exports_dir.mkdir(parents=True)
    pd.DataFrame(
        {
            "customer_id": ids,
            "region": regions,
            "signed_up_at": [NOW - timedelta(days=int(d)) for d in 30 + (ids * 7) % 1000],
        }
    ).to_parquet(s.exports_dir / "dim_customers.parquet")
    return s, names


def _decisions(s: Settings, names: list[str]) -> str:
    from orchestration.core.decisioning.decision_store import write_decisions

    n = 2000
    frames = []
    for name in names:
        send = np.arange(n) % 6 == 0  # every sixth candidate, ~333: proportional
        frames.append(
            pd.DataFrame(
                {
                    "run_id": "upstream",
                    "campaign": name,
                    "customer_id": np.arange(1, n + 1),
                    "decision": np.where(send, "send", "excluded"),
                    "reason": np.where(send, "selected_top_uplift", "outside_send_cap"),
                    "model_version": "1",
                    "policy_version": "p",
                    "decided_at": pd.Timestamp(NOW),
                    "dry_run": False,
                }
            )
        )
    return str(write_decisions(pd.concat(frames), s.decisions_dir, "2026-11-23", "upstream"))


def _materialize(s: Settings, names: list[str]):
    from orchestration.defs.campaigns import campaign_audiences
    from orchestration.defs.run_artifacts import DecisionBatch
    from orchestration.resources import CampaignSettings, MessagingGateway

    path = _decisions(s, names)

    @asset(name="campaign_decisions")
    def decisions_stand_in():
        return DecisionBatch(path, NOW, "2026-11-23", tuple(names))

    @asset(deps=[AssetKey(["audience", n]) for n in names])
    def release_stand_in() -> None:
        """Stands for campaign_release: downstream of every audience."""

    return materialize(
        [decisions_stand_in, campaign_audiences, release_stand_in],
        resources={"settings": CampaignSettings(), "gateway": MessagingGateway()},
        raise_on_error=False,
    )


def _evaluations(result) -> dict[str, object]:
    return {
        f"{e.asset_key.to_user_string()}:{e.check_name}": e
        for e in result.get_asset_check_evaluations()
    }


def _materialized(result) -> set[str]:
    return {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}


def test_an_audience_outside_its_declared_band_fails_the_step_and_blocks_downstream(
    tmp_path, monkeypatch
):
    s, names = _tiny_world(tmp_path, monkeypatch, {"min": 1000})
    result = _materialize(s, names)
    assert not result.success
    checks = _evaluations(result)
    for name in names:
        size = checks[f"audience/{name}:audience_size_within_band"]
        assert not size.passed and size.severity == AssetCheckSeverity.ERROR
        assert size.metadata["audience"].value == 334
        assert size.metadata["declared_min"].value == 1000
        assert "below the declared minimum 1000" in size.description
        assert checks[f"audience/{name}:audience_composition_matches_eligible"].passed
    failure = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert "blocking asset check" in str(failure[0].event_specific_data.error)
    assert "release_stand_in" not in _materialized(result)
    assert (s.reports_dir / "audience_guards").is_dir()  # the evidence is written either way


def test_an_audience_inside_its_band_lets_downstream_run(tmp_path, monkeypatch):
    s, names = _tiny_world(tmp_path, monkeypatch, {"min": 100, "max": 6000})
    result = _materialize(s, names)
    assert result.success
    checks = _evaluations(result)
    assert {f"audience/{n}:{c}" for n in names for c in CHECKS} <= set(checks)
    assert all(checks[f"audience/{n}:{c}"].passed for n in names for c in CHECKS)
    assert "release_stand_in" in _materialized(result)


@pytest.mark.e2e
def test_the_guards_pass_on_the_default_world_and_record_their_evidence(world):
    from orchestration.core.decisioning.audience_guards import load_guard_report, selection_rates

    result = world["first"]
    assert result.success
    checks = _evaluations(result)
    report = load_guard_report(world["settings"].reports_dir, result.run_id)
    assert report is not None and report["run_id"] == result.run_id
    for name, guards in report["campaigns"].items():
        for check in CHECKS:
            assert f"audience/{name}:{check}" in checks
        assert checks[f"audience/{name}:audience_size_within_band"].passed
        assert checks[f"audience/{name}:audience_composition_matches_eligible"].passed
        size, comp, fair = guards["size"], guards["composition"], guards["fairness"]
        print(
            f"{name}: audience {size['audience']}, eligible {comp['eligible']}, worst share diff "
            f"{comp['worst_share_diff']} ({comp.get('worst_segment')}), total variation "
            f"{comp['total_variation']}, four-fifths {fair['four_fifths_ratio']} "
            f"({fair['mode']}, passed {fair['passed']})"
        )
    rates = selection_rates(report)
    assert len(rates) and rates["selection_rate"].between(0, 1).all()
    print(rates.round(3).to_string())
