"""Quiet hours across midnight: the allowed window [start, end) may run past 00:00.

``quiet_hours`` in the policy states the *allowed* local send window per channel. Quiet from
22:00 to 06:00 is the window 06:00-22:00; a window with start after end (22:00-06:00) allows the
night only. Both are handled, and an ambiguous window (start == end) is refused with the field.
"""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest

from orchestration.core.decisioning.engine import in_window, quiet_hours_deferral
from orchestration.core.decisioning.policy import PolicyFileError, parse_policy

ZONE = "Europe/Berlin"  # UTC+1 in November


def _deferral(window: tuple[str, str], local_hour: int) -> pd.Timestamp | None:
    """When a message decided at ``local_hour``:00 Berlin time may go (None: now)."""
    start, end = window
    text = f"frequency_caps: []\nquiet_hours: {{sms: {{start: '{start}', end: '{end}'}}}}\n"
    policy = parse_policy(text).policy
    decided_at = pd.Timestamp(2026, 11, 23, local_hour, tz=ZONE).tz_convert("UTC")
    (until,) = quiet_hours_deferral(pd.Series([ZONE]), decided_at.to_pydatetime(), policy, "sms")
    return None if np.isnat(until) else pd.Timestamp(until).tz_localize("UTC").tz_convert(ZONE)


QUIET_22_TO_06 = ("06:00", "22:00")  # quiet 22:00-06:00: sends allowed 06:00-22:00


@pytest.mark.parametrize(
    ("hour", "expected"),
    [
        (23, "2026-11-24 06:00"),  # late evening: the next morning
        (5, "2026-11-23 06:00"),  # before dawn: the same morning
        (12, None),  # midday: now
    ],
)
def test_quiet_from_22_to_06(hour, expected):
    until = _deferral(QUIET_22_TO_06, hour)
    assert until == (pd.Timestamp(expected, tz=ZONE) if expected else None)


@pytest.mark.parametrize(
    ("hour", "expected"),
    [
        (23, None),  # inside the overnight window
        (5, None),  # still inside it, after midnight
        (12, "2026-11-23 22:00"),  # midday: tonight at 22:00
        (6, "2026-11-23 22:00"),  # the end is exclusive
    ],
)
def test_a_window_that_runs_past_midnight(hour, expected):
    until = _deferral(("22:00", "06:00"), hour)
    assert until == (pd.Timestamp(expected, tz=ZONE) if expected else None)


def test_window_membership_wraps():
    t = datetime.strptime
    start, end = t("22:00", "%H:%M").time(), t("06:00", "%H:%M").time()
    assert in_window(start, end, t("23:30", "%H:%M").time())
    assert in_window(start, end, t("00:00", "%H:%M").time())
    assert not in_window(start, end, t("06:00", "%H:%M").time())
    assert not in_window(end, start, t("22:00", "%H:%M").time())


def test_an_overnight_window_parses_and_an_empty_one_names_the_field(tmp_path):
    caps = "frequency_caps: []\n"
    assert parse_policy(caps + "quiet_hours: {push: {start: '22:00', end: '06:00'}}\n").policy
    with pytest.raises(PolicyFileError) as error:
        parse_policy(
            caps + "quiet_hours: {sms: {start: '08:00', end: '08:00'}}\n", tmp_path / "p.yaml"
        )
    message = str(error.value)
    assert "p.yaml" in message and "quiet_hours" in message
    assert "sms: start 08:00 and end 08:00 are the same time" in message


def test_the_decision_time_is_utc_whatever_the_zone():
    until = _deferral(QUIET_22_TO_06, 23)
    assert until is not None and until.tz_convert(UTC) == pd.Timestamp("2026-11-24 05:00", tz=UTC)
