"""Bad campaign input: each case is a clear error naming the file and field, and nothing is
decided (so nothing can be sent) for the broken campaign, while the good ones still run."""

from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest

from orchestration.core.decisioning.campaigns import load_campaigns
from orchestration.core.decisioning.decide import decide_campaigns, score_column, version_column
from orchestration.core.decisioning.policy import PolicyFileError, parse_policy
from tests.support.policy_candidates import open_candidates

GOOD = "name: good_email\nchannel: email\nmax_sends: 10\n"
BROKEN = {
    "malformed.yaml": ("name: [oops\n", "not valid YAML"),
    "unknown_channel.yaml": (
        "name: fax_blast\nchannel: fax\nmax_sends: 10\n",
        "allowed: 'email', 'sms' or 'push'",
    ),
    "negative_budget.yaml": (
        "name: cheap\nchannel: email\nmax_sends: 10\nbudget: {cost_per_send: -0.1}\n",
        "budget.cost_per_send",
    ),
    "dup_a.yaml": ("name: twin\nchannel: sms\nmax_sends: 10\n", "names must be unique"),
    "dup_b.yaml": ("name: twin\nchannel: push\nmax_sends: 10\n", "names must be unique"),
}


def _candidates(n=50):
    return open_candidates(np.arange(1, n + 1), time_zone="UTC")


def _scores(n=50, refs=("uplift_model@champion",)):
    frame = pd.DataFrame({"customer_id": np.arange(1, n + 1)})
    for ref in refs:
        frame[score_column(ref)] = np.linspace(0.2, 0.01, n)
        frame[version_column(ref)] = "1"
    return frame


def _decide(campaigns, scores):
    return decide_campaigns(
        candidates=_candidates(),
        scores=scores,
        campaigns=campaigns,
        policy=parse_policy("global_control: {share: 0.0}\nfrequency_caps: []\nquiet_hours: {}\n"),
        contact_history=pd.DataFrame(columns=["campaign", "customer_id", "channel", "send_date"]),
        sent_today={},
        decided_at=datetime(2026, 11, 23, 12, tzinfo=UTC),
        run_id="r1",
        feature_timestamp=None,
    )


def test_broken_files_are_reported_and_only_good_campaigns_are_decided(tmp_path):
    (tmp_path / "good.yaml").write_text(GOOD)
    for file, (text, _) in BROKEN.items():
        (tmp_path / file).write_text(text)
    loaded = load_campaigns(tmp_path)
    assert set(loaded.campaigns) == {"good_email"}
    for file, (_, fragment) in BROKEN.items():
        message = loaded.errors[tmp_path / file]
        assert str(tmp_path / file) in message and fragment in message
    run = _decide(list(loaded.campaigns.values()), _scores())
    assert set(run.decisions["campaign"]) == {"good_email"}
    assert (run.decisions["decision"] == "send").sum() == 10


def test_missing_model_alias_is_an_error_and_nothing_is_decided_for_that_campaign(tmp_path):
    (tmp_path / "good.yaml").write_text(GOOD)
    (tmp_path / "canary.yaml").write_text(
        "name: new_model_email\nchannel: email\nmax_sends: 10\nmodel: {name: uplift_model, alias: shiny}\n"
    )
    loaded = load_campaigns(tmp_path)
    run = _decide(sorted(loaded.campaigns.values(), key=lambda c: c.name), _scores())
    assert "uplift_model@shiny" in run.errors["new_model_email"]
    assert "nothing is sent" in run.errors["new_model_email"]
    assert set(run.decisions["campaign"]) == {"good_email"}


def test_disabled_campaign_is_not_decided(tmp_path):
    (tmp_path / "off.yaml").write_text(GOOD + "enabled: false\n")
    loaded = load_campaigns(tmp_path)
    run = _decide(list(loaded.campaigns.values()), _scores())
    assert run.decisions.empty


def test_dry_run_campaign_does_not_take_customers_from_live_ones(tmp_path):
    (tmp_path / "live.yaml").write_text(GOOD + "priority: 0\n")
    (tmp_path / "trial.yaml").write_text(
        "name: trial_push\nchannel: push\nmax_sends: 50\npriority: 9\ndry_run: true\n"
    )
    loaded = load_campaigns(tmp_path)
    run = _decide(sorted(loaded.campaigns.values(), key=lambda c: c.name), _scores())
    live = run.decisions[run.decisions["campaign"] == "good_email"]
    trial = run.decisions[run.decisions["campaign"] == "trial_push"]
    assert (live["decision"] == "send").sum() == 10 and not live["dry_run"].any()
    assert trial["dry_run"].all()


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("quiet_hours: {sms: {start: '08:00', end: '08:00'}}\n", "are the same time"),
        ("quiet_hours: {sms: {start: '8am', end: '21:00'}}\n", "HH:MM"),
        (
            "frequency_caps: [{scope: fax, max_messages: 1, window_days: 7}]\n",
            "frequency_caps.0.scope",
        ),
        ("global_control: {share: 1.5}\n", "global_control.share"),
        ("unknown_rule: 1\n", "unknown_rule"),
    ],
)
def test_bad_policy_names_the_field(tmp_path, text, fragment):
    rules = {"frequency_caps": "frequency_caps: []\n", "quiet_hours": "quiet_hours: {}\n"}
    text += "".join(line for key, line in rules.items() if key not in text)
    with pytest.raises(PolicyFileError) as error:
        parse_policy(text, tmp_path / "policy.yaml")
    assert fragment in str(error.value) and "policy.yaml" in str(error.value)


def test_a_triggered_campaign_is_not_decided_in_the_batch(tmp_path):
    (tmp_path / "good.yaml").write_text(GOOD)
    (tmp_path / "cart.yaml").write_text(
        "name: cart_email\nchannel: email\nmax_sends: 10\ntrigger: {event: cart_abandoned}\n"
    )
    loaded = load_campaigns(tmp_path)
    assert loaded.campaigns["cart_email"].is_triggered
    run = _decide(sorted(loaded.campaigns.values(), key=lambda c: c.name), _scores())
    assert set(run.decisions["campaign"]) == {"good_email"}
    assert (run.decisions["decision"] == "send").sum() == 10


def test_a_dry_run_of_a_triggered_campaign_says_it_has_no_batch_audience(tmp_path, data_dir):
    from orchestration.core.decisioning.dry_run import DryRunError, dry_run
    from orchestration.settings import Settings

    path = tmp_path / "cart.yaml"
    path.write_text(
        "name: cart_email\nchannel: email\nmax_sends: 10\ntrigger: {event: cart_abandoned}\n"
    )
    with pytest.raises(DryRunError, match="decided on its event only"):
        dry_run(Settings.from_env(), campaign_file=path)
