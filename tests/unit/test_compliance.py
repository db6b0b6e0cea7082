"""Compliance re-verification from raw consent events and suppressions, as of decision time."""

from datetime import UTC, datetime

import pandas as pd
import pytest

from orchestration.core.decisioning.compliance import verify_audience

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


def test_policy_reverification_finds_control_cap_daily_and_quiet_hour_breaches(tmp_path):
    from orchestration.core.common.hashing import in_share
    from orchestration.core.decisioning.compliance import verify_policy
    from orchestration.core.decisioning.policy import parse_policy

    raw = _raw(tmp_path)
    ids = list(range(1, 200))
    pd.DataFrame(
        {
            "consent_event_id": ids,
            "customer_id": ids,
            "channel": "sms",
            "is_opted_in": True,
            "source": "signup",
            "consented_at": T("2026-01-01", tz="UTC"),
        }
    ).to_parquet(raw / "consent_events.parquet")
    pd.DataFrame(
        {
            "customer_id": ids,
            "signed_up_at": T("2025-01-01", tz="UTC"),
            "region": "us-east",
            "time_zone": ["America/New_York"] * 100 + ["Europe/Berlin"] * 99,
            "updated_at": T("2025-01-01", tz="UTC"),
        }
    ).to_parquet(raw / "customers.parquet")
    policy = parse_policy(
        "global_control: {share: 0.1, salt: g}\n"
        "frequency_caps: [{scope: sms, max_messages: 1, window_days: 7}]\n"
        "quiet_hours: {sms: {start: '08:00', end: '21:00'}}\n"
    ).policy
    decided_at = datetime(2026, 11, 23, 12, tzinfo=UTC)  # 07:00 New York (quiet), 13:00 Berlin
    berlin = [i for i in range(101, 200) if not in_share([i], 0.1, "g")[0]]
    control = [i for i in range(101, 200) if in_share([i], 0.1, "g")[0]]
    recipients = pd.DataFrame(
        {
            "campaign": "c",
            "customer_id": [1, berlin[0], berlin[1], berlin[2], control[0]],
            "channel": "sms",
            "decision": ["send", "send", "send", "deferred", "send"],
        }
    )
    history = pd.DataFrame(
        {
            "campaign": "old",
            "customer_id": [berlin[1], berlin[2]],
            "channel": "sms",
            "send_date": ["2026-11-20", "2026-11-23"],
        }
    )
    result = verify_policy(recipients, raw, policy, history, decided_at)
    found = set(map(tuple, result.violations[["customer_id", "violation"]].to_numpy().tolist()))
    assert (1, "quiet_hours") in found
    assert (control[0], "global_control") in found
    assert (berlin[1], "frequency_cap_sms_7d") in found
    assert (berlin[2], "daily_limit") in found
    assert not any(cid == berlin[0] for cid, _ in found)
    assert result.compliance_rate == pytest.approx(1 / 5)
