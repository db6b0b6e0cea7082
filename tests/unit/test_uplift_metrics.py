import math

import numpy as np
import pytest

from orchestration.core.model.metrics import (
    auuc,
    bootstrap_interval,
    evaluate_uplift,
    oracle_ratio,
    plot_qini_curve,
    qini_coefficient,
    qini_curve,
    uplift_at_k,
    uplift_curve,
)

# Eight customers, already in descending score order.
#   row     0    1    2    3    4    5    6    7
#   t       1    0    1    0    1    0    1    0
#   y       1    0    1    1    0    0    0    0
# treated rate 2/4, control rate 1/4, ATE 1/4
HAND_U = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2])
HAND_T = np.array([1, 0, 1, 0, 1, 0, 1, 0])
HAND_Y = np.array([1, 0, 1, 1, 0, 0, 0, 0])


def _world(n: int, seed: int = 0):
    """Random holdout with a heterogeneous effect: treatment helps when x > 0."""
    rng = np.random.default_rng(seed)
    t = rng.integers(0, 2, n)
    x = rng.normal(size=n)
    y = (rng.random(n) < 0.2 + 0.15 * t * (x > 0)).astype(int)
    return y, t, x


# --------------------------------------------------------------------------------------------
# hand-checked values


def test_qini_curve_hand_example():
    x, gain = qini_curve(HAND_Y, HAND_T, HAND_U)
    # gain(n) = Y_t - Y_c * N_t / N_c, e.g. n=5: 2 - 1 * 3/2 = 0.5; n=7: 2 - 1 * 4/3
    np.testing.assert_array_equal(x, np.arange(9))
    np.testing.assert_allclose(gain, [0, 1, 1, 2, 1, 0.5, 1, 2 / 3, 1])


def test_uplift_curve_hand_example():
    x, gain = uplift_curve(HAND_Y, HAND_T, HAND_U)
    # gain(n) = (mean_t - mean_c) * n, an empty arm's mean counts 0; n=5: (2/3 - 1/2) * 5
    np.testing.assert_array_equal(x, np.arange(9))
    np.testing.assert_allclose(gain, [0, 1, 2, 3, 2, 5 / 6, 2, 7 / 6, 2])


def test_qini_coefficient_hand_example():
    # model area (trapezoids) 23/3, random line to (8, 1) has area 4, the perfect curve
    # (0,0)-(2,2)-(7,2)-(8,1) has area 13.5: (23/3 - 4) / (13.5 - 4) = 22/57
    assert qini_coefficient(HAND_Y, HAND_T, HAND_U) == pytest.approx(22 / 57)


def test_auuc_hand_example():
    # model area 13, random line to (8, 2) area 8; perfect ranking (treated responders,
    # control non-responders, treated non-responders, control responders) has area 23.75
    assert auuc(HAND_Y, HAND_T, HAND_U) == pytest.approx(5 / 15.75)


def test_uplift_at_k_hand_example():
    # top 4 of all rows: treated y (1, 1), control y (0, 1) -> 1 - 1/2
    assert uplift_at_k(HAND_Y, HAND_T, HAND_U, k=0.5) == pytest.approx(0.5)
    # top 2: one treated responder, one control non-responder
    assert uplift_at_k(HAND_Y, HAND_T, HAND_U, k=0.25) == pytest.approx(1.0)
    # k=1 is the overall effect
    assert uplift_at_k(HAND_Y, HAND_T, HAND_U, k=1.0) == pytest.approx(0.25)
    # by group, top half of each arm: treated (1, 1), control (0, 1)
    assert uplift_at_k(HAND_Y, HAND_T, HAND_U, k=0.5, strategy="by_group") == pytest.approx(0.5)
    assert uplift_at_k(HAND_Y, HAND_T, HAND_U, k=0.25, strategy="by_group") == pytest.approx(1.0)


def test_uplift_at_k_without_one_arm_in_the_top_is_nan():
    assert math.isnan(uplift_at_k(HAND_Y, HAND_T, HAND_U, k=0.125))


def test_uplift_at_k_by_group_differs_from_overall():
    # control rows first: the overall top 2 holds no treated row, by group it does
    u = np.array([10.0, 9.0, 2.0, 1.0])
    t = np.array([0, 0, 1, 1])
    y = np.array([0, 1, 1, 0])
    assert math.isnan(uplift_at_k(y, t, u, k=0.5))
    assert uplift_at_k(y, t, u, k=0.5, strategy="by_group") == pytest.approx(1.0 - 0.0)


def test_uplift_at_k_breaks_ties_by_input_order():
    u = np.array([1.0, 1.0, 1.0, 1.0])
    t = np.array([1, 0, 1, 0])
    y = np.array([1, 0, 0, 1])
    assert uplift_at_k(y, t, u, k=0.5) == pytest.approx(1.0)  # rows 0, 1
    assert uplift_at_k(y[::-1], t[::-1], u, k=0.5) == pytest.approx(-1.0)  # rows 3, 2


def test_uplift_at_k_share_is_not_truncated_by_float_error():
    # 100 * 0.29 == 28.999999999999996: must still select 29 rows
    u = -np.arange(100.0)
    t = np.tile([1, 0], 50)
    y = np.zeros(100)
    y[28] = 1  # the 29th row is a treated responder
    assert uplift_at_k(y, t, u, k=0.29) == pytest.approx(1 / 15)


def test_curves_only_have_points_at_the_end_of_tied_blocks():
    u = np.array([2.0, 2.0, 1.0, 1.0, 1.0])
    t = np.array([1, 0, 1, 0, 1])
    y = np.array([1, 0, 0, 1, 1])
    x, gain = qini_curve(y, t, u)
    np.testing.assert_array_equal(x, [0, 2, 5])
    np.testing.assert_allclose(gain, [0, 1, 2 - 1 * 3 / 2])
    # reordering rows inside a tie does not change anything
    perm = np.array([1, 0, 4, 2, 3])
    x2, gain2 = qini_curve(y[perm], t[perm], u[perm])
    np.testing.assert_array_equal(x, x2)
    np.testing.assert_allclose(gain, gain2)


# --------------------------------------------------------------------------------------------
# properties on random data


def test_perfect_ordering_scores_one_and_reversed_is_negative():
    y, t, _ = _world(5000)
    perfect = y * t - y * (1 - t)  # treated responders first, control responders last
    assert qini_coefficient(y, t, perfect) == pytest.approx(1.0)
    # any order inside the non-responders is still perfect
    jitter = np.random.default_rng(1).random(len(y)) * 0.5 * (y == 0)
    assert qini_coefficient(y, t, perfect + jitter) == pytest.approx(1.0)
    assert qini_coefficient(y, t, -perfect) < -0.3
    assert auuc(y, t, -perfect) < 0


def test_perfect_auuc_ordering_scores_one():
    y, t, _ = _world(5000)
    control_responders = ((y == 1) & (t == 0)).sum()
    treated_non_responders = ((y == 0) & (t == 1)).sum()
    summand = y if control_responders > treated_non_responders else t
    assert auuc(y, t, 2 * (y == t) + summand) == pytest.approx(1.0)


def test_random_scores_give_about_zero():
    y, t, _ = _world(20000)
    qinis = [qini_coefficient(y, t, np.random.default_rng(s).random(len(y))) for s in range(20)]
    auucs = [auuc(y, t, np.random.default_rng(s).random(len(y))) for s in range(20)]
    assert abs(np.mean(qinis)) < 0.006
    assert abs(np.mean(auucs)) < 0.006


def test_constant_scores_are_exactly_the_random_line():
    y, t, _ = _world(1000)
    assert qini_coefficient(y, t, np.zeros(len(y))) == pytest.approx(0.0, abs=1e-12)
    assert auuc(y, t, np.zeros(len(y))) == pytest.approx(0.0, abs=1e-12)


def test_informative_scores_beat_uninformative_ones():
    y, t, x = _world(20000)
    assert qini_coefficient(y, t, x) > 0.05
    assert qini_coefficient(y, t, -x) < -0.05
    assert uplift_at_k(y, t, x, k=0.3) > uplift_at_k(y, t, -x, k=0.3) + 0.1


def test_curves_start_at_zero_and_end_at_the_overall_effect():
    y, t, x = _world(3000)
    ate = y[t == 1].mean() - y[t == 0].mean()
    xq, q = qini_curve(y, t, x)
    xu, g = uplift_curve(y, t, x)
    assert (xq[0], q[0], xu[0], g[0]) == (0, 0.0, 0, 0.0)
    assert xq[-1] == xu[-1] == len(y)
    assert q[-1] == pytest.approx(t.sum() * ate)
    assert g[-1] == pytest.approx(len(y) * ate)
    assert np.all(np.diff(xq) > 0)


def test_metrics_do_not_depend_on_row_order():
    y, t, x = _world(2000)
    perm = np.random.default_rng(3).permutation(len(y))
    assert qini_coefficient(y[perm], t[perm], x[perm]) == pytest.approx(qini_coefficient(y, t, x))
    assert auuc(y[perm], t[perm], x[perm]) == pytest.approx(auuc(y, t, x))
    assert uplift_at_k(y[perm], t[perm], x[perm]) == pytest.approx(uplift_at_k(y, t, x))


def test_accepts_lists_bools_and_pandas():
    pd = pytest.importorskip("pandas")
    expected = qini_coefficient(HAND_Y, HAND_T, HAND_U)
    assert qini_coefficient(list(HAND_Y), HAND_T.astype(bool), pd.Series(HAND_U)) == expected


# --------------------------------------------------------------------------------------------
# bootstrap and the evaluation bundle


def test_bootstrap_interval_contains_point_estimate_and_narrows_with_more_data():
    y, t, x = _world(2000)
    low, high = bootstrap_interval(qini_coefficient, y, t, x, n_boot=200, seed=0)
    assert low < qini_coefficient(y, t, x) < high
    y_big, t_big, x_big = _world(20000)
    low_big, high_big = bootstrap_interval(qini_coefficient, y_big, t_big, x_big, seed=0)
    assert low_big < qini_coefficient(y_big, t_big, x_big) < high_big
    assert high_big - low_big < 0.6 * (high - low)


def test_bootstrap_is_deterministic_per_seed():
    y, t, x = _world(2000)
    a = bootstrap_interval(uplift_at_k, y, t, x, n_boot=50, seed=7, k=0.3)
    b = bootstrap_interval(uplift_at_k, y, t, x, n_boot=50, seed=7, k=0.3)
    c = bootstrap_interval(uplift_at_k, y, t, x, n_boot=50, seed=8, k=0.3)
    assert a == b
    assert a != c


def test_bootstrap_resamples_within_each_arm():
    y, t, x = _world(500)

    def n_treated(y_, t_, u_):
        return float(t_.sum())

    def is_sorted_by_score(y_, t_, u_):
        return float(np.all(np.diff(u_) <= 0))

    assert bootstrap_interval(n_treated, y, t, x, n_boot=30) == (t.sum(), t.sum())
    assert bootstrap_interval(is_sorted_by_score, y, t, x, n_boot=30) == (1.0, 1.0)


@pytest.mark.parametrize(
    ("metric", "kwargs"),
    [
        (qini_coefficient, {}),
        (qini_coefficient, {"negative_effect": False}),
        (auuc, {}),
        (uplift_at_k, {"k": 0.3}),
        (uplift_at_k, {"k": 0.1, "strategy": "by_group"}),
    ],
)
def test_bootstrap_shortcut_matches_calling_the_metric_on_each_resample(metric, kwargs):
    y, t, x = _world(1500)
    u = np.round(x, 1)  # plenty of ties

    def wrapped(y_, t_, u_):
        return metric(y_, t_, u_, **kwargs)

    fast = bootstrap_interval(metric, y, t, u, n_boot=40, seed=3, **kwargs)
    slow = bootstrap_interval(wrapped, y, t, u, n_boot=40, seed=3)
    assert fast == pytest.approx(slow, rel=1e-9, abs=1e-12)


def test_evaluate_uplift_keys_and_consistency():
    y, t, x = _world(4000)
    result = evaluate_uplift(y, t, x, n_boot=60, seed=1)
    assert list(result) == [
        "qini",
        "qini_ci_low",
        "qini_ci_high",
        "auuc",
        "auuc_ci_low",
        "auuc_ci_high",
        "uplift_at_10",
        "uplift_at_10_ci_low",
        "uplift_at_10_ci_high",
        "uplift_at_30",
        "uplift_at_30_ci_low",
        "uplift_at_30_ci_high",
        "n_treated",
        "n_control",
        "treated_rate",
        "control_rate",
        "ate",
    ]
    assert all(isinstance(v, float) for v in result.values())
    assert result["qini"] == pytest.approx(qini_coefficient(y, t, x))
    assert result["uplift_at_30"] == pytest.approx(uplift_at_k(y, t, x, k=0.3))
    assert (result["qini_ci_low"], result["qini_ci_high"]) == pytest.approx(
        bootstrap_interval(qini_coefficient, y, t, x, n_boot=60, seed=1)
    )
    assert result["n_treated"] + result["n_control"] == len(y)
    assert result["ate"] == pytest.approx(y[t == 1].mean() - y[t == 0].mean())
    assert result["ate"] == pytest.approx(result["treated_rate"] - result["control_rate"])


def test_evaluate_uplift_without_bootstrap_and_custom_ks():
    y, t, x = _world(1000)
    result = evaluate_uplift(y, t, x, ks=(0.05, 0.5), n_boot=0)
    assert "uplift_at_5" in result and "uplift_at_50" in result
    assert not any(key.endswith(("_ci_low", "_ci_high")) for key in result)


def test_oracle_ratio():
    y, t, x = _world(5000)
    true_uplift = 0.15 * (x > 0)
    oracle = qini_coefficient(y, t, true_uplift)
    assert oracle_ratio(oracle, y, t, true_uplift) == pytest.approx(1.0)
    noisy = x + np.random.default_rng(0).normal(size=len(x)) * 3
    ratio = oracle_ratio(qini_coefficient(y, t, noisy), y, t, true_uplift)
    assert 0 < ratio < 1
    # an oracle that cannot show an effect on these rows gives no ratio
    assert math.isnan(oracle_ratio(0.1, y, t, np.zeros(len(y))))
    at30 = uplift_at_k(y, t, noisy, k=0.3)
    assert oracle_ratio(at30, y, t, true_uplift, metric=uplift_at_k, k=0.3) == pytest.approx(
        at30 / uplift_at_k(y, t, true_uplift, k=0.3)
    )


def test_plot_qini_curve_writes_png(tmp_path):
    y, t, x = _world(3000)
    curves = {"model": qini_curve(y, t, x), "perfect": qini_curve(y, t, y * t - y * (1 - t))}
    path = plot_qini_curve(curves, tmp_path / "plots" / "qini.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="curves is empty"):
        plot_qini_curve({}, tmp_path / "empty.png")


# --------------------------------------------------------------------------------------------
# invalid inputs


@pytest.mark.parametrize(
    ("y", "t", "u", "message"),
    [
        ([1, 0, 1], [1, 0], [0.1, 0.2, 0.3], "length mismatch"),
        ([1, 0, 1], [1, 0, 2], [0.1, 0.2, 0.3], r"treatment must contain only 0 .* found \[2.0\]"),
        ([1, 0, 1], [1, 1, 1], [0.1, 0.2, 0.3], "only one treatment arm present.*treated"),
        ([1, 0, 1], [0, 0, 0], [0.1, 0.2, 0.3], "only one treatment arm present.*control"),
        ([1, 0, 1], [1, 0, 1], [0.1, np.nan, 0.3], "uplift contains 1 NaN"),
        ([1, 0, 1], [1, 0, np.nan], [0.1, 0.2, 0.3], "treatment contains 1 NaN"),
        ([1, 0, 1], [1, 0, 1], ["a", "b", "c"], "uplift must be numeric"),
        ([[1, 0]], [1, 0], [0.1, 0.2], "y must be one-dimensional"),
        ([], [], [], "no rows"),
    ],
)
def test_invalid_inputs_raise_naming_the_problem(y, t, u, message):
    for fn in (qini_curve, uplift_curve, qini_coefficient, auuc, uplift_at_k):
        with pytest.raises(ValueError, match=message):
            fn(y, t, u)
    with pytest.raises(ValueError, match=message):
        evaluate_uplift(y, t, u, n_boot=5)


def test_normalised_metrics_need_a_binary_outcome():
    y = np.array([0.0, 2.5, 1.0, 0.0])
    t = np.array([1, 0, 1, 0])
    u = np.array([0.4, 0.3, 0.2, 0.1])
    with pytest.raises(ValueError, match=r"y must be a binary 0/1 outcome .*2\.5"):
        qini_coefficient(y, t, u)
    with pytest.raises(ValueError, match="y must be a binary"):
        auuc(y, t, u)
    # curves and uplift@k work for continuous outcomes (e.g. revenue)
    assert qini_curve(y, t, u)[1][-1] == pytest.approx(1.0 - 2.5)
    assert uplift_at_k(y, t, u, k=1.0) == pytest.approx(0.5 - 1.25)


@pytest.mark.parametrize("k", [0, 0.0, -0.1, 1.5, True, "0.3", None])
def test_k_outside_unit_interval_raises(k):
    with pytest.raises(ValueError, match="k must be a share of rows in"):
        uplift_at_k(HAND_Y, HAND_T, HAND_U, k=k)
    with pytest.raises(ValueError, match="k must be a share of rows in"):
        evaluate_uplift(HAND_Y, HAND_T, HAND_U, ks=(k,), n_boot=0)


def test_other_invalid_arguments():
    with pytest.raises(ValueError, match="strategy must be one of"):
        uplift_at_k(HAND_Y, HAND_T, HAND_U, strategy="top")
    with pytest.raises(ValueError, match="selects no rows out of 8"):
        uplift_at_k(HAND_Y, HAND_T, HAND_U, k=0.1)
    with pytest.raises(ValueError, match="selects no rows of the treated arm"):
        uplift_at_k(HAND_Y, HAND_T, HAND_U, k=0.1, strategy="by_group")
    with pytest.raises(ValueError, match="n_boot must be a positive integer"):
        bootstrap_interval(qini_coefficient, HAND_Y, HAND_T, HAND_U, n_boot=0)
    with pytest.raises(ValueError, match="alpha must be in"):
        bootstrap_interval(qini_coefficient, HAND_Y, HAND_T, HAND_U, alpha=1.5)
    with pytest.raises(ValueError, match="negative_effect must be a bool"):
        qini_coefficient(HAND_Y, HAND_T, HAND_U, negative_effect="yes")
    with pytest.raises(ValueError, match="gives the metric name 'uplift_at_10' twice"):
        evaluate_uplift(HAND_Y, HAND_T, HAND_U, ks=(0.1, 0.1), n_boot=0)
    with pytest.raises(TypeError, match="unexpected keyword"):
        bootstrap_interval(auuc, HAND_Y, HAND_T, HAND_U, n_boot=5, k=0.3)
