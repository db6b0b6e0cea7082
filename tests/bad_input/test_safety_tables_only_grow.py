"""Suppressions and opt-outs only grow: one that disappears since the last release blocks it.

Small hand-made raw directories: the fingerprint the release saves, then a raw set that lost
rows. Each failure names the table, the counts and an example key, and says what to do.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from orchestration.core.world import safety_tables
from orchestration.core.world.safety_tables import (
    compare,
    fingerprint,
    fingerprint_path,
    load,
    record_release_fingerprint,
)

T0 = pd.Timestamp("2026-01-01", tz="UTC")
RELEASED_AT = "2026-02-01T09:00:00+00:00"


def _suppressions(raw: Path, rows: list[tuple[int, int, str | None, str]]) -> None:
    """(suppression_id, customer_id, channel, reason) rows."""
    pd.DataFrame(
        {
            "suppression_id": pd.Series([r[0] for r in rows], dtype="int64"),
            "customer_id": pd.Series([r[1] for r in rows], dtype="int64"),
            "channel": pd.Series([r[2] for r in rows], dtype="string"),
            "reason": pd.Series([r[3] for r in rows], dtype="string"),
            "suppressed_at": pd.Series([T0] * len(rows), dtype="datetime64[us, UTC]"),
        }
    ).to_parquet(raw / "suppressions.parquet")


def _consents(raw: Path, rows: list[tuple[int, int, str, bool, pd.Timestamp]]) -> None:
    """(consent_event_id, customer_id, channel, is_opted_in, consented_at) rows."""
    pd.DataFrame(
        {
            "consent_event_id": pd.Series([r[0] for r in rows], dtype="int64"),
            "customer_id": pd.Series([r[1] for r in rows], dtype="int64"),
            "channel": [r[2] for r in rows],
            "is_opted_in": [r[3] for r in rows],
            "source": "preference_center",
            "consented_at": pd.Series([r[4] for r in rows], dtype="datetime64[us, UTC]"),
        }
    ).to_parquet(raw / "consent_events.parquet")


def _lifts(raw: Path, rows: list[tuple[int, int, str | None, str]]) -> None:
    """(lift_id, customer_id, channel, reason) rows."""
    pd.DataFrame(
        {
            "lift_id": pd.Series([r[0] for r in rows], dtype="int64"),
            "customer_id": pd.Series([r[1] for r in rows], dtype="int64"),
            "channel": pd.Series([r[2] for r in rows], dtype="string"),
            "reason": pd.Series([r[3] for r in rows], dtype="string"),
            "lifted_at": pd.Series([T0 + pd.Timedelta(days=40)] * len(rows)),
        }
    ).to_parquet(raw / "suppression_lifts.parquet")


THREE = [
    (1, 11, "email", "hard_bounce"),
    (2, 12, None, "legal_request"),
    (3, 13, "sms", "complaint"),
]
CONSENTS = [
    (1, 11, "email", True, T0),
    (2, 11, "email", False, T0 + pd.Timedelta(days=3)),
    (3, 12, "sms", False, T0),
    (4, 13, "push", True, T0),
]


@pytest.fixture
def released(tmp_path) -> tuple[Path, Path]:
    """A raw dir with 3 suppressions and 2 opt-outs, released by run abc123."""
    raw, gateway = tmp_path / "raw", tmp_path / "gateway"
    raw.mkdir()
    _suppressions(raw, THREE)
    _consents(raw, CONSENTS)
    record_release_fingerprint(raw, gateway, "abc123", RELEASED_AT)
    return raw, gateway


def _verdict(raw: Path, gateway: Path, table: str, share: float = 0.0):
    previous = load(fingerprint_path(gateway))
    return compare(previous, fingerprint(raw, tables=(table,)), share, tables=(table,)).tables[
        table
    ]


def test_an_emptied_suppressions_file_blocks_with_the_counts(released):
    raw, gateway = released
    _suppressions(raw, [])
    verdict = _verdict(raw, gateway, "suppressions")
    assert not verdict.passed
    assert verdict.message.startswith(
        "raw/suppressions: 3 rows at the last release (run abc123), 0 now; "
        "3 suppressions disappeared (e.g. customer_id=11, channel=email, reason=hard_bounce)"
    )
    assert "restore the file, or record each lift" in verdict.message
    assert "suppression_lifts.parquet" in verdict.message
    assert (verdict.previous_rows, verdict.current_rows, verdict.disappeared) == (3, 0, 3)


def test_an_emptied_table_blocks_whatever_the_allowed_share(released):
    raw, gateway = released
    _suppressions(raw, [])
    verdict = _verdict(raw, gateway, "suppressions", share=1.0)
    assert not verdict.passed and "the table is empty" in verdict.message


def test_one_missing_suppression_blocks_and_is_named(released):
    raw, gateway = released
    _suppressions(raw, [THREE[0], THREE[2], (4, 14, "push", "fraud")])  # 12 gone, 14 new
    verdict = _verdict(raw, gateway, "suppressions")
    assert not verdict.passed
    assert "3 rows at the last release (run abc123), 3 now; 1 suppression disappeared" in (
        verdict.message
    )
    assert "customer_id=12, channel=null (every channel), reason=legal_request" in verdict.message


def test_a_share_within_the_threshold_passes_and_says_so(released):
    raw, gateway = released
    _suppressions(raw, THREE[:2])
    verdict = _verdict(raw, gateway, "suppressions", share=0.5)
    assert verdict.passed
    assert "1 suppression disappeared" in verdict.message
    assert "33.33% of the last release's, within the allowed 50.00%" in verdict.message


def test_a_lift_recorded_as_an_event_explains_the_missing_row(released):
    raw, gateway = released
    _suppressions(raw, [THREE[0], THREE[2]])
    _lifts(raw, [(1, 12, None, "legal_request")])
    verdict = _verdict(raw, gateway, "suppressions")
    assert verdict.passed, verdict.message
    assert verdict.message.endswith("none disappeared (1 lifted by explicit lift events)")
    # the next release takes the lift in: it cannot explain another disappearance later
    record_release_fingerprint(raw, gateway, "def456", RELEASED_AT)
    _suppressions(raw, [THREE[0]])
    again = _verdict(raw, gateway, "suppressions")
    assert not again.passed and "customer_id=13, channel=sms, reason=complaint" in again.message


def test_renumbered_ids_and_rewritten_channels_lose_nothing(released):
    raw, gateway = released
    _suppressions(raw, [(100 + i, c, ch.upper() if ch else ch, r) for i, c, ch, r in THREE])
    assert _verdict(raw, gateway, "suppressions").passed


def test_a_missing_opt_out_blocks_and_an_opt_in_event_is_the_lift(released):
    raw, gateway = released
    _consents(raw, [e for e in CONSENTS if e[0] != 2])  # customer 11's email opt-out deleted
    verdict = _verdict(raw, gateway, "consent_events")
    assert not verdict.passed
    assert verdict.message.startswith(
        "raw/consent_events: 2 opt-out events at the last release (run abc123), 1 now; "
        "1 opt-out disappeared (e.g. customer_id=11, channel=email)"
    )
    assert "a customer who opts back in is a new consent event" in verdict.message
    # the right way: the opt-out stays, a later opt-in lifts it
    _consents(raw, [*CONSENTS, (5, 11, "email", True, T0 + pd.Timedelta(days=9))])
    assert _verdict(raw, gateway, "consent_events").passed


def test_no_release_yet_passes_and_says_so(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    _suppressions(raw, THREE)
    _consents(raw, CONSENTS)
    verdict = compare(load(tmp_path / "none.parquet"), fingerprint(raw)).tables["suppressions"]
    assert verdict.passed and verdict.previous_rows is None
    assert verdict.message == (
        "raw/suppressions: no release recorded yet (the first release): nothing to compare; "
        "3 rows now"
    )


def test_the_blocking_check_fails_with_the_counts(released, data_dir, monkeypatch):
    """The asset check itself, in process: fingerprint saved with 3 suppressions, file emptied."""
    import shutil

    from dagster import AssetCheckSeverity

    from orchestration.defs.raw_data import safety_table_checks
    from orchestration.resources import CampaignSettings
    from orchestration.settings import Settings

    raw, gateway = released
    s = Settings.from_env()
    shutil.copytree(raw, s.raw_dir)
    shutil.copytree(gateway, s.gateway_dir)
    _suppressions(s.raw_dir, [])
    check = next(c for c in safety_table_checks if "suppressions" in str(c.check_keys))
    spec = next(iter(check.check_specs))
    assert (spec.name, spec.blocking) == ("safety_tables_only_grow", True)
    result = check(settings=CampaignSettings())
    assert not result.passed and result.severity == AssetCheckSeverity.ERROR
    assert result.description.startswith(
        "raw/suppressions: 3 rows at the last release (run abc123), 0 now; 3 suppressions "
        "disappeared"
    )
    assert result.metadata["disappeared"].value == 3
    assert result.metadata["last_release_run_id"].value == "abc123"

    shutil.rmtree(s.gateway_dir)  # no fingerprint: the first release
    first = check(settings=CampaignSettings())
    assert first.passed and first.metadata["first_release"].value is True
    assert "no release recorded yet" in first.description


def test_the_default_allows_no_disappearance_and_a_bad_share_is_refused(released):
    raw, gateway = released
    assert safety_tables.MAX_SHRINK_SHARE == 0.0
    with pytest.raises(ValueError, match="max_shrink_share must be in"):
        compare(load(fingerprint_path(gateway)), fingerprint(raw), 1.5)


def test_a_lift_file_is_checked_against_the_contract(tmp_path):
    from orchestration.core.world.contract import SUPPRESSION_LIFTS
    from orchestration.core.world.validation import validate_raw_file

    raw = tmp_path / "raw"
    raw.mkdir()
    _lifts(raw, [(1, 12, None, "legal_request"), (2, 13, "sms", "changed_my_mind")])
    (problem,) = validate_raw_file(raw / "suppression_lifts.parquet", SUPPRESSION_LIFTS)
    assert problem.startswith(
        "raw/suppression_lifts.parquet: column 'reason' has 1 value(s) outside the allowed set"
    )
    assert "'changed_my_mind' at row 1 (lift_id=2)" in problem
