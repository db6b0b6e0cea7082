"""A seeded synthetic customer world with a known treatment effect, written as the raw contract.

Every customer has a hidden segment (persuadable, sure thing, lost cause, sleeping dog) that sets
their purchase rate, how they engage with messages and how a message changes their chance of
buying within 14 days. The raw tables (customers, contact points, consent events, orders,
engagement events, suppressions, four past randomized campaigns and the declared customer
attributes, ``synthetic_attributes.py``) show only behaviour and attributes; the
segments and the true per-customer uplift go to a separate ground-truth directory that training
and scoring never read.

The effect is learnable: it is driven by latent rates (purchase rate, open/click and dismiss
propensities) that the usual recency/frequency/monetary and engagement features reveal.

Scale: customers are generated in chunks of ``CHUNK_CUSTOMERS``, each from its own random
streams, and appended to the Parquet files as row groups (written by a second thread while the
next chunk is generated), so memory stays bounded (10M customers: about 1.3 GB peak, two minutes
on two cores) and the output depends only on the spec, never on the machine. The same spec gives
byte-identical files. Times are whole seconds, all strictly before ``as_of``.

Behaviour: orders are a Poisson process per customer, each with a category and a sales channel
drawn from a fixed mix (``ORDER_CATEGORY_WEIGHTS``, ``SALES_CHANNEL_WEIGHTS``: no uplift signal
in them); opens, clicks and dismissals arrive on a channel only while the customer is opted in
on it (at most one consent change per channel); sessions need no channel. Separate random
streams per purpose mean a drift drill (``drift > 0``) changes only the last 30 days: everything
before is the same world.

Past campaigns: for each campaign the eligible customers (signed up before the campaign day, opted
in on its channel and not suppressed at their send time, with a verified contact point on the
channel) are sampled at ``CAMPAIGN_SAMPLE_SHARE`` and split 50/50 into treatment and control. In
the 14 days after ``exposed_at`` the customer's background orders are replaced by one Bernoulli
draw: with probability p1 (treatment) or p0 (control) there is exactly one order at a uniform
time in the window. So "any order within 14 days of exposure" has exactly the arm's probability,
and the difference between the arms estimates the mean true uplift.

History: orders and events cover ``history_days`` before ``as_of``. The default (520) gives the
365-day features at the earliest campaign (150 days before ``as_of``) a full year of history, so
training rows and today's scoring rows are computed alike (no artificial drift).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from orchestration.core.world.attributes import AttributeDeclaration, load_attributes
from orchestration.core.world.contract import (
    ARMS,
    CAMPAIGN_EXPOSURES,
    CHANNELS,
    CONSENT_EVENTS,
    CONTACT_POINTS,
    CUSTOMER_ATTRIBUTES,
    CUSTOMERS,
    ENGAGEMENT_EVENT_TYPES,
    ENGAGEMENT_EVENTS,
    ORDER_CATEGORIES,
    ORDERS,
    OUTCOME_WINDOW_DAYS,
    SALES_CHANNELS,
    SUPPRESSION_REASONS,
    SUPPRESSIONS,
    TIMESTAMP,
    contract_tables,
    customer_attributes_table,
)
from orchestration.core.world.synthetic_attributes import customer_attributes

# --- scale and time ---------------------------------------------------------------------------
CHUNK_CUSTOMERS = 250_000  # customers per chunk; fixed so the output never depends on memory
GENERATOR_VERSION = 3  # 2: orders carry category and sales_channel; 3: customer attributes


SIGNUP_SPAN_DAYS = 3 * 365  # customers signed up within the last three years ...
MIN_TENURE_DAYS = 7  # ... and at least a week before as_of
PROFILE_UPDATE_SHARE = 0.20  # customers whose profile changed recently (keeps customers fresh)
PROFILE_UPDATE_DAYS = 14
DRIFT_DAYS = 30  # drift > 0 changes behaviour in this many days before as_of
DRIFT_ORDER_FACTOR = 2.0  # order rates x (1 + 2 * drift)
DRIFT_ENGAGEMENT_FACTOR = 3.0  # engagement rates x (1 + 3 * drift)

# --- customers --------------------------------------------------------------------------------
# region, share of customers, IANA time zones in the region (equally likely)
REGIONS: tuple[tuple[str, float, tuple[str, ...]], ...] = (
    ("us-east", 0.30, ("America/New_York", "America/Toronto")),
    ("us-west", 0.15, ("America/Los_Angeles", "America/Denver")),
    ("eu-west", 0.20, ("Europe/London", "Europe/Dublin")),
    ("eu-central", 0.20, ("Europe/Berlin", "Europe/Paris")),
    ("apac", 0.15, ("Asia/Singapore", "Australia/Sydney")),
)
_REGION_NAMES = tuple(r[0] for r in REGIONS)
_TIME_ZONES = tuple(tz for r in REGIONS for tz in r[2])
_REGION_TZ_OFFSET = np.cumsum([0] + [len(r[2]) for r in REGIONS])[:-1]
_REGION_TZ_COUNT = np.array([len(r[2]) for r in REGIONS])


# --- latent segments --------------------------------------------------------------------------
@dataclass(frozen=True)
class Segment:
    """A hidden customer type: purchase rate, engagement rates and treatment effect."""

    name: str
    share: float
    days_between_orders: float  # median 1/lambda over the segment
    opens_per_year: float  # per consented channel
    clicks_per_year: float  # per consented channel
    dismisses_per_year: float  # per consented channel
    sessions_per_year: float
    uplift: str  # how the 14-day conversion responds to a message


SEGMENTS: tuple[Segment, ...] = (
    Segment("persuadable", 0.25, 60, 10.0, 4.0, 1.5, 8.0, "+0.08..+0.25, rising with clicks"),
    Segment("sure_thing", 0.20, 20, 3.0, 1.2, 1.0, 20.0, "~0 (+-0.005)"),
    Segment("lost_cause", 0.40, 200, 1.0, 0.2, 0.8, 1.5, "+0.00..+0.01"),
    Segment("sleeping_dog", 0.15, 50, 4.0, 0.6, 8.0, 5.0, "-0.05..-0.15, deeper with dismisses"),
)
_SEG = {s.name: i for i, s in enumerate(SEGMENTS)}
ORDER_RATE_SIGMA = 0.6  # lognormal spread of the purchase rate within a segment
ENGAGEMENT_SIGMA = 0.5  # lognormal spread of open/click, dismiss and session propensities
AMOUNT_MEDIAN = 50.0  # typical customer's mean order amount (EUR)
AMOUNT_CUSTOMER_SIGMA = 0.35
AMOUNT_ORDER_SIGMA = 0.45
# what an order bought and where (independent of the customer: a plain mix)
ORDER_CATEGORY_WEIGHTS = {"mens": 0.45, "womens": 0.45, "other": 0.10}
SALES_CHANNEL_WEIGHTS = {"web": 0.60, "phone": 0.25, "store": 0.15}
assert tuple(ORDER_CATEGORY_WEIGHTS) == ORDER_CATEGORIES
assert tuple(SALES_CHANNEL_WEIGHTS) == SALES_CHANNELS

# --- consent, contact points, suppressions ----------------------------------------------------
SIGNUP_OPT_IN = {"email": 0.75, "sms": 0.35, "push": 0.50}
HAS_CONTACT = {"email": 1.0, "sms": 0.70, "push": 0.60}  # phone number / push token
VERIFIED_SHARE = 0.95
# (customer, channel) pairs with one later change of state: ~15 % overall, as a pair without a
# contact point that starts opted out cannot change
CONSENT_CHANGE_SHARE = 0.18
SLEEPING_DOG_OPT_OUT_SHARE = 0.35  # opted-in sleeping dogs opt out more often
SUPPRESSED_ALL_SHARE = 0.015
SUPPRESSED_ONE_SHARE = 0.02
_SUPPRESSION_ALL_REASONS = (("legal_request", 0.4), ("fraud", 0.3), ("complaint", 0.3))
_SUPPRESSION_ONE_REASONS = (("hard_bounce", 0.7), ("complaint", 0.3))
_CONSENT_SOURCES = ("signup", "preference_center", "unsubscribe_link")

# --- past randomized campaigns ----------------------------------------------------------------
ATTRIBUTION_WINDOW_DAYS = OUTCOME_WINDOW_DAYS  # the raw contract's outcome window
CAMPAIGN_SAMPLE_SHARE = 0.6
TREATMENT_SHARE = 0.5
SEND_HOURS_UTC = (9, 18)  # exposed_at = campaign day + uniform time in [09:00, 18:00) UTC


# Two message variants (``WorldSpec(variants=True)``), half of the treated customers each: a
# discount ``offer`` (the single treatment's effect: persuadables +0.08..+0.25, sleeping dogs
# negative) and a ``reminder`` that wakes lost causes (+0.06..+0.20, rising with their open and
# click propensity), barely moves persuadables (+0.01..+0.03) or sure things (0) and annoys
# sleeping dogs less (-0.02..-0.06). So which variant is best depends on the customer type:
# offer for persuadables, reminder for lost causes, neither for sleeping dogs.
VARIANT_ARMS: tuple[str, ...] = ("offer", "reminder")
# Two messages split the treated rows: the variants world samples every eligible customer and
# splits them in thirds (offer, reminder, control), so each arm's comparison with control has
# about the rows of the one-message world's (whose Qini interval clears 0 at 20k customers).
VARIANT_SAMPLE_SHARE = 1.0
VARIANT_TREATMENT_SHARE = 2 / 3


@dataclass(frozen=True)
class PastCampaign:
    days_before: int
    channel: str

    @property
    def campaign_id(self) -> str:
        return f"past_d{self.days_before}_{self.channel}"


PAST_CAMPAIGNS: tuple[PastCampaign, ...] = (
    PastCampaign(150, "email"),
    PastCampaign(120, "sms"),
    PastCampaign(90, "email"),
    PastCampaign(60, "push"),
)

GROUND_TRUTH_SCHEMA = pa.schema(
    [
        ("customer_id", pa.int64()),
        ("segment", pa.string()),
        ("base_conversion_probability", pa.float64()),
        ("treated_conversion_probability", pa.float64()),
        ("true_uplift", pa.float64()),
    ]
)
GROUND_TRUTH_FILE = "customer_uplift.parquet"


def ground_truth_schema(spec: WorldSpec) -> pa.Schema:
    """The ground truth's columns; the variants world adds each arm's true uplift
    (``true_uplift__offer``, ``true_uplift__reminder``; ``true_uplift`` is the offer's)."""
    if not spec.variants:
        return GROUND_TRUTH_SCHEMA
    extra = [pa.field(f"true_uplift__{arm}", pa.float64()) for arm in VARIANT_ARMS]
    return pa.schema([*GROUND_TRUTH_SCHEMA, *extra])


WORLD_FILE = "world.json"

# Independent random streams per chunk: changing drift only changes the drift-period draws.
_S_CUSTOMERS, _S_LATENT, _S_CONSENT, _S_CONTACT, _S_SUPPRESS, _S_CAMPAIGN = range(6)
_S_ORDERS, _S_ORDERS_DRIFT, _S_CONVERSIONS, _S_AMOUNTS, _S_EVENTS, _S_EVENTS_DRIFT = range(6, 12)
_S_ORDER_KINDS = 12


@dataclass(frozen=True)
class WorldSpec:
    customers: int = 100_000  # 1_000 .. 10_000_000 must work
    seed: int = 42
    as_of: datetime | None = None  # tz-aware UTC; None -> now (UTC), truncated to the second
    drift: float = 0.0  # > 0 injects a behaviour shift into the last 30 days before as_of
    history_days: int = (
        520  # 365-day features at the earliest campaign (150 days back) see full history
    )
    # True: the past campaigns test two message variants (VARIANT_ARMS) against control
    variants: bool = False

    @property
    def arms(self) -> tuple[str, ...]:
        """The past campaigns' arms, treatments first (``control`` last)."""
        return (*VARIANT_ARMS, "control") if self.variants else ARMS


@dataclass
class WorldSummary:
    rows: dict[str, int]
    seconds: float
    as_of: datetime
    campaigns: list[dict] = field(default_factory=list)


# --- small helpers ----------------------------------------------------------------------------
# Internally every time is an int64 count of whole seconds since the epoch (event logs record
# seconds); the Parquet columns are microseconds.
_DAY = 86_400
_HOUR = 3_600
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# Sorting packs (customer index, time, small payload) into one int64 and sorts values, which is
# several times faster than a multi-key lexsort: 18 bits of customer, 35 bits of seconds
# (1,000 years) and 10 bits of payload.
_IDX_SHIFT = 45
_TIME_SHIFT = 10
_TIME_MASK = (1 << 35) - 1
_PAYLOAD_MASK = (1 << _TIME_SHIFT) - 1
assert CHUNK_CUSTOMERS <= 1 << 18


def _seconds(moment: datetime) -> int:
    """Whole seconds since the epoch, rounded down."""
    return (moment - _EPOCH) // timedelta(seconds=1)


def _resolve_as_of(as_of: datetime | None) -> datetime:
    if as_of is None:
        return datetime.now(UTC).replace(microsecond=0)
    if as_of.tzinfo is None or as_of.utcoffset() is None:
        raise ValueError(f"as_of must be timezone-aware (UTC), got naive {as_of.isoformat()}")
    return as_of.astimezone(UTC)


def _rng(seed: int, chunk: int, stream: int) -> np.random.Generator:
    return np.random.default_rng([seed, chunk, stream])


def _uniform_times(rng: np.random.Generator, start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """One uniform whole second in [start, end) per row (end > start)."""
    span = end - start
    t = start + (rng.random(start.size) * span).astype(np.int64)
    return np.minimum(t, end - 1)


def _poisson_times(
    rng: np.random.Generator, rate_per_day: np.ndarray, start: np.ndarray, end: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Poisson process per row over [start, end): (row index, time) of every point."""
    span = np.maximum(end - start, 0)
    counts = rng.poisson(rate_per_day * (span / _DAY))
    rows = np.repeat(np.arange(start.size, dtype=np.int64), counts)
    return rows, _uniform_times(rng, start[rows], end[rows])


def _sort_by_customer_time(
    idx: np.ndarray, at: np.ndarray, payload: np.ndarray, base: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sort rows by (customer index, time, payload); payload < 1024, at >= base."""
    key = (idx << _IDX_SHIFT) | ((at - base) << _TIME_SHIFT) | payload
    key.sort()
    return key >> _IDX_SHIFT, ((key >> _TIME_SHIFT) & _TIME_MASK) + base, key & _PAYLOAD_MASK


def _choice(rng: np.random.Generator, n: int, weights: tuple[float, ...]) -> np.ndarray:
    cdf = np.cumsum(weights) / np.sum(weights)
    return np.minimum(np.searchsorted(cdf, rng.random(n), side="right"), len(weights) - 1)


def _ts(seconds: np.ndarray) -> pa.Array:
    values = np.ascontiguousarray(seconds, dtype=np.int64) * 1_000_000
    return pa.Array.from_buffers(TIMESTAMP, values.size, [None, pa.py_buffer(values)])


def _ids(first: int, count: int) -> pa.Array:
    return pa.array(np.arange(first, first + count, dtype=np.int64))


def _strings(
    codes: np.ndarray, values: tuple[str, ...], mask: np.ndarray | None = None
) -> pa.Array:
    indices = pa.array(codes.astype(np.int32), mask=mask)
    return pa.array(values, pa.string()).take(indices)


def _fixed_width_strings(chars: np.ndarray) -> pa.Array:
    """A string array from an (n, width) uint8 matrix of ASCII codes."""
    n, width = chars.shape
    offsets = np.arange(0, (n + 1) * width, width, dtype=np.int32)
    data = np.ascontiguousarray(chars, dtype=np.uint8)
    return pa.Array.from_buffers(pa.string(), n, [None, pa.py_buffer(offsets), pa.py_buffer(data)])


_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
_DIGITS = np.frombuffer(b"0123456789", dtype=np.uint8)


def _phone_numbers(rng: np.random.Generator, n: int) -> pa.Array:
    """Synthetic +1555 numbers (the fictional 555 prefix) with seven random digits."""
    number = rng.integers(0, 10_000_000, n)
    chars = np.empty((n, 12), dtype=np.uint8)
    chars[:, :5] = np.frombuffer(b"+1555", dtype=np.uint8)
    for j in range(7):
        chars[:, 5 + j] = _DIGITS[(number // 10 ** (6 - j)) % 10]
    return _fixed_width_strings(chars)


def _push_tokens(rng: np.random.Generator, n: int) -> pa.Array:
    raw = rng.integers(0, 256, (n, 16), dtype=np.uint8)
    chars = np.empty((n, 32), dtype=np.uint8)
    chars[:, 0::2] = _HEX[raw >> 4]
    chars[:, 1::2] = _HEX[raw & 15]
    return _fixed_width_strings(chars)


def _email_addresses(customer_ids: np.ndarray) -> pa.Array:
    ids = pc.cast(pa.array(customer_ids, pa.int64()), pa.string())
    return pc.binary_join_element_wise("u", ids, "@example.com", "")


def _sigmoid(z: np.ndarray) -> np.ndarray:
    """Approximately the standard normal CDF (logistic with scale 1.702)."""
    return 1.0 / (1.0 + np.exp(-1.702 * z))


# --- one chunk of customers -------------------------------------------------------------------
@dataclass
class _Counters:
    """Running ids across chunks (each table's next id)."""

    consent_event_id: int = 1
    order_id: int = 1
    event_id: int = 1
    suppression_id: int = 1
    exposure_id: int = 1


@dataclass
class _Chunk:
    tables: dict[str, pa.Table]
    truth: pa.Table
    campaign_stats: list[dict]


@dataclass(frozen=True)
class _Frame:
    """What every table of one chunk shares: the customer ids, the clock and the random streams.

    Times are whole seconds since the epoch; ``as_of`` is exclusive.
    """

    spec: WorldSpec
    chunk: int
    n: int
    cust: np.ndarray  # customer ids
    as_of: int
    end: np.ndarray  # as_of, one per customer
    drift_start: int
    history_start: int
    day0: int  # midnight (UTC) of as_of
    window: int  # the attribution window
    base: int  # no time is earlier

    def rng(self, stream: int) -> np.random.Generator:
        return _rng(self.spec.seed, self.chunk, stream)


def _frame(spec: WorldSpec, as_of: int, chunk: int, first_id: int, n: int) -> _Frame:
    history_start = as_of - spec.history_days * _DAY
    signup_lo = as_of - SIGNUP_SPAN_DAYS * _DAY
    day0 = as_of - as_of % _DAY
    earliest_campaign = day0 - max(c.days_before for c in PAST_CAMPAIGNS) * _DAY
    return _Frame(
        spec=spec,
        chunk=chunk,
        n=n,
        cust=np.arange(first_id, first_id + n, dtype=np.int64),
        as_of=as_of,
        end=np.full(n, as_of),
        drift_start=as_of - DRIFT_DAYS * _DAY,
        history_start=history_start,
        day0=day0,
        window=ATTRIBUTION_WINDOW_DAYS * _DAY,
        base=min(signup_lo, history_start, earliest_campaign),
    )


class _Profile(NamedTuple):
    signed_up: np.ndarray
    region: np.ndarray
    tz: np.ndarray
    updated: np.ndarray
    observed_from: np.ndarray  # sign-up or the start of the history: orders and events begin


class _Latent(NamedTuple):
    seg: np.ndarray
    order_rate: np.ndarray  # orders per day
    open_rate: np.ndarray  # per day and consented channel, like click and dismiss
    click_rate: np.ndarray
    dismiss_rate: np.ndarray
    session_rate: np.ndarray
    amount_mean: np.ndarray
    p0: np.ndarray  # conversion probability in the attribution window without a message
    p1: np.ndarray  # ... and with one (the variants world: with the ``offer``)
    p2: np.ndarray  # ... with the ``reminder`` (the variants world only; no extra draws)


class _Reach(NamedTuple):
    """Consent and contact points: (channel, customer) matrices."""

    signed_up: np.ndarray
    opted_at_signup: np.ndarray
    has_contact: np.ndarray
    verified: np.ndarray
    change_at: np.ndarray  # the one consent change per channel; int64 max when none

    def opted_in(self, k: int, t: np.ndarray) -> np.ndarray:
        """Consent on channel k at times t: the latest event at or before t."""
        return (t >= self.signed_up) & (self.opted_at_signup[k] ^ (t >= self.change_at[k]))


class _Suppressed(NamedTuple):
    all_channels: np.ndarray
    one_channel: np.ndarray
    channel: np.ndarray  # the channel of a one-channel suppression
    at: np.ndarray

    def at_send(self, k: int, send_at: np.ndarray) -> np.ndarray:
        """Suppressed on channel k at send_at."""
        return (self.all_channels | (self.one_channel & (self.channel == k))) & (self.at <= send_at)


class _Exposed(NamedTuple):
    """The past campaigns' outcome windows and the orders that replace the background ones."""

    window_start: np.ndarray  # (campaign, customer); -1: not exposed
    conv_idx: list[np.ndarray]
    conv_at: list[np.ndarray]
    stats: list[dict]


def _draw_customers(f: _Frame) -> _Profile:
    n = f.n
    rng = f.rng(_S_CUSTOMERS)
    signup_lo = f.as_of - SIGNUP_SPAN_DAYS * _DAY
    signup_hi = f.as_of - MIN_TENURE_DAYS * _DAY
    signed_up = _uniform_times(rng, np.full(n, signup_lo), np.full(n, signup_hi))
    region = _choice(rng, n, tuple(r[1] for r in REGIONS))
    tz = _REGION_TZ_OFFSET[region] + (rng.random(n) * _REGION_TZ_COUNT[region]).astype(np.int64)
    updated = signed_up.copy()
    touched = rng.random(n) < PROFILE_UPDATE_SHARE
    upd_start = np.maximum(signed_up, f.as_of - PROFILE_UPDATE_DAYS * _DAY)
    updated[touched] = _uniform_times(rng, upd_start[touched], f.end[touched])
    return _Profile(signed_up, region, tz, updated, np.maximum(signed_up, f.history_start))


def _draw_latent(f: _Frame) -> _Latent:
    n = f.n
    rng = f.rng(_S_LATENT)
    seg = _choice(rng, n, tuple(s.share for s in SEGMENTS))
    z_order, z_eng, z_dismiss, z_session, z_amount = rng.standard_normal((5, n))
    base_rate = np.array([1.0 / s.days_between_orders for s in SEGMENTS])[seg]
    order_rate = base_rate * np.exp(ORDER_RATE_SIGMA * z_order)  # orders per day
    per_day = (
        np.array(
            [
                [s.opens_per_year, s.clicks_per_year, s.dismisses_per_year, s.sessions_per_year]
                for s in SEGMENTS
            ]
        )[seg]
        / 365.0
    )
    eng_mult = np.exp(ENGAGEMENT_SIGMA * z_eng)  # the open/click ("click") propensity
    open_rate = per_day[:, 0] * eng_mult
    click_rate = per_day[:, 1] * eng_mult
    dismiss_rate = per_day[:, 2] * np.exp(ENGAGEMENT_SIGMA * z_dismiss)
    # sessions follow purchase propensity too (people who buy browse)
    session_rate = per_day[:, 3] * np.exp(0.4 * z_order + 0.3 * z_session)
    amount_mean = AMOUNT_MEDIAN * np.exp(AMOUNT_CUSTOMER_SIGMA * z_amount)

    p0 = np.clip(1.0 - np.exp(-ATTRIBUTION_WINDOW_DAYS * order_rate), 0.001, 0.999)
    u = rng.random(n)
    tau = np.select(
        [seg == _SEG["persuadable"], seg == _SEG["sure_thing"], seg == _SEG["lost_cause"]],
        [0.08 + 0.17 * _sigmoid(z_eng), -0.005 + 0.01 * u, 0.01 * u],
        default=-(0.05 + 0.10 * _sigmoid(z_dismiss)),  # sleeping dogs
    )
    p1 = np.clip(p0 + tau, 0.001, 0.999)
    tau_reminder = np.select(
        [seg == _SEG["persuadable"], seg == _SEG["lost_cause"], seg == _SEG["sleeping_dog"]],
        [0.01 + 0.02 * u, 0.06 + 0.14 * _sigmoid(z_eng), -(0.02 + 0.04 * _sigmoid(z_dismiss))],
        default=0.0,
    )
    p2 = np.clip(p0 + tau_reminder, 0.001, 0.999)
    return _Latent(
        seg, order_rate, open_rate, click_rate, dismiss_rate, session_rate, amount_mean, p0, p1, p2
    )


def _contact_points(
    f: _Frame, signed_up: np.ndarray, opted_at_signup: np.ndarray
) -> tuple[np.ndarray, np.ndarray, pa.Table]:
    """``(has_contact, verified, contact_points)``; an opt-in at sign-up has a contact point."""
    n, n_ch, cust = f.n, len(CHANNELS), f.cust
    rng_c = f.rng(_S_CONTACT)
    has_contact = np.empty((n_ch, n), dtype=bool)
    for k, c in enumerate(CHANNELS):
        # an opt-in needs somewhere to send to: the rest of the share goes to the others
        p_in = SIGNUP_OPT_IN[c]
        p_rest = max(HAS_CONTACT[c] - p_in, 0.0) / (1.0 - p_in)
        has_contact[k] = opted_at_signup[k] | (rng_c.random(n) < p_rest)
    verified = rng_c.random((n_ch, n)) < VERIFIED_SHARE
    cp_rows = [np.flatnonzero(has_contact[k]) for k in range(n_ch)]
    cp_idx = np.concatenate(cp_rows)
    cp_ch = np.concatenate([np.full(r.size, k, dtype=np.int64) for k, r in enumerate(cp_rows)])
    cp_addr = pa.concat_arrays(
        [
            _email_addresses(cust[cp_rows[0]]),
            _phone_numbers(rng_c, cp_rows[1].size),
            _push_tokens(rng_c, cp_rows[2].size),
        ]
    )
    order = np.argsort(cp_idx * n_ch + cp_ch, kind="stable")
    cp_idx, cp_ch = cp_idx[order], cp_ch[order]
    contact_points = pa.table(
        [
            pa.array(cust[cp_idx]),
            _strings(cp_ch, CHANNELS),
            cp_addr.take(pa.array(order)),
            pa.array(verified[cp_ch, cp_idx]),
            _ts(signed_up[cp_idx]),
        ],
        schema=CONTACT_POINTS.schema,
    )
    return has_contact, verified, contact_points


def _consent_events(
    f: _Frame,
    rng: np.random.Generator,
    seg: np.ndarray,
    signed_up: np.ndarray,
    opted_at_signup: np.ndarray,
    has_contact: np.ndarray,
    ids: _Counters,
) -> tuple[np.ndarray, pa.Table]:
    """One event per channel at sign-up, then at most one change per channel: ``(change_at,
    consent_events)``; ``rng`` is the consent stream after the sign-up draws."""
    n, n_ch = f.n, len(CHANNELS)
    is_dog = seg == _SEG["sleeping_dog"]
    change_p = np.where(opted_at_signup & is_dog, SLEEPING_DOG_OPT_OUT_SHARE, CONSENT_CHANGE_SHARE)
    change_p[~opted_at_signup & ~has_contact] = 0.0  # cannot opt in without a contact point
    changes = rng.random((n_ch, n)) < change_p
    never = np.iinfo(np.int64).max
    change_at = np.full((n_ch, n), never)
    ch_k, ch_i = np.nonzero(changes)
    # strictly after sign-up, so the change is the latest event from then on
    change_at[ch_k, ch_i] = _uniform_times(rng, signed_up[ch_i] + 1, f.end[ch_i])
    to_out = opted_at_signup[ch_k, ch_i]
    out_source = np.where(rng.random(ch_i.size) < 0.6, 2, 1)  # unsubscribe link or pref. center
    ce_idx = np.concatenate([np.repeat(np.arange(n), n_ch), ch_i])
    ce_payload = np.concatenate(
        [
            np.tile(np.arange(n_ch), n) | (opted_at_signup.T.ravel() << 2),  # source 0: sign-up
            ch_k | (~to_out << 2) | (np.where(to_out, out_source, 1) << 3),
        ]
    )
    ce_at = np.concatenate([np.repeat(signed_up, n_ch), change_at[ch_k, ch_i]])
    ce_idx, ce_at, ce_payload = _sort_by_customer_time(ce_idx, ce_at, ce_payload, f.base)
    consent_events = pa.table(
        [
            _ids(ids.consent_event_id, ce_idx.size),
            pa.array(f.cust[ce_idx]),
            _strings(ce_payload & 3, CHANNELS),
            pa.array((ce_payload & 4).astype(bool)),
            _strings(ce_payload >> 3, _CONSENT_SOURCES),
            _ts(ce_at),
        ],
        schema=CONSENT_EVENTS.schema,
    )
    ids.consent_event_id += ce_idx.size
    return change_at, consent_events


def _consent_and_contact(
    f: _Frame, signed_up: np.ndarray, seg: np.ndarray, ids: _Counters
) -> tuple[_Reach, pa.Table, pa.Table]:
    """``(reach, contact_points, consent_events)``: consent at sign-up, then contact points,
    then the later consent changes."""
    rng = f.rng(_S_CONSENT)
    opted_at_signup = np.stack([rng.random(f.n) < SIGNUP_OPT_IN[c] for c in CHANNELS])  # (3, n)
    has_contact, verified, contact_points = _contact_points(f, signed_up, opted_at_signup)
    change_at, consent_events = _consent_events(
        f, rng, seg, signed_up, opted_at_signup, has_contact, ids
    )
    reach = _Reach(signed_up, opted_at_signup, has_contact, verified, change_at)
    return reach, contact_points, consent_events


def _suppressions(f: _Frame, signed_up: np.ndarray, ids: _Counters) -> tuple[_Suppressed, pa.Table]:
    n = f.n
    rng = f.rng(_S_SUPPRESS)
    u = rng.random(n)
    sup_all = u < SUPPRESSED_ALL_SHARE
    sup_one = (u >= SUPPRESSED_ALL_SHARE) & (u < SUPPRESSED_ALL_SHARE + SUPPRESSED_ONE_SHARE)
    sup_channel = _choice(rng, n, (0.6, 0.2, 0.2))  # email bounces most often
    sup_at = _uniform_times(rng, signed_up, f.end)
    reason_all = np.array([SUPPRESSION_REASONS.index(r) for r, _ in _SUPPRESSION_ALL_REASONS])[
        _choice(rng, n, tuple(w for _, w in _SUPPRESSION_ALL_REASONS))
    ]
    reason_one = np.array([SUPPRESSION_REASONS.index(r) for r, _ in _SUPPRESSION_ONE_REASONS])[
        _choice(rng, n, tuple(w for _, w in _SUPPRESSION_ONE_REASONS))
    ]
    sup_idx = np.flatnonzero(sup_all | sup_one)
    suppressions = pa.table(
        [
            _ids(ids.suppression_id, sup_idx.size),
            pa.array(f.cust[sup_idx]),
            _strings(sup_channel[sup_idx], CHANNELS, mask=sup_all[sup_idx]),
            _strings(np.where(sup_all, reason_all, reason_one)[sup_idx], SUPPRESSION_REASONS),
            _ts(sup_at[sup_idx]),
        ],
        schema=SUPPRESSIONS.schema,
    )
    ids.suppression_id += sup_idx.size
    return _Suppressed(sup_all, sup_one, sup_channel, sup_at), suppressions


def _past_campaigns(
    f: _Frame, reach: _Reach, suppressed: _Suppressed, latent: _Latent, ids: _Counters
) -> tuple[_Exposed, pa.Table]:
    n, window, (p0, p1) = f.n, f.window, (latent.p0, latent.p1)
    rng = f.rng(_S_CAMPAIGN)
    rng_conv = f.rng(_S_CONVERSIONS)
    lo, hi = SEND_HOURS_UTC
    ex_parts: list[tuple[np.ndarray, ...]] = []
    window_start = np.full((len(PAST_CAMPAIGNS), n), -1, dtype=np.int64)  # -1: not exposed
    conv_idx: list[np.ndarray] = []
    conv_at: list[np.ndarray] = []
    campaign_stats = []
    for c_i, campaign in enumerate(PAST_CAMPAIGNS):
        k = CHANNELS.index(campaign.channel)
        day = f.day0 - campaign.days_before * _DAY
        send_at = day + lo * _HOUR + (rng.random(n) * (hi - lo) * _HOUR).astype(np.int64)
        eligible = (
            (reach.signed_up < day)
            & reach.opted_in(k, send_at)
            & reach.has_contact[k]
            & reach.verified[k]
            & ~suppressed.at_send(k, send_at)
        )
        variants = f.spec.variants
        sampled = eligible & (
            rng.random(n) < (VARIANT_SAMPLE_SHARE if variants else CAMPAIGN_SAMPLE_SHARE)
        )
        treated = rng.random(n) < (VARIANT_TREATMENT_SHARE if variants else TREATMENT_SHARE)
        # the variants world: half the treated get the second variant (a draw only there, so
        # the default world's bytes do not change)
        second = (rng.random(n) < 0.5) & treated if f.spec.variants else np.zeros(n, bool)
        idx = np.flatnonzero(sampled)
        t_idx = treated[idx]
        s_idx = second[idx]
        starts = send_at[idx]
        p_treated = np.where(s_idx, latent.p2[idx], p1[idx])
        converted = rng_conv.random(idx.size) < np.where(t_idx, p_treated, p0[idx])
        conv_idx.append(idx[converted])
        conv_at.append(_uniform_times(rng_conv, starts[converted], starts[converted] + window))
        window_start[c_i, idx] = starts
        # codes into spec.arms: (treatment, control), or (offer, reminder, control)
        codes = np.where(t_idx, 0, 1) if not f.spec.variants else np.where(t_idx, s_idx * 1, 2)
        ex_parts.append((idx, np.full(idx.size, c_i), codes, starts))
        campaign_stats.append(
            {
                "exposures": int(idx.size),
                "treated": int(t_idx.sum()),
                "converted_treatment": int(converted[t_idx].sum()),
                "converted_control": int(converted[~t_idx].sum()),
                "sum_true_uplift": float((p1[idx] - p0[idx]).sum()),
            }
        )
    ex_idx, ex_campaign, ex_arm, ex_at = (np.concatenate(p) for p in zip(*ex_parts, strict=True))
    campaign_ids = tuple(c.campaign_id for c in PAST_CAMPAIGNS)
    campaign_channels = np.array([CHANNELS.index(c.channel) for c in PAST_CAMPAIGNS])
    exposures = pa.table(
        [
            _ids(ids.exposure_id, ex_idx.size),
            _strings(ex_campaign, campaign_ids),
            pa.array(f.cust[ex_idx]),
            _strings(campaign_channels[ex_campaign], CHANNELS),
            _strings(ex_arm, f.spec.arms),
            _ts(ex_at),
        ],
        schema=CAMPAIGN_EXPOSURES.schema,
    )
    ids.exposure_id += ex_idx.size
    return _Exposed(window_start, conv_idx, conv_at, campaign_stats), exposures


def _orders(
    f: _Frame, start: np.ndarray, latent: _Latent, exposed: _Exposed, ids: _Counters
) -> pa.Table:
    """A background Poisson process, replaced by the campaign outcome in exposure windows."""
    end, order_rate, window = f.end, latent.order_rate, f.window
    split = np.clip(f.drift_start, start, end)
    o_a, t_a = _poisson_times(f.rng(_S_ORDERS), order_rate, start, split)
    drift_order_rate = order_rate * (1.0 + DRIFT_ORDER_FACTOR * f.spec.drift)
    o_b, t_b = _poisson_times(f.rng(_S_ORDERS_DRIFT), drift_order_rate, split, end)
    o_idx = np.concatenate([o_a, o_b])
    o_at = np.concatenate([t_a, t_b])
    in_window = np.zeros(o_idx.size, dtype=bool)
    for c_i in range(len(PAST_CAMPAIGNS)):
        ws = exposed.window_start[c_i, o_idx]
        in_window |= (ws >= 0) & (o_at >= ws) & (o_at < ws + window)
    o_idx = np.concatenate([o_idx[~in_window], *exposed.conv_idx])
    o_at = np.concatenate([o_at[~in_window], *exposed.conv_at])
    o_idx, o_at, _ = _sort_by_customer_time(o_idx, o_at, np.zeros_like(o_idx), f.base)
    rng = f.rng(_S_AMOUNTS)
    mu = np.log(latent.amount_mean[o_idx]) - 0.5 * AMOUNT_ORDER_SIGMA**2
    amount = np.maximum(np.round(rng.lognormal(mu, AMOUNT_ORDER_SIGMA), 2), 1.0)
    rng = f.rng(_S_ORDER_KINDS)
    category = _choice(rng, o_idx.size, tuple(ORDER_CATEGORY_WEIGHTS.values()))
    sales_channel = _choice(rng, o_idx.size, tuple(SALES_CHANNEL_WEIGHTS.values()))
    orders = pa.table(
        [
            _ids(ids.order_id, o_idx.size),
            pa.array(f.cust[o_idx]),
            pa.array(amount),
            _ts(o_at),
            _strings(category, ORDER_CATEGORIES),
            _strings(sales_channel, SALES_CHANNELS),
        ],
        schema=ORDERS.schema,
    )
    ids.order_id += o_idx.size
    return orders


def _engagement_events(
    f: _Frame, start: np.ndarray, latent: _Latent, reach: _Reach, ids: _Counters
) -> pa.Table:
    """Opens, clicks and dismissals while opted in on a channel; sessions (no channel)."""
    end, as_of, change_at, opted_at_signup = f.end, f.as_of, reach.change_at, reach.opted_at_signup
    rng_a = f.rng(_S_EVENTS)
    rng_b = f.rng(_S_EVENTS_DRIFT)
    eng_factor = 1.0 + DRIFT_ENGAGEMENT_FACTOR * f.spec.drift
    ev_idx, ev_at, ev_payload = [], [], []
    no_channel = 3
    rates = (latent.open_rate, latent.click_rate, latent.dismiss_rate)
    streams = [(k, t, r) for k in range(len(CHANNELS)) for t, r in enumerate(rates)]
    streams.append((no_channel, ENGAGEMENT_EVENT_TYPES.index("session"), latent.session_rate))
    for k, type_code, rate in streams:
        if k == no_channel:
            a, b = start, end
        else:  # the interval the channel was opted in (at most one change)
            changed = change_at[k] < as_of
            a = np.where(
                opted_at_signup[k], reach.signed_up, np.where(changed, change_at[k], as_of)
            )
            b = np.where(opted_at_signup[k] & changed, change_at[k], as_of)
            a = np.maximum(a, start)
            b = np.maximum(b, a)
        a_split = np.clip(f.drift_start, a, b)
        for rng_p, lo_t, hi_t, r in (
            (rng_a, a, a_split, rate),
            (rng_b, a_split, b, rate * eng_factor),
        ):
            rows, at = _poisson_times(rng_p, r, lo_t, hi_t)
            ev_idx.append(rows)
            ev_at.append(at)
            ev_payload.append(np.full(rows.size, (type_code << 2) | k, dtype=np.int64))
    e_idx, e_at, e_payload = _sort_by_customer_time(
        np.concatenate(ev_idx), np.concatenate(ev_at), np.concatenate(ev_payload), f.base
    )
    del ev_idx, ev_at, ev_payload
    e_ch = e_payload & 3
    events = pa.table(
        [
            _ids(ids.event_id, e_idx.size),
            pa.array(f.cust[e_idx]),
            _strings(np.minimum(e_ch, 2), CHANNELS, mask=e_ch == no_channel),
            _strings(e_payload >> 2, ENGAGEMENT_EVENT_TYPES),
            _ts(e_at),
        ],
        schema=ENGAGEMENT_EVENTS.schema,
    )
    ids.event_id += e_idx.size
    return events


def _customers_and_truth(
    f: _Frame, profile: _Profile, latent: _Latent
) -> tuple[pa.Table, pa.Table]:
    customers = pa.table(
        [
            pa.array(f.cust),
            _ts(profile.signed_up),
            _strings(profile.region, _REGION_NAMES),
            _strings(profile.tz, _TIME_ZONES),
            _ts(profile.updated),
        ],
        schema=CUSTOMERS.schema,
    )
    truth = pa.table(
        [
            pa.array(f.cust),
            _strings(latent.seg, tuple(s.name for s in SEGMENTS)),
            pa.array(latent.p0),
            pa.array(latent.p1),
            pa.array(latent.p1 - latent.p0),
            *(
                [pa.array(latent.p1 - latent.p0), pa.array(latent.p2 - latent.p0)]
                if f.spec.variants
                else []
            ),
        ],
        schema=ground_truth_schema(f.spec),
    )
    return customers, truth


def _generate_chunk(
    spec: WorldSpec,
    as_of: int,
    chunk: int,
    first_id: int,
    n: int,
    ids: _Counters,
    attributes: AttributeDeclaration,
) -> _Chunk:
    """One chunk of customers and all their rows; ``as_of`` in whole seconds (exclusive).

    Each table draws from its own random streams (``_S_*``), so the order of the steps below
    does not change the bytes; the steps only need what the earlier ones decided.
    """
    f = _frame(spec, as_of, chunk, first_id, n)
    profile = _draw_customers(f)
    latent = _draw_latent(f)
    reach, contact_points, consent_events = _consent_and_contact(
        f, profile.signed_up, latent.seg, ids
    )
    suppressed, suppressions = _suppressions(f, profile.signed_up, ids)
    exposed, exposures = _past_campaigns(f, reach, suppressed, latent, ids)
    orders = _orders(f, profile.observed_from, latent, exposed, ids)
    events = _engagement_events(f, profile.observed_from, latent, reach, ids)
    customers, truth = _customers_and_truth(f, profile, latent)
    declared = customer_attributes(
        attributes,
        customer_attributes_table(attributes).schema,
        seed=spec.seed,
        chunk=chunk,
        customer_ids=f.cust,
        signed_up=profile.signed_up,
        as_of=as_of,
        seg=latent.seg,
        order_rate=latent.order_rate,
        drift=spec.drift,
        drift_start=f.drift_start,
    )
    tables = {
        CUSTOMERS.name: customers,
        CONTACT_POINTS.name: contact_points,
        CONSENT_EVENTS.name: consent_events,
        ORDERS.name: orders,
        ENGAGEMENT_EVENTS.name: events,
        SUPPRESSIONS.name: suppressions,
        CAMPAIGN_EXPOSURES.name: exposures,
        CUSTOMER_ATTRIBUTES.name: declared,
    }
    return _Chunk(tables=tables, truth=truth, campaign_stats=exposed.stats)


# --- the whole world --------------------------------------------------------------------------
def _parquet_options(schema: pa.Schema) -> dict:
    """Dictionary-encode the strings, delta-encode the integers and timestamps (sorted ids and
    per-customer times compress to a fraction)."""
    strings = [f.name for f in schema if pa.types.is_string(f.type)]
    deltas = {
        f.name: "DELTA_BINARY_PACKED"
        for f in schema
        if pa.types.is_int64(f.type) or pa.types.is_timestamp(f.type)
    }
    return {"use_dictionary": strings, "column_encoding": deltas}


class _AtomicParquet:
    """Row groups appended to ``<name>.tmp``; ``commit`` moves the finished file into place."""

    def __init__(self, path: Path, schema: pa.Schema) -> None:
        self.path = path
        self.tmp = path.with_name(path.name + ".tmp")
        self.writer = pq.ParquetWriter(self.tmp, schema, **_parquet_options(schema))
        self.rows = 0

    def write(self, table: pa.Table) -> None:
        self.writer.write_table(table)
        self.rows += table.num_rows

    def commit(self) -> None:
        self.writer.close()
        os.replace(self.tmp, self.path)

    def abort(self) -> None:
        try:
            self.writer.close()
        finally:
            self.tmp.unlink(missing_ok=True)


def _validate_spec(spec: WorldSpec) -> None:
    if spec.customers < 1:
        raise ValueError(f"customers must be at least 1, got {spec.customers:,}")
    if spec.drift < 0:
        raise ValueError(f"drift must be >= 0, got {spec.drift}")
    if not 1 <= spec.history_days <= 36_500:
        raise ValueError(f"history_days must be between 1 and 36,500, got {spec.history_days}")


def _campaign_summaries(as_of: datetime, stats: list[dict]) -> list[dict]:
    day0 = as_of.replace(hour=0, minute=0, second=0, microsecond=0)
    campaigns = []
    for campaign, s in zip(PAST_CAMPAIGNS, stats, strict=True):
        exposures, treated = s["exposures"], s["treated"]
        control = exposures - treated
        campaigns.append(
            {
                "campaign_id": campaign.campaign_id,
                "channel": campaign.channel,
                "exposed_day": (day0 - timedelta(days=campaign.days_before)).date().isoformat(),
                "days_before_as_of": campaign.days_before,
                "exposures": exposures,
                "treatment": treated,
                "control": control,
                "conversion_rate_treatment": (
                    s["converted_treatment"] / treated if treated else None
                ),
                "conversion_rate_control": s["converted_control"] / control if control else None,
                "mean_true_uplift": s["sum_true_uplift"] / exposures if exposures else None,
            }
        )
    return campaigns


def generate_world(
    spec: WorldSpec,
    raw_dir: Path,
    ground_truth_dir: Path,
    progress: Callable[[int], None] | None = None,
    attributes: AttributeDeclaration | None = None,
) -> WorldSummary:
    """Generate the world into ``raw_dir`` (the contract tables) and ``ground_truth_dir``.

    ``attributes``: the declared customer attributes to generate (default: the project's
    ``config/attributes.yaml``; ``orchestration.core.world.synthetic_attributes``).

    Same spec, same bytes. Files appear atomically when the whole world is written; a failure
    leaves the previous files in place. ``progress(n)`` is called after each chunk of ``n``
    customers.
    """
    _validate_spec(spec)
    if attributes is None:
        from orchestration.settings import ATTRIBUTES_FILE

        attributes = load_attributes(ATTRIBUTES_FILE)
    tables = contract_tables(attributes)
    started = time.perf_counter()
    as_of = _resolve_as_of(spec.as_of)
    as_of_s = _seconds(as_of)
    raw_dir = Path(raw_dir)
    ground_truth_dir = Path(ground_truth_dir)
    raw_dir.mkdir(parents=True, exist_ok=True)
    ground_truth_dir.mkdir(parents=True, exist_ok=True)

    stat_keys = ("exposures", "treated", "converted_treatment", "converted_control")
    stats = [{**dict.fromkeys(stat_keys, 0), "sum_true_uplift": 0.0} for _ in PAST_CAMPAIGNS]
    writers: dict[str, _AtomicParquet] = {}

    def write(part: _Chunk) -> None:
        for name, table in part.tables.items():
            writers[name].write(table)
        writers["_truth"].write(part.truth)

    # One writer thread: chunk i is written (Parquet encoding releases the GIL) while chunk
    # i + 1 is generated; at most two chunks are in memory.
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="world-writer")
    pending: Future | None = None
    try:
        for table in tables:
            writers[table.name] = _AtomicParquet(raw_dir / table.file_name, table.schema)
        writers["_truth"] = _AtomicParquet(
            ground_truth_dir / GROUND_TRUTH_FILE, ground_truth_schema(spec)
        )
        counters = _Counters()
        for chunk, first in enumerate(range(0, spec.customers, CHUNK_CUSTOMERS)):
            n = min(CHUNK_CUSTOMERS, spec.customers - first)
            part = _generate_chunk(spec, as_of_s, chunk, first + 1, n, counters, attributes)
            for total, add in zip(stats, part.campaign_stats, strict=True):
                for key, value in add.items():
                    total[key] += value
            if pending is not None:
                pending.result()
            pending = pool.submit(write, part)
            del part
            if progress is not None:
                progress(n)
        if pending is not None:
            pending.result()
    except BaseException:
        pool.shutdown(wait=True, cancel_futures=True)
        for writer in writers.values():
            writer.abort()
        raise
    pool.shutdown(wait=True)
    for writer in writers.values():
        writer.commit()

    rows = {t.name: writers[t.name].rows for t in tables}
    campaigns = _campaign_summaries(as_of, stats)
    world = {
        "generator_version": GENERATOR_VERSION,
        "spec": {**asdict(spec), "as_of": as_of.isoformat()},
        "as_of": as_of.isoformat(),
        "chunk_customers": CHUNK_CUSTOMERS,
        "attribution_window_days": ATTRIBUTION_WINDOW_DAYS,
        "campaign_sample_share": CAMPAIGN_SAMPLE_SHARE,
        "arms": list(spec.arms),
        "segments": [asdict(s) for s in SEGMENTS],
        "attributes": list(attributes.names),
        "campaigns": campaigns,
        "rows": rows,
        "ground_truth_rows": writers["_truth"].rows,
    }
    world_path = ground_truth_dir / WORLD_FILE
    tmp = world_path.with_name(world_path.name + ".tmp")
    tmp.write_text(json.dumps(world, indent=2) + "\n")
    os.replace(tmp, world_path)
    return WorldSummary(
        rows=rows, seconds=time.perf_counter() - started, as_of=as_of, campaigns=campaigns
    )


def ground_truth_path(ground_truth_dir: Path) -> Path:
    return Path(ground_truth_dir) / GROUND_TRUTH_FILE


__all__ = [
    "ATTRIBUTION_WINDOW_DAYS",
    "CHUNK_CUSTOMERS",
    "PAST_CAMPAIGNS",
    "SEGMENTS",
    "PastCampaign",
    "Segment",
    "WorldSpec",
    "WorldSummary",
    "generate_world",
    "ground_truth_path",
]
