"""The synthetic world's customer attributes: every attribute the declaration names, point in time.

Three names have behaviour of their own when declared with these values:

- ``plan`` (basic, plus, premium): drawn per hidden segment, so it carries some of the uplift
  signal (persuadables lean to plus, sure things to premium, lost causes to basic); 15 % of the
  customers upgrade once, at a uniform time after sign-up, so the plan at a past exposure can
  differ from today's (the point-in-time join must see the old one);
- ``loyalty_tier`` (bronze, silver, gold): from the customer's purchase rate, with noise;
- ``age_band`` (18-29, 30-44, 45-64, 65+): independent of behaviour (a fairness dimension).

Any other declared attribute is noise: numeric ~ N(0, 1), boolean a fair coin, categorical
uniform over its values. 2 % of the values are null (unknown). The drift drill (``drift > 0``)
moves a share of the customers' attributes in the last 30 days, as it shifts their behaviour. Each attribute draws from its own
random stream (seeded by its name), so declaring another one changes no existing value, and the
output depends only on the seed, the chunk and the declaration.
"""

from __future__ import annotations

import zlib

import numpy as np
import pyarrow as pa

from orchestration.core.world.attributes import Attribute, AttributeDeclaration

UPGRADE_SHARE = 0.15  # customers whose plan goes up one level once
NULL_SHARE = 0.02  # values unknown
PLAN_VALUES = ("basic", "plus", "premium")
TIER_VALUES = ("bronze", "silver", "gold")
AGE_VALUES = ("18-29", "30-44", "45-64", "65+")
# plan weights per hidden segment (persuadable, sure_thing, lost_cause, sleeping_dog)
PLAN_BY_SEGMENT = np.array(
    [[0.25, 0.55, 0.20], [0.15, 0.30, 0.55], [0.65, 0.25, 0.10], [0.45, 0.35, 0.20]]
)
AGE_WEIGHTS = (0.25, 0.30, 0.30, 0.15)
# loyalty tier: log(orders per day) plus noise, cut at these points (about 1/120 and 1/40 a day)
TIER_CUTS = (np.log(1 / 120), np.log(1 / 40))
_STREAM_CHANGES = 1_000
DRIFT_MOVE_SHARE = 0.4  # the drift drill: share of customers (x drift) whose attributes move


def _stream(seed: int, chunk: int, name: str) -> np.random.Generator:
    return np.random.default_rng([seed, chunk, 1_001, zlib.crc32(name.encode())])


def _draw(rng: np.random.Generator, probabilities: np.ndarray) -> np.ndarray:
    """One category per row from per-row probabilities (rows sum to 1)."""
    cdf = np.cumsum(probabilities, axis=1)
    u = rng.random(probabilities.shape[0])[:, None]
    return np.minimum((u > cdf).sum(axis=1), probabilities.shape[1] - 1)


def _codes(
    a: Attribute, rng: np.random.Generator, seg: np.ndarray, order_rate: np.ndarray
) -> np.ndarray:
    """Category codes (or 0/1, or floats) of the first row of every customer."""
    n = seg.size
    values = tuple(a.values or ())
    if a.name == "plan" and values == PLAN_VALUES:
        return _draw(rng, PLAN_BY_SEGMENT[seg])
    if a.name == "loyalty_tier" and values == TIER_VALUES:
        noisy = np.log(order_rate) + 0.5 * rng.standard_normal(n)
        return np.searchsorted(np.array(TIER_CUTS), noisy)
    if a.name == "age_band" and values == AGE_VALUES:
        return _draw(rng, np.tile(np.array(AGE_WEIGHTS), (n, 1)))
    if a.type == "numeric":
        return np.round(rng.standard_normal(n), 3)
    if a.type == "boolean":
        return (rng.random(n) < 0.5).astype(np.int64)
    return (rng.random(n) * len(values)).astype(np.int64)


def _column(a: Attribute, codes: np.ndarray, unknown: np.ndarray) -> pa.Array:
    if a.type == "numeric":
        return pa.array(codes.astype(np.float64), mask=unknown)
    if a.type == "boolean":
        return pa.array(codes.astype(bool), mask=unknown)
    indices = pa.array(codes.astype(np.int32), mask=unknown)
    return pa.array(a.values, pa.string()).take(indices)


def _shifted(a: Attribute, codes: np.ndarray, moved: np.ndarray, drift: float) -> np.ndarray:
    """The drift drill's shift of one attribute for the rows at or after a customer's move:
    categoricals one level up (plan and tier capped at the top), numbers + drift, booleans
    flipped."""
    if a.type == "numeric":
        return np.where(moved, codes + drift, codes)
    if a.type == "boolean":
        return np.where(moved, 1 - codes, codes)
    k = len(a.values or ())
    capped = a.name in ("plan", "loyalty_tier")
    up = np.minimum(codes + 1, k - 1) if capped else (codes + 1) % k
    return np.where(moved, up, codes)


def _row_times(
    changes: np.random.Generator,
    signed_up: np.ndarray,
    as_of: int,
    drift: float,
    drift_start: int,
) -> tuple[np.ndarray, ...]:
    """Per customer: upgrade time and move time (int64 max: none); per row: customer index and
    valid_from, sorted by customer and time."""
    n = signed_up.size
    never = np.iinfo(np.int64).max
    upgraded_at = np.full(n, never)
    upgrades = np.flatnonzero(changes.random(n) < UPGRADE_SHARE)
    span = np.maximum(as_of - signed_up[upgrades] - 1, 1)
    upgraded_at[upgrades] = (
        signed_up[upgrades] + 1 + (changes.random(upgrades.size) * span).astype(np.int64)
    )
    moved_at = np.full(n, never)
    if drift > 0:  # the drift drill: a share of the customers moves in the last 30 days
        start = np.maximum(signed_up + 1, drift_start)
        movers = np.flatnonzero(
            (changes.random(n) < min(0.9, DRIFT_MOVE_SHARE * drift)) & (start < as_of)
        )
        moved_at[movers] = start[movers] + (
            changes.random(movers.size) * (as_of - start[movers])
        ).astype(np.int64)
    rows = np.concatenate([np.arange(n), upgrades, np.flatnonzero(moved_at != never)])
    times = np.concatenate([signed_up, upgraded_at[upgrades], moved_at[moved_at != never]])
    order = np.lexsort((times, rows))
    return upgraded_at, moved_at, rows[order], times[order]


def customer_attributes(
    declaration: AttributeDeclaration,
    schema: pa.Schema,
    *,
    seed: int,
    chunk: int,
    customer_ids: np.ndarray,
    signed_up: np.ndarray,
    as_of: int,
    seg: np.ndarray,
    order_rate: np.ndarray,
    drift: float = 0.0,
    drift_start: int | None = None,
) -> pa.Table:
    """The ``customer_attributes`` rows of one chunk, sorted by customer and valid_from.

    Times are whole seconds since the epoch; every customer has a row from sign-up, upgraders a
    second one (their plan one level up) at a uniform time in (sign-up, as_of). With ``drift``
    > 0 (the drift drill), a share of the customers (``DRIFT_MOVE_SHARE`` x drift, at most 90 %)
    gets a row in [drift_start, as_of) with every attribute shifted (:func:`_shifted`), so the
    attributes drift like the behaviour does.
    """
    n = customer_ids.size
    changes = np.random.default_rng([seed, chunk, _STREAM_CHANGES])
    upgraded_at, moved_at, rows, valid_from = _row_times(
        changes, signed_up, as_of, drift, drift_start if drift_start is not None else as_of
    )
    upgraded = valid_from >= upgraded_at[rows]
    moved = valid_from >= moved_at[rows]
    columns: list[pa.Array] = [
        pa.array(customer_ids[rows]),
        pa.array(valid_from * 1_000_000, pa.int64()).cast(schema.field("valid_from").type),
    ]
    for a in declaration.attributes:
        rng = _stream(seed, chunk, a.name)
        codes = _codes(a, rng, seg, order_rate)[rows]
        unknown = (rng.random(n) < NULL_SHARE)[rows]
        if a.name == "plan" and tuple(a.values or ()) == PLAN_VALUES:
            codes = np.where(upgraded, np.minimum(codes + 1, len(PLAN_VALUES) - 1), codes)
        columns.append(_column(a, _shifted(a, codes, moved, drift), unknown))
    return pa.table(columns, schema=schema)
