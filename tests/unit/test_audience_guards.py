"""The audience gates on hand-made decisions: the size bands (declared and from the released
history), the composition guard and the four-fifths bias audit."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from orchestration.core.decisioning.audience_guards import (
    FAIRNESS_MIN_SEGMENT_SIZE,
    GuardDefaults,
    composition_verdict,
    evaluate_audience,
    fairness_verdict,
    load_guard_report,
    released_audiences,
    segment_frame,
    segment_table,
    selection_rates,
    size_verdict,
    tenure_band,
    write_guard_report,
)
from orchestration.core.decisioning.campaigns import Campaign
from orchestration.core.decisioning.decision_store import write_decisions

NOW = datetime(2026, 11, 23, 9, tzinfo=UTC)
REGIONS = ("us-east", "us-west", "eu-west", "eu-central", "apac")
NO_HISTORY = pd.DataFrame(columns=["run_id", "send_date", "released_at", "campaign", "recipients"])


def campaign(**fields) -> Campaign:
    return Campaign(name="spring", channel="email", max_sends=100_000, **fields)


def customers(n: int, regions=REGIONS, tenure_days=(400,), **extra) -> pd.DataFrame:
    ids = np.arange(1, n + 1)
    return pd.DataFrame(
        {
            "customer_id": ids,
            "region": [regions[i % len(regions)] for i in range(n)],
            "signed_up_at": [
                NOW - timedelta(days=tenure_days[i % len(tenure_days)]) for i in range(n)
            ],
            **extra,
        }
    )


def decisions(ids_selected, n: int, not_eligible=()) -> pd.DataFrame:
    """``n`` candidates: the ``ids_selected`` sent, ``not_eligible`` excluded before eligibility,
    the rest outside the send cap."""
    ids = np.arange(1, n + 1)
    selected, blocked = set(ids_selected), set(not_eligible)
    return pd.DataFrame(
        {
            "customer_id": ids,
            "campaign": "spring",
            "decision": ["send" if i in selected else "excluded" for i in ids],
            "reason": [
                "selected_top_uplift"
                if i in selected
                else ("not_eligible" if i in blocked else "outside_send_cap")
                for i in ids
            ],
        }
    )


def history(*days: tuple[str, int]) -> pd.DataFrame:
    return pd.DataFrame(
        [(f"run{i}", day, f"{day}T09:00", "spring", n) for i, (day, n) in enumerate(days)],
        columns=["run_id", "send_date", "released_at", "campaign", "recipients"],
    )


# --- size ---------------------------------------------------------------------------------------


def test_declared_band_blocks_below_min_and_above_max():
    c = campaign(expected_audience={"min": 100, "max": 6000})
    assert size_verdict(c, 150, "2026-11-23", NO_HISTORY).passed
    low = size_verdict(c, 50, "2026-11-23", NO_HISTORY)
    assert not low.passed and low.blocking
    assert "below the declared minimum 100" in low.description
    high = size_verdict(c, 7000, "2026-11-23", NO_HISTORY)
    assert not high.passed and "above the declared maximum 6000" in high.description
    assert high.metadata["declared_max"] == 6000


def test_no_band_declared_and_no_history_passes_anything():
    result = size_verdict(campaign(), 0, "2026-11-23", NO_HISTORY)
    assert result.passed
    assert result.metadata["history_band_applied"] is False


def test_history_band_applies_only_from_three_released_days():
    two = history(("2026-11-21", 1000), ("2026-11-22", 1000))
    assert size_verdict(campaign(), 4000, "2026-11-23", two).passed  # not yet: 2 of 3 days
    three = history(("2026-11-20", 1000), ("2026-11-21", 900), ("2026-11-22", 1100))
    above = size_verdict(campaign(), 3001, "2026-11-23", three)
    assert not above.passed and above.blocking
    assert above.metadata["history_median"] == 1000 and above.metadata["history_high"] == 3000
    below = size_verdict(campaign(), 333, "2026-11-23", three)
    assert not below.passed and "below 1/3 of the median 1000" in below.description
    assert size_verdict(campaign(), 3000, "2026-11-23", three).passed  # 3x exactly: inside
    assert size_verdict(campaign(), 334, "2026-11-23", three).passed


def test_history_median_is_over_the_last_seven_days_and_can_be_overridden():
    old = [(f"2026-11-0{d}", 100) for d in range(1, 8)]  # 7 old small days ...
    recent = [(f"2026-11-1{d}", 1000) for d in range(0, 7)]  # ... then 7 recent large ones
    frame = history(*old, *recent)
    result = size_verdict(campaign(), 1000, "2026-11-23", frame)
    assert result.passed and result.metadata["history_days"] == 7
    assert result.metadata["history_median"] == 1000
    strict = campaign(expected_audience={"history_factor": 1.5, "history_min_days": 5})
    assert not size_verdict(strict, 1600, "2026-11-23", frame).passed
    assert size_verdict(strict, 1400, "2026-11-23", frame).passed
    defaults = GuardDefaults(history_min_days=8)  # e.g. from the settings
    assert size_verdict(campaign(), 5000, "2026-11-23", frame, defaults).passed
    assert not size_verdict(campaign(), 5000, "2026-11-23", frame, GuardDefaults()).passed


def test_a_same_day_rerun_tops_up_the_day_instead_of_looking_small():
    frame = history(
        ("2026-11-20", 1000), ("2026-11-21", 1000), ("2026-11-22", 1000), ("2026-11-23", 1000)
    )
    rerun = size_verdict(campaign(), 0, "2026-11-23", frame)
    assert rerun.passed
    assert rerun.metadata["audience"] == 1000 and rerun.metadata["earlier_released_today"] == 1000


def test_a_dry_run_campaign_fails_without_blocking():
    result = size_verdict(campaign(dry_run=True, expected_audience={"min": 10}), 0, "d", NO_HISTORY)
    assert not result.passed and not result.blocking


def _release(run_id, day, campaigns, status="released"):
    return {
        "run_id": run_id,
        "status": status,
        "released_at": f"{day}T09:00:00+00:00",
        "send_date": day,
        "campaigns": json.dumps(campaigns),
        "messages": 0,
    }


def test_released_audiences_counts_released_runs_from_their_decision_files(tmp_path):
    def run(run_id, day, sends, other=0):
        rows = pd.DataFrame(
            {
                "campaign": ["spring"] * (sends + 5) + ["autumn"] * other,
                "decision": ["send"] * (sends - 1)
                + ["deferred"]
                + ["excluded"] * 5
                + ["send"] * other,
            }
        )
        write_decisions(rows, tmp_path, day, run_id)

    run("a", "2026-11-20", 100, other=7)
    run("b", "2026-11-21", 200)
    run("c", "2026-11-22", 300)  # revoked: not history
    run("d", "2026-11-22", 999)  # the current run: excluded
    releases = pd.DataFrame(
        [
            _release("a", "2026-11-20", ["autumn", "spring"]),
            _release("b", "2026-11-21", ["spring"]),
            _release("c", "2026-11-22", ["spring"], status="revoked"),
            _release("gone", "2026-11-22", ["spring"]),  # decision file removed: skipped
        ]
    )
    found = released_audiences(tmp_path, releases, {"spring": 8, "autumn": 8}, exclude_run="d")
    counts = {(r.run_id, r.campaign): r.recipients for r in found.itertuples()}
    assert counts == {("a", "autumn"): 7, ("a", "spring"): 100, ("b", "spring"): 200}
    # only the latest days are read (the newest, 2026-11-22, lost its decision file)
    only_latest = released_audiences(tmp_path, releases, {"spring": 2})
    assert set(only_latest["run_id"]) == {"b"}
    assert released_audiences(tmp_path, releases.iloc[:0], {"spring": 8}).empty
    # a ledger whose only releases are revoked (or awaiting approval) has no history, no error
    assert released_audiences(tmp_path, releases.iloc[2:3], {"spring": 8}).empty


# --- composition ------------------------------------------------------------------------------


def _table(rows: pd.DataFrame, people: pd.DataFrame, *sensitive) -> pd.DataFrame:
    segments = segment_frame(rows, people, NOW, list(sensitive))
    return segment_table(segments, ("region", "tenure_band", *sensitive))


def test_composition_blocks_an_audience_drawn_from_one_region():
    people = customers(1000)  # 200 per region
    one_region = people.loc[people["region"] == "eu-west", "customer_id"].head(150)
    result = composition_verdict(campaign(), _table(decisions(one_region, 1000), people))
    assert not result.passed and result.blocking
    assert result.metadata["worst_segment"] == "region=eu-west"
    assert result.metadata["worst_share_diff"] == pytest.approx(0.8)


def test_composition_passes_a_proportional_audience_and_a_mild_preference():
    people = customers(1000)
    proportional = composition_verdict(campaign(), _table(decisions(range(1, 301), 1000), people))
    assert proportional.passed and abs(proportional.metadata["worst_share_diff"]) < 0.01
    # a model preferring one region (40 % of the audience vs 20 % eligible) is not misrouting
    preferred = list(people.loc[people["region"] == "apac", "customer_id"].head(120))
    preferred += list(people.loc[people["region"] != "apac", "customer_id"].head(180))
    mild = composition_verdict(campaign(), _table(decisions(preferred, 1000), people))
    assert mild.passed and mild.metadata["worst_share_diff"] == pytest.approx(0.2)


def test_composition_compares_with_the_eligible_not_with_all_candidates():
    """A campaign restricted to one region by its eligibility filter is not misrouted."""
    people = customers(1000)
    outside = people.loc[people["region"] != "apac", "customer_id"]
    inside = people.loc[people["region"] == "apac", "customer_id"].head(100)
    rows = decisions(inside, 1000, not_eligible=outside)
    assert composition_verdict(campaign(), _table(rows, people)).passed


def test_composition_blocks_a_tenure_band_and_skips_tiny_audiences():
    people = customers(1000, regions=("us-east",), tenure_days=(30, 500, 900, 1200))
    newest = people.loc[people["customer_id"] % 4 == 1, "customer_id"].head(100)
    result = composition_verdict(campaign(), _table(decisions(newest, 1000), people))
    assert not result.passed and result.metadata["worst_segment"] == "tenure_band=<1y"
    tiny = composition_verdict(campaign(), _table(decisions(newest.head(10), 1000), people))
    assert tiny.passed and "too small to judge" in tiny.description
    loose = campaign(composition={"max_share_diff": 0.9})
    assert composition_verdict(loose, _table(decisions(newest, 1000), people)).passed


def test_tenure_bands():
    days = pd.Series([0, 364, 365, 729, 730, 1094, 1095, 5000, np.nan])
    assert list(tenure_band(days)) == [
        "<1y", "<1y", "1-2y", "1-2y", "2-3y", "2-3y", "3y+", "3y+", "(missing)"
    ]  # fmt: skip


# --- fairness -------------------------------------------------------------------------------------


def _two_regions(selected_a: int, selected_b: int, n_a: int = 200, n_b: int = 200):
    people = customers(n_a + n_b, regions=("a",), tenure_days=(400,))
    people.loc[people.index >= n_a, "region"] = "b"
    chosen = list(range(1, selected_a + 1)) + list(range(n_a + 1, n_a + selected_b + 1))
    return decisions(chosen, n_a + n_b), people


def test_four_fifths_ratio_is_the_lowest_over_the_highest_selection_rate():
    rows, people = _two_regions(100, 60)  # rates 0.5 and 0.3
    result = fairness_verdict(campaign(), _table(rows, people))
    assert result.metadata["ratio_region"] == pytest.approx(0.6)
    assert result.metadata["four_fifths_ratio"] == pytest.approx(0.6)
    assert result.details["ratios"]["region"]["lowest"] == "b (0.300)"
    rates = {(r["dimension"], r["segment"]): r["selection_rate"] for r in result.rows}
    assert rates[("region", "a")] == 0.5 and rates[("region", "b")] == 0.3
    assert not result.passed


def test_fairness_warns_by_default_and_blocks_when_the_campaign_says_so():
    rows, people = _two_regions(100, 60)
    warn = fairness_verdict(campaign(), _table(rows, people))
    assert (warn.passed, warn.blocking, warn.metadata["mode"]) == (False, False, "warn")
    block = fairness_verdict(campaign(fairness={"mode": "block"}), _table(rows, people))
    assert (block.passed, block.blocking) == (False, True)
    lenient = campaign(fairness={"mode": "block", "min_ratio": 0.5})
    assert fairness_verdict(lenient, _table(rows, people)).passed
    fair_rows, _ = _two_regions(100, 90)  # 0.5 vs 0.45: 0.9
    assert fairness_verdict(campaign(fairness={"mode": "block"}), _table(fair_rows, people)).passed


def test_small_segments_are_left_out_of_the_ratio():
    rows, people = _two_regions(100, 0, n_b=FAIRNESS_MIN_SEGMENT_SIZE - 1)
    result = fairness_verdict(campaign(fairness={"mode": "block"}), _table(rows, people))
    assert result.passed and result.metadata["ratio_region"] == "n/a"
    counted = {r["segment"]: r["counted"] for r in result.rows if r["dimension"] == "region"}
    assert counted == {"a": True, "b": False}
    lower = campaign(fairness={"mode": "block", "min_segment_size": 50})
    assert not fairness_verdict(lower, _table(rows, people)).passed  # b: rate 0 -> ratio 0


def test_declared_sensitive_columns_are_audited_and_unknown_ones_fail():
    people = customers(400, regions=("a",), tenure_days=(400,))
    people["age_band"] = np.where(people["customer_id"] <= 200, "young", "old")
    rows = decisions(list(range(1, 101)) + list(range(201, 221)), 400)  # 0.5 vs 0.1
    c = campaign(fairness={"sensitive_columns": ["age_band"]})
    result = evaluate_audience(c, rows, people, NOW, "2026-11-23", NO_HISTORY).fairness
    assert result.metadata["ratio_age_band"] == pytest.approx(0.2)
    assert not result.passed and "age_band 0.20" in result.description
    missing = campaign(fairness={"sensitive_columns": ["religion"]})
    unknown = evaluate_audience(missing, rows, people, NOW, "2026-11-23", NO_HISTORY).fairness
    assert not unknown.passed and "religion" in unknown.description


def test_numeric_sensitive_columns_are_cut_into_quintiles():
    people = customers(500, regions=("a",), income=np.arange(500) * 100.0)
    segments = segment_frame(decisions(range(1, 101), 500), people, NOW, ["income"])
    assert segments["income"].nunique() == 5


# --- the campaign file and the report ---------------------------------------------------------


@pytest.mark.parametrize(
    "fields, fragment",
    [
        ({"expected_audience": {"min": 10, "max": 5}}, "above max"),
        ({"expected_audience": {"minimum": 10}}, "minimum"),
        ({"fairness": {"mode": "strict"}}, "mode"),
        ({"fairness": {"min_ratio": 1.5}}, "min_ratio"),
        ({"composition": {"max_share_diff": 0}}, "max_share_diff"),
    ],
)
def test_bad_guard_fields_are_rejected(fields, fragment):
    with pytest.raises(ValueError, match=fragment):
        campaign(**fields)


def test_the_guard_report_round_trips_into_selection_rates(tmp_path):
    rows, people = _two_regions(100, 60)
    guards = {"spring": evaluate_audience(campaign(), rows, people, NOW, "2026-11-23", NO_HISTORY)}
    path = write_guard_report(tmp_path, "run-1", NOW, "2026-11-23", guards)
    assert path == tmp_path / "audience_guards" / "run=run-1.json"
    report = load_guard_report(tmp_path, "run-1")
    assert report == load_guard_report(tmp_path)  # newest
    rates = selection_rates(report)
    region = rates[rates["dimension"] == "region"].set_index("segment")
    assert region.loc["b", "selection_rate"] == 0.3 and region.loc["b", "ratio"] == 0.6
    assert set(rates["mode"]) == {"warn"}
    assert load_guard_report(tmp_path / "none") is None
    assert selection_rates(None).empty
