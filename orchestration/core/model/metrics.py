"""Uplift evaluation on a randomised holdout.

All functions take ``(y, treatment, uplift)`` in that order (scikit-uplift uses
``(y_true, uplift, treatment)``): ``y`` is the outcome, ``treatment`` is 1 for the treated arm and
0 for control, ``uplift`` is the model's score (higher = target first).

Definitions follow scikit-uplift 0.5 (``sklift.metrics``):

* customers are ranked by predicted uplift, descending; tied scores form one block, and curves
  only have a point at the end of each block, so the order inside a tie never changes a curve;
* Qini gain after the first ``n`` customers: ``Y_t(n) - Y_c(n) * N_t(n) / N_c(n)`` (the control
  term is 0 while no control customer has been reached);
* uplift-curve gain: ``(mean_t(n) - mean_c(n)) * n`` (an empty arm's mean counts as 0);
* the normalised coefficients are ``(area(model) - area(random)) / (area(perfect) - area(random))``
  with the trapezoidal rule, where *random* is the straight line from ``(0, 0)`` to the curve's
  end point and *perfect* ranks treated responders first and control responders last.

So a perfect ranking scores 1, a random one about 0 and a reversed one a negative number. The
curve x values are customer counts (``0 .. n``), not shares.

``uplift_at_k`` is the only metric where the order inside a tie matters (the cut can fall inside
a block): rows with equal scores keep their input order (stable sort, earlier rows first).
scikit-uplift reverses a stable ascending sort, which puts *later* rows first among ties; with
continuous scores the two agree.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from functools import partial
from pathlib import Path

import numpy as np

UPLIFT_AT_K_STRATEGIES: tuple[str, ...] = ("overall", "by_group")

Metric = Callable[..., float]


# --------------------------------------------------------------------------------------------
# validation


def _as_1d_float(name: str, values: object) -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {arr.shape}")
    if arr.dtype.kind in "biuf":
        arr = arr.astype(np.float64, copy=False)
    else:
        try:
            arr = arr.astype(np.float64)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{name} must be numeric, got dtype {arr.dtype}") from exc
    bad = ~np.isfinite(arr)
    if bad.any():
        raise ValueError(f"{name} contains {int(bad.sum())} NaN or infinite value(s)")
    return arr


def _validate(
    y: object, treatment: object, uplift: object, *, binary_y: bool = False
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return ``y, treatment, uplift`` as float64 arrays or raise ``ValueError`` saying why."""
    y_arr = _as_1d_float("y", y)
    t_arr = _as_1d_float("treatment", treatment)
    u_arr = _as_1d_float("uplift", uplift)
    if not (len(y_arr) == len(t_arr) == len(u_arr)):
        raise ValueError(
            f"length mismatch: y has {len(y_arr)} rows, treatment {len(t_arr)}, uplift {len(u_arr)}"
        )
    if len(y_arr) == 0:
        raise ValueError("no rows: y, treatment and uplift are empty")
    not_01 = (t_arr != 0) & (t_arr != 1)
    if not_01.any():
        found = np.unique(t_arr[not_01])[:5].tolist()
        raise ValueError(f"treatment must contain only 0 (control) and 1 (treated), found {found}")
    n_treated = int(t_arr.sum())
    if n_treated == 0 or n_treated == len(t_arr):
        arm = "control (treatment == 0)" if n_treated == 0 else "treated (treatment == 1)"
        raise ValueError(
            f"only one treatment arm present: all {len(t_arr)} rows are {arm}; "
            "uplift needs both treated and control rows"
        )
    if binary_y:
        y_not_01 = (y_arr != 0) & (y_arr != 1)
        if y_not_01.any():
            found = np.unique(y_arr[y_not_01])[:5].tolist()
            raise ValueError(f"y must be a binary 0/1 outcome for this metric, found {found}")
    return y_arr, t_arr, u_arr


def _check_k(k: object) -> float:
    if isinstance(k, bool) or not isinstance(k, (int, float, np.integer, np.floating)):
        raise ValueError(f"k must be a share of rows in (0, 1], got {k!r}")
    k = float(k)
    if not (0.0 < k <= 1.0):
        raise ValueError(f"k must be a share of rows in (0, 1], got {k}")
    return k


def _top_count(n: int, k: float) -> int:
    # round first so that e.g. 100 * 0.29 = 28.999999999999996 selects 29 rows, not 28
    return math.floor(round(n * k, 6))


# --------------------------------------------------------------------------------------------
# ranked sample: rows sorted by score once, cumulative sums shared by every metric


class _Ranked:
    """Rows sorted by descending score, with a multiplicity per row and its cumulative sums.

    A bootstrap resample is the same sorted rows with multiplicities drawn with replacement
    (rows drawn twice are adjacent, tied rows keep their relative order), so resampling never
    re-sorts and every metric of a resample reads the same cumulative sums.
    """

    __slots__ = ("y", "t", "u", "ends", "cw", "cwt", "cwc", "cyt", "cyc")

    def __init__(self, y: np.ndarray, t: np.ndarray, u: np.ndarray) -> None:
        order = np.argsort(-u, kind="stable")  # descending; ties keep their input order
        y, t, u = y[order], t[order], u[order]
        self.y, self.t, self.u = y, t, u
        # last row of each block of tied scores: curves have one point per block
        self.ends = np.append(np.flatnonzero(u[1:] != u[:-1]), len(u) - 1)
        self._accumulate(None)

    def _accumulate(self, w: np.ndarray | None) -> None:
        wt = self.t if w is None else w * self.t
        wc = (1.0 - self.t) if w is None else w - wt
        self.cwt = np.cumsum(wt)
        self.cwc = np.cumsum(wc)
        self.cw = self.cwt + self.cwc
        self.cyt = np.cumsum(wt * self.y)
        self.cyc = np.cumsum(wc * self.y)

    def reweighted(self, w: np.ndarray) -> _Ranked:
        new = object.__new__(_Ranked)
        new.y, new.t, new.u, new.ends = self.y, self.t, self.u, self.ends
        new._accumulate(w)
        return new

    def blocks(self) -> tuple[np.ndarray, ...]:
        """``n_all, n_t, n_c, y_t, y_c`` after each block of tied scores."""
        if len(self.ends) == len(self.u):  # no ties: every row is a block
            return self.cw, self.cwt, self.cwc, self.cyt, self.cyc
        e = self.ends
        return self.cw[e], self.cwt[e], self.cwc[e], self.cyt[e], self.cyc[e]

    def cells(self) -> tuple[float, float, float, float]:
        """Totals of a binary outcome: treated responders / non-responders, control ditto."""
        n_t, n_c, y_t, y_c = self.cwt[-1], self.cwc[-1], self.cyt[-1], self.cyc[-1]
        return float(y_t), float(n_t - y_t), float(y_c), float(n_c - y_c)


def _qini_gain(n_all, n_t, n_c, y_t, y_c) -> np.ndarray:
    ratio = np.divide(n_t, n_c, out=np.zeros_like(n_t, dtype=float), where=n_c != 0)
    return y_t - y_c * ratio


def _uplift_gain(n_all, n_t, n_c, y_t, y_c) -> np.ndarray:
    mean_t = np.divide(y_t, n_t, out=np.zeros_like(y_t, dtype=float), where=n_t != 0)
    mean_c = np.divide(y_c, n_c, out=np.zeros_like(y_c, dtype=float), where=n_c != 0)
    return (mean_t - mean_c) * n_all


def _curve(gain_fn, blocks: tuple[np.ndarray, ...]) -> tuple[np.ndarray, np.ndarray]:
    return np.r_[0.0, blocks[0]], np.r_[0.0, gain_fn(*blocks)]


def _perfect_curve(
    gain_fn, cells: tuple[float, float, float, float], groups: Sequence[Sequence[int]]
) -> tuple[np.ndarray, np.ndarray]:
    """The curve of a ranking that orders whole cells: ``groups`` lists the cells (0 = treated
    responders, 1 = treated non-responders, 2 = control responders, 3 = control non-responders)
    of each block of tied scores, best block first."""
    # per cell: n_t, n_c, y_t, y_c
    per_cell = np.array(
        [
            [cells[0], 0.0, cells[0], 0.0],
            [cells[1], 0.0, 0.0, 0.0],
            [0.0, cells[2], 0.0, cells[2]],
            [0.0, cells[3], 0.0, 0.0],
        ]
    )
    block = np.array([per_cell[list(g)].sum(axis=0) for g in groups])
    block = block[block[:, 0] + block[:, 1] > 0]  # a score level nobody has is no block
    n_t, n_c, y_t, y_c = np.cumsum(block, axis=0).T
    return _curve(gain_fn, (n_t + n_c, n_t, n_c, y_t, y_c))


def _perfect_qini_curve(r: _Ranked, negative_effect: bool) -> tuple[np.ndarray, np.ndarray]:
    cells = r.cells()
    if negative_effect:
        # sklift: score y*t - y*(1-t): treated responders, then all non-responders, then
        # control responders (the customers a campaign would lose)
        return _perfect_curve(_qini_gain, cells, ((0,), (1, 3), (2,)))
    n_t, n_c = cells[0] + cells[1], cells[2] + cells[3]
    gain = cells[0] - cells[2] * n_t / n_c
    return np.array([0.0, gain, n_t + n_c]), np.array([0.0, gain, gain])


def _perfect_uplift_curve(r: _Ranked) -> tuple[np.ndarray, np.ndarray]:
    cells = r.cells()
    # sklift: score 2*(y == t) + (y if control responders > treated non-responders else t)
    groups = ((0,), (3,), (2,), (1,)) if cells[2] > cells[1] else ((0,), (3,), (1,), (2,))
    return _perfect_curve(_uplift_gain, cells, groups)


def _normalised_area(
    curve: tuple[np.ndarray, np.ndarray], perfect: tuple[np.ndarray, np.ndarray]
) -> float:
    x, gain = curve
    x_p, gain_p = perfect
    random_area = float(x_p[-1]) * float(gain_p[-1]) / 2.0
    denominator = float(np.trapezoid(gain_p, x_p)) - random_area
    if denominator == 0.0 or not math.isfinite(denominator):
        return math.nan
    return (float(np.trapezoid(gain, x)) - random_area) / denominator


def _qini_ranked(r: _Ranked, negative_effect: bool = True) -> float:
    return _normalised_area(_curve(_qini_gain, r.blocks()), _perfect_qini_curve(r, negative_effect))


def _auuc_ranked(r: _Ranked) -> float:
    return _normalised_area(_curve(_uplift_gain, r.blocks()), _perfect_uplift_curve(r))


def _top(cum: np.ndarray, m: int) -> tuple[int, float]:
    """Row where the cumulative count ``cum`` reaches ``m`` and how many of its copies fall
    beyond the cut."""
    p = int(np.searchsorted(cum, m, side="left"))
    return p, float(cum[p] - m)


def _uplift_at_k_ranked(r: _Ranked, k: float = 0.3, strategy: str = "overall") -> float:
    if strategy == "overall":
        n = int(round(r.cw[-1]))
        m = _top_count(n, k)
        if m == 0:
            raise ValueError(f"k={k} selects no rows out of {n}")
        p, excess = _top(r.cw, m)
        t_p, y_p = r.t[p], r.y[p]
        n_t = r.cwt[p] - excess * t_p
        n_c = m - n_t
        if n_t == 0 or n_c == 0:
            return math.nan  # the top k holds only one arm: no estimate
        y_t = r.cyt[p] - excess * t_p * y_p
        y_c = r.cyc[p] - excess * (1.0 - t_p) * y_p
        return float(y_t / n_t - y_c / n_c)
    n_t, n_c = int(round(r.cwt[-1])), int(round(r.cwc[-1]))
    m_t, m_c = _top_count(n_t, k), _top_count(n_c, k)
    if m_t == 0 or m_c == 0:
        raise ValueError(
            f"k={k} selects no rows of the {'treated' if m_t == 0 else 'control'} arm "
            f"({n_t} treated, {n_c} control rows)"
        )
    p_t, excess_t = _top(r.cwt, m_t)  # row p_t is a treated row (cwt only grows there)
    p_c, excess_c = _top(r.cwc, m_c)
    y_t = r.cyt[p_t] - excess_t * r.y[p_t]
    y_c = r.cyc[p_c] - excess_c * r.y[p_c]
    return float(y_t / m_t - y_c / m_c)


# --------------------------------------------------------------------------------------------
# public metrics


def qini_curve(y: object, treatment: object, uplift: object) -> tuple[np.ndarray, np.ndarray]:
    """Qini curve: ``x`` = customers targeted (0..n), ``gain`` = incremental responders.

    ``gain[i] = Y_t - Y_c * N_t / N_c`` over the first ``x[i]`` customers by descending uplift.
    Starts at ``(0, 0)`` and ends at ``(n, N_t * ate)``. ``y`` may be binary or continuous.
    """
    x, gain = _curve(_qini_gain, _Ranked(*_validate(y, treatment, uplift)).blocks())
    return x.astype(np.int64), gain


def uplift_curve(y: object, treatment: object, uplift: object) -> tuple[np.ndarray, np.ndarray]:
    """Uplift curve: ``gain[i] = (mean_t - mean_c) * x[i]`` over the first ``x[i]`` customers.

    Starts at ``(0, 0)`` and ends at ``(n, n * ate)``. ``y`` may be binary or continuous.
    """
    x, gain = _curve(_uplift_gain, _Ranked(*_validate(y, treatment, uplift)).blocks())
    return x.astype(np.int64), gain


def _check_negative_effect(negative_effect: object) -> bool:
    if not isinstance(negative_effect, bool):
        raise ValueError(f"negative_effect must be a bool, got {negative_effect!r}")
    return negative_effect


def qini_coefficient(
    y: object, treatment: object, uplift: object, negative_effect: bool = True
) -> float:
    """Normalised area under the Qini curve (``sklift.metrics.qini_auc_score``).

    1 for the perfect ranking, about 0 for a random one, negative when worse than random.
    With ``negative_effect=True`` (sklift's default) the perfect ranking puts control responders
    (customers the campaign would lose) last; with ``False`` the perfect curve is sklift's
    "no negative effects" step curve. ``y`` must be 0/1. NaN if the perfect ranking is no better
    than random (e.g. nobody responded).
    """
    negative_effect = _check_negative_effect(negative_effect)
    ranked = _Ranked(*_validate(y, treatment, uplift, binary_y=True))
    return _qini_ranked(ranked, negative_effect)


def auuc(y: object, treatment: object, uplift: object) -> float:
    """Normalised area under the uplift curve (``sklift.metrics.uplift_auc_score``). ``y`` 0/1."""
    return _auuc_ranked(_Ranked(*_validate(y, treatment, uplift, binary_y=True)))


def _check_strategy(strategy: object) -> str:
    if strategy not in UPLIFT_AT_K_STRATEGIES:
        raise ValueError(f"strategy must be one of {UPLIFT_AT_K_STRATEGIES}, got {strategy!r}")
    return str(strategy)


def uplift_at_k(
    y: object, treatment: object, uplift: object, k: float = 0.3, strategy: str = "overall"
) -> float:
    """Observed uplift among the top ``k`` share of customers by predicted uplift (sklift).

    ``strategy="overall"``: take the first ``floor(k * n)`` rows of all data, then
    ``mean(y | treated) - mean(y | control)`` inside them (NaN if they hold only one arm).
    ``strategy="by_group"``: the top ``floor(k * n_arm)`` rows of each arm separately.
    Rows with tied scores keep their input order. ``y`` may be binary or continuous.
    """
    k, strategy = _check_k(k), _check_strategy(strategy)
    return _uplift_at_k_ranked(_Ranked(*_validate(y, treatment, uplift)), k, strategy)


# --------------------------------------------------------------------------------------------
# bootstrap and the evaluation bundle

RankedMetric = Callable[[_Ranked], float]


def stratified_bootstrap_indices(treatment: object, n_boot: int, seed: int) -> Iterator[np.ndarray]:
    """``n_boot`` resamples of row positions, each drawn with replacement within each arm.

    Yields one int64 array of ``len(treatment)`` positions per resample: the treated rows'
    draws, then the control rows' (so ``treatment[idx]`` keeps both arm sizes). A resample is
    drawn whole by numpy; resamples are yielded one at a time so memory stays at one resample
    however large ``n_boot`` is. Deterministic for a given ``seed``: the one random stream the
    interval code and the promotion gate's paired comparison share.
    """
    t = np.asarray(treatment)
    treated_pos = np.flatnonzero(t == 1)
    control_pos = np.flatnonzero(t == 0)
    n_t, n_c = len(treated_pos), len(control_pos)
    rng = np.random.default_rng(seed)
    for _ in range(int(n_boot)):
        yield np.concatenate(
            [treated_pos[rng.integers(0, n_t, n_t)], control_pos[rng.integers(0, n_c, n_c)]]
        )


def _resample_weights(ranked: _Ranked, n_boot: int, seed: int) -> Iterator[np.ndarray]:
    """Per resample: how often each (sorted) row was drawn."""
    n = len(ranked.t)
    for idx in stratified_bootstrap_indices(ranked.t, n_boot, seed):
        yield np.bincount(idx, minlength=n).astype(np.float64)


def _bootstrap_ranked(
    metrics: Mapping[str, RankedMetric], ranked: _Ranked, n_boot: int, seed: int
) -> dict[str, np.ndarray]:
    stats = {name: np.empty(n_boot) for name in metrics}
    for b, w in enumerate(_resample_weights(ranked, n_boot, seed)):
        resample = ranked.reweighted(w)
        for name, metric in metrics.items():
            stats[name][b] = metric(resample)
    return stats


def _percentile_interval(stats: np.ndarray, alpha: float) -> tuple[float, float]:
    finite = stats[np.isfinite(stats)]
    if len(finite) == 0:
        return math.nan, math.nan
    low, high = np.quantile(finite, [alpha / 2.0, 1.0 - alpha / 2.0])
    return float(low), float(high)


def _check_bootstrap_args(n_boot: object, alpha: object) -> None:
    if isinstance(n_boot, bool) or not isinstance(n_boot, (int, np.integer)) or n_boot < 1:
        raise ValueError(f"n_boot must be a positive integer, got {n_boot!r}")
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not (0.0 < alpha < 1.0):
        raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")


def _ranked_version(metric: Metric, kwargs: dict[str, object]) -> tuple[RankedMetric, bool] | None:
    """The shared-cumulative-sum implementation of a metric of this module (and whether it needs
    a binary outcome), or None for any other callable."""
    if metric is qini_coefficient:
        ne = _check_negative_effect(kwargs.pop("negative_effect", True))
        impl, binary = partial(_qini_ranked, negative_effect=ne), True
    elif metric is auuc:
        impl, binary = _auuc_ranked, True
    elif metric is uplift_at_k:
        k = _check_k(kwargs.pop("k", 0.3))
        strategy = _check_strategy(kwargs.pop("strategy", "overall"))
        impl, binary = partial(_uplift_at_k_ranked, k=k, strategy=strategy), False
    else:
        return None
    if kwargs:
        raise TypeError(f"{metric.__name__}() got unexpected keyword arguments {sorted(kwargs)}")
    return impl, binary


def bootstrap_interval(
    metric: Metric,
    y: object,
    treatment: object,
    uplift: object,
    n_boot: int = 200,
    alpha: float = 0.05,
    seed: int = 0,
    **kwargs: object,
) -> tuple[float, float]:
    """Percentile bootstrap ``(1 - alpha)`` interval of ``metric(y, treatment, uplift, **kwargs)``.

    Rows are resampled with replacement within each arm, so every resample keeps the holdout's
    treated/control sizes. Resamples where the metric is NaN are ignored (``(nan, nan)`` if all
    are). Deterministic for a given ``seed``. ``qini_coefficient``, ``auuc`` and ``uplift_at_k``
    are evaluated on the sorted rows with resample multiplicities (no per-resample sort); any
    other callable gets each resample as arrays, rows ordered by descending ``uplift``.
    """
    _check_bootstrap_args(n_boot, alpha)
    fast = _ranked_version(metric, dict(kwargs))
    y_arr, t_arr, u_arr = _validate(y, treatment, uplift, binary_y=bool(fast and fast[1]))
    ranked = _Ranked(y_arr, t_arr, u_arr)
    if fast is not None:
        stats = _bootstrap_ranked({"metric": fast[0]}, ranked, int(n_boot), seed)["metric"]
    else:
        stats = np.empty(int(n_boot))
        for b, drawn in enumerate(stratified_bootstrap_indices(ranked.t, int(n_boot), seed)):
            idx = np.sort(drawn)  # drawn rows, in score order
            stats[b] = metric(ranked.y[idx], ranked.t[idx], ranked.u[idx], **kwargs)
    return _percentile_interval(stats, alpha)


def _k_label(k: float) -> str:
    return f"{k * 100:g}"


def evaluate_uplift(
    y: object,
    treatment: object,
    uplift: object,
    ks: Sequence[float] = (0.1, 0.3),
    n_boot: int = 200,
    seed: int = 0,
    alpha: float = 0.05,
) -> dict[str, float]:
    """Flat, MLflow-ready uplift metrics of one scored holdout (``y`` must be 0/1).

    Keys: ``qini``, ``auuc``, ``uplift_at_<100k>`` for each ``k`` (``uplift_at_10``,
    ``uplift_at_30``), each with ``<key>_ci_low`` / ``<key>_ci_high`` (percentile bootstrap,
    stratified by arm; omitted when ``n_boot=0``), and ``n_treated``, ``n_control``,
    ``treated_rate``, ``control_rate``, ``ate``. ``uplift_at_k`` uses the "overall" strategy.
    The metrics share their resamples; each interval equals
    ``bootstrap_interval(metric, ..., n_boot=n_boot, alpha=alpha, seed=seed)``.
    """
    y_arr, t_arr, u_arr = _validate(y, treatment, uplift, binary_y=True)
    if n_boot != 0:
        _check_bootstrap_args(n_boot, alpha)
    metrics: dict[str, RankedMetric] = {"qini": _qini_ranked, "auuc": _auuc_ranked}
    for k in ks:
        name = f"uplift_at_{_k_label(_check_k(k))}"
        if name in metrics:
            raise ValueError(f"ks gives the metric name {name!r} twice: {list(ks)}")
        metrics[name] = partial(_uplift_at_k_ranked, k=float(k), strategy="overall")

    ranked = _Ranked(y_arr, t_arr, u_arr)
    stats = _bootstrap_ranked(metrics, ranked, int(n_boot), seed) if n_boot else {}
    result: dict[str, float] = {}
    for name, metric in metrics.items():
        result[name] = float(metric(ranked))
        if stats:
            low, high = _percentile_interval(stats[name], alpha)
            result[f"{name}_ci_low"], result[f"{name}_ci_high"] = low, high
    treated = t_arr == 1
    treated_rate = float(y_arr[treated].mean())
    control_rate = float(y_arr[~treated].mean())
    result.update(
        n_treated=float(treated.sum()),
        n_control=float((~treated).sum()),
        treated_rate=treated_rate,
        control_rate=control_rate,
        ate=treated_rate - control_rate,
    )
    return result


def oracle_ratio(
    metric_value: float,
    y: object,
    treatment: object,
    true_uplift: object,
    metric: Metric = qini_coefficient,
    **kwargs: object,
) -> float:
    """``metric_value`` divided by ``metric`` when ranking by the true per-customer uplift.

    For the synthetic world, where the true effect is known: 1 means the model ranks as well as
    the ground truth does on these rows (it can exceed 1 by noise). NaN when the oracle's metric
    is not positive, i.e. the effect is not measurable on these rows and the ratio is meaningless.
    """
    oracle = float(metric(y, treatment, true_uplift, **kwargs))
    if not math.isfinite(oracle) or oracle <= 0.0:
        return math.nan
    return float(metric_value) / oracle


# --------------------------------------------------------------------------------------------
# plotting


def plot_qini_curve(
    curves: Mapping[str, tuple[object, object]],
    path: str | Path,
    title: str = "Qini curve",
    max_points: int = 2000,
) -> Path:
    """Save the given Qini curves (``{label: (x, gain)}``) with the random line as a PNG.

    Uses matplotlib's object API with the Agg canvas, so no global backend is switched (safe in
    notebooks and threads). Long curves are thinned to about ``max_points`` points for drawing.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if not curves:
        raise ValueError("curves is empty: pass at least one {label: (x, gain)}")
    prepared: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for label, (x, gain) in curves.items():
        x_arr, g_arr = np.asarray(x, dtype=float), np.asarray(gain, dtype=float)
        if x_arr.ndim != 1 or x_arr.shape != g_arr.shape or len(x_arr) < 2:
            raise ValueError(
                f"curve {label!r}: x and gain must be 1-D of the same length >= 2, "
                f"got shapes {x_arr.shape} and {g_arr.shape}"
            )
        if len(x_arr) > max_points:
            keep = np.unique(np.linspace(0, len(x_arr) - 1, max_points).round().astype(int))
            x_arr, g_arr = x_arr[keep], g_arr[keep]
        prepared[str(label)] = (x_arr, g_arr)

    fig = Figure(figsize=(7, 5), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for label, (x_arr, g_arr) in prepared.items():
        ax.plot(x_arr, g_arr, label=label, linewidth=1.5)
    drawn: set[tuple[float, float, float, float]] = set()
    for x_arr, g_arr in prepared.values():
        line = (x_arr[0], g_arr[0], x_arr[-1], g_arr[-1])
        if line not in drawn:
            ax.plot(
                [line[0], line[2]],
                [line[1], line[3]],
                linestyle="--",
                color="grey",
                label="random" if not drawn else None,
            )
            drawn.add(line)
    ax.axhline(0.0, color="black", linewidth=0.5)
    ax.set_xlabel("customers targeted (by predicted uplift, descending)")
    ax.set_ylabel("incremental responders (Qini)")
    ax.set_title(title)
    ax.legend(loc="best")
    ax.grid(alpha=0.3)
    fig.tight_layout()

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    return path
