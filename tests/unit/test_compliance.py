"""Compliance re-verification from raw consent events and suppressions, as of decision time."""

from datetime import UTC, datetime

import pandas as pd

from orchestration.core.compliance import verify_audience

T = pd.Timestamp


def _raw(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    pd.DataFrame(
        {
            "consent_event_id": [1, 2, 3, 4, 5],
            "customer_id": [1, 2, 2, 3, 4],
            "channel": ["email", "email", "email", "email", "email"],
            "is_opted_in": [True, True, False, True, True],
            "source": "signup",
            "consented_at": [
                T("2026-01-01", tz="UTC"),
                T("2026-01-01", tz="UTC"),
                T("2026-11-20", tz="UTC"),
                T("2026-01-01", tz="UTC"),
                T("2026-12-01", tz="UTC"),
            ],
        }
    ).to_parquet(raw / "consent_events.parquet")
    pd.DataFrame(
        {
            "suppression_id": [1, 2],
            "customer_id": [3, 1],
            "channel": [None, "sms"],
            "reason": ["complaint", "hard_bounce"],
            "suppressed_at": [T("2026-02-01", tz="UTC"), T("2026-02-01", tz="UTC")],
        }
    ).to_parquet(raw / "suppressions.parquet")
    return raw


def test_violations_name_the_cause(tmp_path):
    raw = _raw(tmp_path)
    recipients = pd.DataFrame({"customer_id": [1, 2, 3, 4, 5], "channel": "email"})
    result = verify_audience(recipients, raw, datetime(2026, 11, 23, tzinfo=UTC))
    found = set(map(tuple, result.violations[["customer_id", "violation"]].to_numpy().tolist()))
    # 1 ok (sms suppression does not apply to email); 2 opted out later; 3 suppressed everywhere;
    # 4 opts in only after the decision time; 5 never consented
    assert found == {
        (2, "not_opted_in"),
        (3, "suppressed"),
        (4, "not_opted_in"),
        (5, "not_opted_in"),
    }
    assert result.compliance_rate == 1 - 4 / 5


def test_empty_audience_is_compliant(tmp_path):
    result = verify_audience(
        pd.DataFrame(columns=["customer_id", "channel"]), _raw(tmp_path), datetime.now(UTC)
    )
    assert result.checked == 0 and result.compliance_rate == 1.0
