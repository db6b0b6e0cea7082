"""Campaign files: valid ones load; broken ones fail loudly, naming file and field."""

from pathlib import Path

import pytest

from orchestration.core.decisioning.campaigns import (
    CampaignFileError,
    load_campaign_file,
    load_campaigns,
)
from orchestration.settings import CAMPAIGNS_DIR

VALID = "name: {name}\nchannel: email\nmax_sends: 100\n"


def _write(directory: Path, file: str, text: str) -> Path:
    path = directory / file
    path.write_text(text)
    return path


def test_the_shipped_campaigns_are_valid():
    loaded = load_campaigns(CAMPAIGNS_DIR)
    assert loaded.errors == {}
    assert loaded.campaigns


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("name: a_b\nchannel: fax\nmax_sends: 1\n", ["channel", "'fax'", "'email'"]),
        ("name: a_b\nchannel: email\nmax_sends: -5\n", ["max_sends", "greater than 0"]),
        ("name: a_b\nchannel: email\n", ["max_sends", "required"]),
        (
            "name: a_b\nchannel: email\nmax_sends: 5\nbudget: {cost_per_send: -1}\n",
            ["budget.cost_per_send"],
        ),
        ("name: a_b\nchannel: email\nmax_sends: 5\nholdout: 0.1\n", ["holdout", "unknown field"]),
        ("name: Bad Name\nchannel: email\nmax_sends: 5\n", ["name", "lower-case"]),
        (
            "name: a_b\nchannel: email\nmax_sends: 5\ntrigger: {event: Cart Abandoned}\n",
            ["trigger.event", "lower-case"],
        ),
        ("name: a_b\nchannel: email\nmax_sends: 5\ntrigger: {}\n", ["trigger.event", "required"]),
        (
            "name: a_b\nchannel: email\nmax_sends: 5\ntrigger: {event: x_y, min_sessions: 2}\n",
            ["trigger.min_sessions", "unknown field"],
        ),
        (
            "name: a_b\nchannel: email\nmax_sends: 5\ntrigger: {event: x_y, min_sessions_24h: 0}\n",
            ["trigger.min_sessions_24h"],
        ),
        ("name: [unclosed\n", ["not valid YAML"]),
        ("- just\n- a list\n", ["expected a mapping"]),
    ],
)
def test_broken_file_names_file_and_field(tmp_path, text, expected):
    path = _write(tmp_path, "broken.yaml", text)
    with pytest.raises(CampaignFileError) as error:
        load_campaign_file(path)
    message = str(error.value)
    assert str(path) in message
    for fragment in expected:
        assert fragment in message


def test_a_broken_file_does_not_stop_the_others(tmp_path):
    _write(tmp_path, "good.yaml", VALID.format(name="good_one"))
    bad = _write(tmp_path, "bad.yaml", "name: bad\nchannel: pigeon\nmax_sends: 1\n")
    loaded = load_campaigns(tmp_path)
    assert set(loaded.campaigns) == {"good_one"}
    assert set(loaded.errors) == {bad}


def test_duplicate_names_are_both_rejected(tmp_path):
    first = _write(tmp_path, "a.yaml", VALID.format(name="same_name"))
    second = _write(tmp_path, "b.yaml", VALID.format(name="same_name"))
    loaded = load_campaigns(tmp_path)
    assert "same_name" not in loaded.campaigns
    assert set(loaded.errors) == {first, second}
    assert "unique" in loaded.errors[second]


def test_send_cap_is_the_lower_of_max_sends_and_budget(tmp_path):
    path = _write(
        tmp_path,
        "c.yaml",
        VALID.format(name="capped") + "budget: {cost_per_send: 0.5, max_total_cost: 10}\n",
    )
    assert load_campaign_file(path).send_cap == 20
