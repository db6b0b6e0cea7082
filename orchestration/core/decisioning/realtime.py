"""Real-time decisions: a customer (or a few hundred at once) decided at the moment of a request by
the batch's own policy engine (``engine.evaluate``), on the online features.

Plain Python (no dagster, no web framework): ``orchestration/api`` is the HTTP shell over it.

**The API decides; it never sends.** Sending from here would be a path around the release door
(``core/delivery/releases.py``): a message reaches the ledger only through a release of a run
whose blocking checks passed. A real-time decision is recorded in the decisions store (the batch
schema plus ``decided_via = "api"``) and answered; nothing is enqueued.

What one decision is built from, as of its decision time ``decided_at``:

* **candidates**: the raw customer row (region, time zone, sign-up time) with consent and
  suppression computed from the raw consent events and suppression list exactly as
  ``dim_customers`` computes them (per channel the latest consent event at or before the time,
  ties by the later event id; suppressions stamped at or before it, a null channel on every
  channel), and the gateway's reachability flags (``reachability_flags``: a verified contact
  point exists; addresses are never read). A customer not signed up by then is unknown;
* **scores**: the online features (Feast, in-process) scored by the model versions behind the
  campaigns' aliases (the champion; the challenger for a salted ``challenger_share`` of a
  campaign running a canary: ``decide.campaign_scores``, the batch's own split);
* **contact history and today's sends**: that customer's ledger rows over the policy's longest cap
  window, and each campaign's sends today;
* then ``engine.evaluate``: global control and holdout by the same salted hashes, consent,
  suppression, reachability, eligibility, caps, the daily limit, worth, arbitration across the
  live campaigns and quiet hours.

**Batch-level constraints.** ``max_sends`` (or the budget) is a top-k over the whole audience; a
per-customer decision cannot rank against customers it does not see. Here every campaign gets room
for all the customers decided together, so each customer's decision depends on that customer only,
and the campaign's cap is applied through the **released cut-off**: when the cap bound in the
campaign's last released run (some rows ``outside_send_cap``), its lowest accepted expected net
value; a customer the engine accepts below it is ``outside_send_cap`` and, as in the batch, falls
to their next campaign. When the campaign's sends in the ledger today already reach its cap, every
customer is ``outside_send_cap``. Arbitration between campaigns is per customer and exact;
``value_rank`` has no meaning for one customer and is left empty. One approximation: when the caps
of several campaigns bind, the batch fills them in rounds (a customer who falls to a campaign in a
later round competes only for the places the first round left), which one cut-off per campaign
does not reproduce exactly.

**Safe defaults.** Whenever the state is not one a release let through, or the data is not good
enough, the answer is decision ``no_send`` with a reason, never an error:

* ``not_released``: no standing (not revoked) release, or the model version that would score the
  customer, the policy version, the published feature version or the campaign's file is not the
  one of the latest standing release (or that release's decisions, its cut-offs, are missing);
* ``stale_features``: the customer's online features are missing or older than
  ``thresholds.online_freshness_hours`` (Feast returns stale online values as present);
* ``unknown_customer``: no raw customer row signed up by the decision time;
* ``campaign_disabled``: the campaign file says ``enabled: false``;
* ``unavailable``: a part of the state could not be loaded (no feature registry, no model...).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd

from orchestration.core.decisioning.campaigns import Campaign, load_campaigns
from orchestration.core.decisioning.decide import (
    CHALLENGER,
    CHAMPION,
    campaign_scores,
    model_ref,
    score_column,
    version_column,
)
from orchestration.core.decisioning.engine import (
    DECISIONS,
    EXCLUDED,
    REASON_TEXT,
    REASONS,
    CampaignScores,
    PolicyDecisions,
    PolicyInputs,
    R,
    evaluate,
    net_value,
)
from orchestration.core.decisioning.policy import VersionedPolicy, load_policy
from orchestration.core.world.contract import CHANNELS, raw_path
from orchestration.settings import Settings

NO_SEND = "no_send"
NOT_RELEASED = "not_released"
STALE_FEATURES = "stale_features"
UNKNOWN_CUSTOMER = "unknown_customer"
CAMPAIGN_DISABLED = "campaign_disabled"
UNAVAILABLE = "unavailable"
SAFE_REASON_TEXT = {
    NOT_RELEASED: (
        "the model, policy, feature or campaign version is not the one of the latest standing "
        "release: nothing unreleased decides"
    ),
    STALE_FEATURES: "the customer's online features are missing or older than the freshness window",
    UNKNOWN_CUSTOMER: "no customer with this id had signed up by the decision time",
    CAMPAIGN_DISABLED: "the campaign is disabled (enabled: false)",
    UNAVAILABLE: "the decision service could not load part of its state (see /v1/health)",
}
DECIDED_VIA = "api"
# How often the health report re-measures the online store's freshness (a sampled online read).
ONLINE_CHECK_SECONDS = 60.0
API_RUN_ID = "api"
_US = 1_000_000


def reason_text(reason: str) -> str:
    return SAFE_REASON_TEXT.get(reason) or REASON_TEXT.get(reason, "")


def _utc(moment: datetime | pd.Timestamp) -> pd.Timestamp:
    ts = pd.Timestamp(moment)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def _epoch_us(moment: datetime | pd.Timestamp) -> int:
    return int(_utc(moment).value // 1000)


def _column_us(series: pd.Series) -> np.ndarray:
    """Timestamps as int64 microseconds since the epoch (UTC); missing ones as the int64 minimum."""
    stamps = pd.to_datetime(series, utc=True).dt.tz_localize(None)
    return stamps.to_numpy(dtype="datetime64[us]").astype(np.int64)


def _stamp(path: Path) -> tuple[int, int, int] | None:
    try:
        status = os.stat(path)
    except OSError:
        return None
    return (status.st_mtime_ns, status.st_size, status.st_ino)


# --- candidates from raw data ------------------------------------------------------------------


def _channel_codes(channels: pd.Series, null_code: int) -> np.ndarray:
    """A channel as its position in CHANNELS; ``null_code`` for a null one, -2 for any other value
    (dim_customers compares channels exactly: ``channel = 'email'``)."""
    codes = np.full(len(channels), -2, dtype=np.int8)
    codes[channels.isna().to_numpy()] = null_code
    for i, name in enumerate(CHANNELS):
        codes[channels.eq(name).fillna(False).to_numpy(dtype=bool)] = i
    return codes


def _ranges(keys: np.ndarray, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row positions in the sorted ``keys`` equal to each of ``ids``, and the position in ``ids``
    each of them belongs to."""
    lo = np.searchsorted(keys, ids, side="left")
    lengths = np.searchsorted(keys, ids, side="right") - lo
    total = int(lengths.sum())
    if total == 0:
        empty = np.array([], dtype=np.int64)
        return empty, empty
    owner = np.repeat(np.arange(len(ids)), lengths)
    offsets = np.arange(total) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    return np.repeat(lo, lengths) + offsets, owner


@dataclass(frozen=True)
class CustomerRecords:
    """The raw customers, consent events, suppressions and reachability, as sorted arrays: one
    lookup per request, no scan. Timestamps are int64 microseconds (UTC)."""

    ids: np.ndarray
    signed_up_us: np.ndarray
    region: np.ndarray
    time_zone: np.ndarray
    reachable: dict[str, np.ndarray]
    consent_customer: np.ndarray  # sorted by (customer, channel, consented_at, event id)
    consent_channel: np.ndarray
    consent_us: np.ndarray
    consent_in: np.ndarray
    suppression_customer: np.ndarray  # sorted by customer
    suppression_channel: np.ndarray  # -1: every channel
    suppression_us: np.ndarray
    stamp: tuple

    @staticmethod
    def files(raw_dir: Path) -> list[Path]:
        names = ("customers", "consent_events", "suppressions", "contact_points")
        return [raw_path(raw_dir, name) for name in names]

    @classmethod
    def load(cls, raw_dir: Path) -> CustomerRecords:
        from orchestration.core.delivery.reachability import reachability_flags

        stamp = tuple(_stamp(p) for p in cls.files(raw_dir))
        customers = pd.read_parquet(
            raw_path(raw_dir, "customers"),
            columns=["customer_id", "signed_up_at", "region", "time_zone"],
        ).dropna(subset=["customer_id", "signed_up_at"])
        customers = customers.sort_values("customer_id", kind="stable")
        customers = customers.drop_duplicates("customer_id", keep="last")
        ids = customers["customer_id"].to_numpy(dtype=np.int64)
        reach = reachability_flags(raw_dir, customers["customer_id"])
        consent = pd.read_parquet(
            raw_path(raw_dir, "consent_events"),
            columns=["consent_event_id", "customer_id", "channel", "is_opted_in", "consented_at"],
        ).dropna(subset=["customer_id", "consented_at", "is_opted_in"])
        consent = consent.assign(code=_channel_codes(consent["channel"], -2))
        consent = consent.sort_values(
            ["customer_id", "code", "consented_at", "consent_event_id"], kind="stable"
        )
        suppressions = pd.read_parquet(
            raw_path(raw_dir, "suppressions"), columns=["customer_id", "channel", "suppressed_at"]
        ).dropna(subset=["customer_id", "suppressed_at"])
        suppressions = suppressions.assign(code=_channel_codes(suppressions["channel"], -1))
        suppressions = suppressions.sort_values("customer_id", kind="stable")
        return cls(
            ids=ids,
            signed_up_us=_column_us(customers["signed_up_at"]),
            region=customers["region"].to_numpy(dtype=object),
            time_zone=customers["time_zone"].to_numpy(dtype=object),
            reachable={c: reach[f"is_{c}_reachable"].to_numpy(dtype=bool) for c in CHANNELS},
            consent_customer=consent["customer_id"].to_numpy(dtype=np.int64),
            consent_channel=consent["code"].to_numpy(),
            consent_us=_column_us(consent["consented_at"]),
            consent_in=consent["is_opted_in"].to_numpy(dtype=bool),
            suppression_customer=suppressions["customer_id"].to_numpy(dtype=np.int64),
            suppression_channel=suppressions["code"].to_numpy(),
            suppression_us=_column_us(suppressions["suppressed_at"]),
            stamp=stamp,
        )

    def known(self, customer_ids: np.ndarray, decided_at: datetime) -> np.ndarray:
        """Per id: a raw customer signed up at or before the decision time."""
        ids = np.asarray(customer_ids, dtype=np.int64)
        pos = np.minimum(np.searchsorted(self.ids, ids), max(len(self.ids) - 1, 0))
        if len(self.ids) == 0:
            return np.zeros(len(ids), dtype=bool)
        return (self.ids[pos] == ids) & (self.signed_up_us[pos] <= _epoch_us(decided_at))

    def candidates(self, customer_ids: np.ndarray, decided_at: datetime) -> pd.DataFrame:
        """The engine's candidate rows (sorted, unique) for the known ones of ``customer_ids``."""
        ids = np.unique(np.asarray(customer_ids, dtype=np.int64))
        ids = ids[self.known(ids, decided_at)]
        pos = np.searchsorted(self.ids, ids)
        at = _epoch_us(decided_at)
        opted = self._latest_consent(ids, at)
        suppressed = self._suppressed(ids, at)
        columns: dict[str, Any] = {
            "customer_id": ids,
            "region": self.region[pos],
            "time_zone": self.time_zone[pos],
            "signed_up_at": pd.DatetimeIndex(
                self.signed_up_us[pos].astype("datetime64[us]"), tz="UTC"
            ),
        }
        for i, channel in enumerate(CHANNELS):
            columns[f"is_{channel}_opted_in"] = opted[i]
            columns[f"is_{channel}_suppressed"] = suppressed[i]
            columns[f"is_{channel}_reachable"] = self.reachable[channel][pos]
        return pd.DataFrame(columns)

    def _latest_consent(self, ids: np.ndarray, at: int) -> np.ndarray:
        """(channel, customer) opted in: the latest event at or before ``at`` says so."""
        out = np.zeros((len(CHANNELS), len(ids)), dtype=bool)
        rows, owner = _ranges(self.consent_customer, ids)
        known = self.consent_us[rows] <= at
        rows, owner = rows[known], owner[known]
        if len(rows) == 0:
            return out
        channel = self.consent_channel[rows]
        last = np.ones(len(rows), dtype=bool)  # the last known row of each (customer, channel)
        last[:-1] = (owner[1:] != owner[:-1]) | (channel[1:] != channel[:-1])
        keep = last & self.consent_in[rows] & (channel >= 0)
        out[channel[keep].astype(np.int64), owner[keep]] = True
        return out

    def _suppressed(self, ids: np.ndarray, at: int) -> np.ndarray:
        out = np.zeros((len(CHANNELS), len(ids)), dtype=bool)
        rows, owner = _ranges(self.suppression_customer, ids)
        known = self.suppression_us[rows] <= at
        channel, owner = self.suppression_channel[rows][known], owner[known]
        for i in range(len(CHANNELS)):
            out[i, owner[(channel == i) | (channel == -1)]] = True
        return out


# --- releases and their cut-offs ---------------------------------------------------------------


@dataclass(frozen=True)
class StandingRelease:
    """The latest release in the ledger that has not been revoked."""

    run_id: str
    released_at: str
    send_date: str
    model_versions: frozenset[str]
    policy_version: str
    feature_version: str
    campaign_files: dict[str, str]

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> StandingRelease:
        versions = str(row.get("model_versions") or "")
        return cls(
            run_id=str(row["run_id"]),
            released_at=str(row["released_at"]),
            send_date=str(row["send_date"]),
            model_versions=frozenset(v.strip() for v in versions.split(",") if v.strip()),
            policy_version=str(row["policy_version"]),
            feature_version=str(row["feature_version"]),
            campaign_files=json.loads(row.get("campaign_files") or "{}"),
        )


def standing_release(releases: pd.DataFrame) -> StandingRelease | None:
    """The newest release whose status is ``released`` (``SendLedger.releases()`` rows)."""
    if releases.empty:
        return None
    standing = releases[releases["status"] == "released"]
    if standing.empty:
        return None
    return StandingRelease.from_row(standing.sort_values("released_at").iloc[-1].to_dict())


def send_cutoffs(decisions: pd.DataFrame) -> dict[str, float | None]:
    """Per live campaign of a released run: the lowest expected net value it accepted (selected or
    holdout) when its send cap bound (some rows ``outside_send_cap``), +inf when the cap let
    nobody in, None when it did not bind."""
    out: dict[str, float | None] = {}
    if decisions.empty:
        return out
    live = decisions[~decisions["dry_run"].astype(bool)]
    for campaign, rows in live.groupby("campaign", sort=True):
        if not (rows["reason"] == "outside_send_cap").any():
            out[str(campaign)] = None
            continue
        accepted = rows.loc[rows["value_rank"].notna(), "expected_net_value"]
        out[str(campaign)] = float(accepted.min()) if len(accepted) else math.inf
    return out


def release_cutoffs(
    decisions_dir: Path, release: StandingRelease
) -> dict[str, float | None] | None:
    """The cut-offs of a release's run (its decisions file), or None when the file is missing."""
    from orchestration.core.decisioning.decision_store import run_file

    path = run_file(decisions_dir, release.send_date, release.run_id)
    if not path.exists():
        return None
    return send_cutoffs(pd.read_parquet(path))


# --- the ledger, read per customer ---------------------------------------------------------------


class LedgerReader:
    """Reads the send ledger for a few customers (never writes, never creates it)."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._con: sqlite3.Connection | None = None
        self._lock = threading.Lock()

    def _connection(self) -> sqlite3.Connection | None:
        if self._con is None:
            if not self.path.exists():
                return None
            self._con = sqlite3.connect(self.path, timeout=30, check_same_thread=False)
            self._con.execute("pragma busy_timeout=30000")
        return self._con

    def releases(self) -> pd.DataFrame:
        with self._lock:
            con = self._connection()
            if con is None:
                return pd.DataFrame(columns=["run_id", "status", "released_at"])
            return pd.read_sql_query("select * from releases order by released_at", con)

    def contacts(
        self, customer_ids: Sequence[int], decided_at: datetime, days: int
    ) -> pd.DataFrame:
        """Ledger rows (any status) of these customers over the last ``days`` days, today included
        (``inputs.recent_contacts`` for a few customers)."""
        from orchestration.core.decisioning.inputs import HISTORY_COLUMNS

        first = (_utc(decided_at).normalize() - pd.Timedelta(days=days - 1)).date().isoformat()
        ids = [int(c) for c in customer_ids]
        with self._lock:
            con = self._connection()
            if con is None or not ids:
                return pd.DataFrame(columns=HISTORY_COLUMNS)
            rows = con.execute(
                f"select {', '.join(HISTORY_COLUMNS)} from deliveries where send_date >= ?"
                f" and customer_id in ({','.join('?' * len(ids))})",
                [first, *ids],
            ).fetchall()
        if not rows:
            return pd.DataFrame(columns=HISTORY_COLUMNS)
        history = pd.DataFrame(rows, columns=HISTORY_COLUMNS)
        # days as datetimes already: the engine's to_datetime then skips guessing a format
        history["send_date"] = pd.to_datetime(history["send_date"], format="%Y-%m-%d")
        return history

    def sent_today(self, send_date: str) -> dict[str, int]:
        """Ledger rows per campaign on ``send_date``, whatever their status."""
        with self._lock:
            con = self._connection()
            if con is None:
                return {}
            rows = con.execute(
                "select campaign, count(*) from deliveries where send_date = ? group by campaign",
                (send_date,),
            ).fetchall()
        return {str(c): int(n) for c, n in rows}

    def close(self) -> None:
        with self._lock:
            if self._con is not None:
                self._con.close()
                self._con = None


# --- features and scores -------------------------------------------------------------------------


class FeatureReader(Protocol):
    columns: list[str]

    def read(self, customer_ids: Sequence[int]) -> pd.DataFrame:
        """customer_id, the feature columns and ``feature_timestamp`` (the oldest of the row's
        feature timestamps, NaT when any feature is missing), in the order asked."""
        ...


class FeastFeatureReader:
    """Online reads from the Feast store held in-process (one per service)."""

    def __init__(self, store: Any, service: str):
        self.store = store
        self._lock = threading.Lock()  # the requests' worker and the health check share it
        self.service = store.get_feature_service(service)
        self.columns = [
            f.name
            for projection in self.service.feature_view_projections
            for f in projection.features
        ]

    def read(self, customer_ids: Sequence[int]) -> pd.DataFrame:
        with self._lock:
            response = self.store.get_online_features(
                features=self.service, entity_rows=[{"customer_id": int(c)} for c in customer_ids]
            ).to_dict(include_event_timestamps=True)
        ids = np.asarray(customer_ids, dtype=np.int64)
        shape = (len(self.columns), len(ids))
        try:  # numbers (None: missing) straight into one float64 block, as feature_matrix reads them
            values = np.array([response[c] for c in self.columns], dtype=np.float64).reshape(shape)
            frame = pd.DataFrame(values.T, columns=self.columns)
        except (TypeError, ValueError):  # not all numbers: keep the values as they are
            frame = pd.DataFrame({c: response[c] for c in self.columns})
        seconds = np.array([response[f"{c}__ts"] for c in self.columns], dtype=float).reshape(shape)
        seconds[~(seconds > 0)] = np.nan  # 0 (or none): no value for this feature
        oldest = seconds.min(axis=0) if len(self.columns) else np.full(len(ids), np.nan)
        frame["customer_id"] = ids
        frame["feature_timestamp"] = pd.to_datetime(oldest, unit="s", utc=True)
        return frame


@dataclass(frozen=True)
class Scorer:
    """One model version behind an alias: ``predict`` maps the float64 feature matrix to uplift."""

    name: str
    alias: str
    version: str
    predict: Callable[[pd.DataFrame], np.ndarray]

    @property
    def ref(self) -> str:
        return model_ref(self.name, self.alias)


def pyfunc_predictor(model: Any) -> Callable[[pd.DataFrame], np.ndarray]:
    """The loaded pyfunc's learner, called on the float64 feature matrix. The pyfunc's own
    ``predict`` (``UpliftPyfuncModel``) is ``learner.predict_uplift(feature_matrix(x))`` behind
    MLflow's schema enforcement: ~5 ms of conversions per request for the same numbers (the
    parity test compares the scores with the batch's). Any other model: its ``predict``."""
    try:
        inner = model.unwrap_python_model()
        learner, columns = inner.learner, list(inner.feature_columns)
    except Exception:  # noqa: BLE001 - not our python model: use its own predict
        return lambda x: np.asarray(model.predict(x), dtype=float)

    def predict(x: pd.DataFrame) -> np.ndarray:
        x = x if list(x.columns) == columns else x[columns]
        return np.asarray(learner.predict_uplift(x), dtype=float)

    return predict


def _float_matrix(features: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """``training.feature_matrix`` (floats, booleans 0/1, missing NaN) without a conversion per
    column when the values are numbers already."""
    from orchestration.core.model.training import feature_matrix

    try:
        values = features[columns].to_numpy(dtype=np.float64, na_value=np.nan)
    except (TypeError, ValueError):
        return feature_matrix(features, columns)
    return pd.DataFrame(values, columns=columns, index=features.index)


def score_frame(
    features: pd.DataFrame, columns: list[str], scorers: Iterable[Scorer]
) -> pd.DataFrame:
    """The batch's customer_scores layout (``uplift__<ref>``, ``version__<ref>``) for these rows:
    rows without any feature value get NaN (``scoring.score_with_aliases``)."""
    out: dict[str, Any] = {"customer_id": features["customer_id"].to_numpy(dtype=np.int64)}
    matrix = _float_matrix(features, columns)
    has_features = ~np.isnan(matrix.to_numpy()).all(axis=1)
    if not has_features.all():
        matrix = matrix[has_features]
    for scorer in scorers:
        uplift = np.full(len(features), np.nan)
        if has_features.any():
            uplift[has_features] = scorer.predict(matrix)
        out[score_column(scorer.ref)] = uplift
        out[version_column(scorer.ref)] = np.full(len(features), scorer.version, dtype=object)
    return pd.DataFrame(out)


# --- the decision itself -------------------------------------------------------------------------


def decide_customers(
    candidates: pd.DataFrame,
    scores: pd.DataFrame,
    campaigns: Sequence[Campaign],
    policy: VersionedPolicy,
    contact_history: pd.DataFrame,
    sent_today: Mapping[str, int],
    decided_at: datetime,
    cutoffs: Mapping[str, float | None],
    canary_shares: Mapping[str, float] | None = None,
) -> pd.DataFrame:
    """Decisions in the batch schema (``decide.decide_campaigns``) for every (enabled campaign,
    candidate), each customer decided on their own (see the module doc: room for everyone, then
    the released cut-offs). Live campaigns compete; a dry-run campaign competes with them and only
    its own rows are kept. Campaigns without a score column are left out."""
    shares = canary_shares or {}
    ids = candidates["customer_id"].to_numpy(dtype=np.int64)
    if np.array_equal(ids, scores["customer_id"].to_numpy(dtype=np.int64)) and (
        len(ids) < 2 or (np.diff(ids) > 0).all()
    ):  # the same sorted customers (the service's case): no merge needed
        extra = scores.drop(columns="customer_id").set_axis(candidates.index)
        frame = pd.concat([candidates, extra], axis=1).reset_index(drop=True)
    else:
        frame = candidates.merge(scores, on="customer_id", how="left", validate="one_to_one")
        frame = frame.sort_values("customer_id", kind="stable").reset_index(drop=True)
    per: dict[str, CampaignScores] = {}
    for campaign in campaigns:
        if campaign.enabled:
            s = campaign_scores(frame, campaign, shares.get(campaign.name, 0.0))
            if s is not None:
                per[campaign.name] = s
    live = [c for c in campaigns if c.name in per and not c.dry_run]
    dry = [c for c in campaigns if c.name in per and c.dry_run]
    args = (frame, per, policy, contact_history, sent_today, decided_at, cutoffs)
    frames = []
    if live:
        frames.append(_decide_independently(*args, live, {c.name for c in live}, False))
    for campaign in dry:
        frames.append(_decide_independently(*args, [*live, campaign], {campaign.name}, True))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def _decide_independently(
    frame: pd.DataFrame,
    per: Mapping[str, CampaignScores],
    policy: VersionedPolicy,
    history: pd.DataFrame,
    sent_today: Mapping[str, int],
    decided_at: datetime,
    cutoffs: Mapping[str, float | None],
    selected: list[Campaign],
    keep: set[str],
    dry_run: bool,
) -> pd.DataFrame:
    n = len(frame)
    limit: dict[str, float] = {}
    for c in selected:
        cutoff = cutoffs.get(c.name)
        full = c.send_cap - sent_today.get(c.name, 0) <= 0
        limit[c.name] = math.inf if full else (-math.inf if cutoff is None else float(cutoff))
    # each campaign's remaining room is exactly n (the engine's remaining = cap - sent today):
    # nobody competes with another customer for a place
    room = {c.name: c.send_cap - n for c in selected}
    cut = {c.name: np.zeros(n, dtype=bool) for c in selected}
    for _ in range(len(selected) + 1):
        scores = {
            name: replace(s, uplift=np.where(cut[name], np.nan, s.uplift))
            for name, s in per.items()
        }
        result = evaluate(PolicyInputs(frame, scores, history, decided_at), selected, policy, room)
        moved = False
        for c in result.campaigns:
            with np.errstate(invalid="ignore"):
                below = ~np.isnan(c.rank) & (c.net_value < limit[c.campaign.name])
            if below.any():
                cut[c.campaign.name] |= below
                moved = True
        if not moved:
            break
    result.campaigns = [c for c in result.campaigns if c.campaign.name in keep]
    result.scores = {name: per[name] for name in keep}
    for c in result.campaigns:
        below = cut[c.campaign.name]
        c.decision[below] = EXCLUDED
        c.reason[below] = R["outside_send_cap"]
        c.net_value[below] = net_value(c.campaign, per[c.campaign.name].uplift)[below]
        c.deferred_until[below] = np.datetime64("NaT")
        c.rank[:] = np.nan
    return _frame(result, dry_run)


_DECISION_NAMES = np.array(DECISIONS, dtype=object)
_REASON_NAMES = np.array(REASONS, dtype=object)


def _frame(result: PolicyDecisions, dry_run: bool) -> pd.DataFrame:
    """``PolicyDecisions.to_frame`` (the batch schema, same columns and values) built in one
    frame: a request's few rows cost a tenth of a millisecond instead of one."""
    parts = []
    n = len(result.customer_ids)
    for c in result.campaigns:
        s = result.scores[c.campaign.name]
        parts.append(
            {
                "campaign": np.full(n, c.campaign.name, dtype=object),
                "channel": np.full(n, c.campaign.channel, dtype=object),
                "customer_id": result.customer_ids,
                "decision": _DECISION_NAMES[c.decision],
                "reason": _REASON_NAMES[c.reason],
                "predicted_uplift": s.uplift,
                "expected_net_value": c.net_value,
                "value_rank": c.rank,
                "model_version": s.model_version,
                "scored_by": s.scored_by,
                "deferred_until": c.deferred_until,
                "dry_run": np.full(n, dry_run or c.campaign.dry_run),
            }
        )
    if not parts:
        return pd.DataFrame()
    columns = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    total = len(columns["customer_id"])
    frame = pd.DataFrame(
        {
            "run_id": np.full(total, API_RUN_ID, dtype=object),
            **{k: columns[k] for k in ("campaign", "channel", "customer_id", "decision", "reason")},
            **{k: columns[k] for k in ("predicted_uplift", "expected_net_value", "value_rank")},
            "model_version": columns["model_version"],
            "scored_by": columns["scored_by"],
            "policy_version": np.full(total, result.policy_version, dtype=object),
            "feature_timestamp": pd.NaT,
            "decided_at": pd.Timestamp(result.decided_at),
            "deferred_until": pd.DatetimeIndex(columns["deferred_until"], tz="UTC"),
            "dry_run": columns["dry_run"],
        }
    )
    return frame


def canary_shares(
    settings: Settings, campaigns: Iterable[Campaign], challengers: Mapping[str, str]
):
    """Each campaign's challenger share: its configured one, or 0 while the canary of its model is
    tripped for the challenger version in service (read only: ``canary.effective_challenger_shares``
    without resetting the state file, which the batch owns)."""
    from orchestration.core.decisioning.canary import load_state

    shares: dict[str, float] = {}
    for campaign in campaigns:
        share = float(campaign.challenger_share)
        if share > 0 and campaign.model.alias == CHAMPION:
            state = load_state(settings, campaign.model.name)
            version = challengers.get(campaign.model.name)
            if version is None or (state.tripped and state.challenger_version == version):
                share = 0.0
        shares[campaign.name] = share
    return shares


# --- the state the service holds -----------------------------------------------------------------


@dataclass(frozen=True)
class ServingState:
    """Everything a decision reads besides the request and the ledger, loaded once and swapped
    whole when something it was loaded from changes."""

    loaded_at: datetime
    signature: dict[str, Any]
    campaigns: dict[str, Campaign] = field(default_factory=dict)
    campaign_hashes: dict[str, str] = field(default_factory=dict)
    policy: VersionedPolicy | None = None
    scorers: dict[str, Scorer] = field(default_factory=dict)
    features: FeatureReader | None = None
    feature_version: str | None = None
    release: StandingRelease | None = None
    cutoffs: dict[str, float | None] | None = None
    customers: CustomerRecords | None = None
    canary_shares: dict[str, float] = field(default_factory=dict)
    problems: tuple[str, ...] = ()
    online: dict[str, Any] = field(default_factory=dict)

    def not_released(self) -> list[str]:
        """Why the state as a whole is not the latest standing release's (empty: it is)."""
        release = self.release
        if release is None:
            return ["no standing release in the ledger (none yet, or every one revoked)"]
        out = []
        if self.policy is not None and self.policy.version != release.policy_version:
            out.append(f"policy {self.policy.version} is not the released {release.policy_version}")
        if self.feature_version != release.feature_version:
            out.append(
                f"feature version {self.feature_version} is not the released "
                f"{release.feature_version}"
            )
        if self.cutoffs is None:
            out.append(f"the decisions of release {release.run_id} are missing (no cut-offs)")
        return out

    def campaign_not_released(self, name: str) -> list[str]:
        release = self.release
        out = self.not_released()
        if release is not None and name in self.campaign_hashes:
            file_name, digest = next(iter(self.campaign_hashes[name].items()))
            if release.campaign_files.get(file_name) != digest:
                out.append(f"campaign file {file_name} is not the released one")
        return out

    def scorer_for(self, campaign: Campaign) -> Scorer | None:
        return self.scorers.get(model_ref(campaign.model.name, campaign.model.alias))


def wanted_refs(campaigns: Iterable[Campaign], default_model: str) -> list[tuple[str, str]]:
    from orchestration.core.decisioning.scoring import wanted_model_refs

    return wanted_model_refs([c for c in campaigns if c.enabled], default_model)


class StateLoader:
    """Loads a ``ServingState`` from the configured data directory: Feast, MLflow, the policy,
    the campaigns, the ledger's standing release, the raw customer data. ``signature`` is cheap
    (file stamps, alias versions, the releases table); ``load`` reuses what did not change."""

    def __init__(self, settings: Settings, ledger: LedgerReader):
        self.settings = settings
        self.ledger = ledger
        self._client = None
        self._store = None

    def _mlflow(self):
        if self._client is None:
            from orchestration.core.model.registry import configure

            self._client = configure(self.settings)
        return self._client

    def signature(self) -> dict[str, Any]:
        from orchestration.core.decisioning.campaigns import campaign_files
        from orchestration.core.decisioning.canary import state_path
        from orchestration.core.features.publishing import current_feature_version
        from orchestration.core.model.registry import alias_version

        s = self.settings
        files = [s.policy_file, *campaign_files(s.campaigns_dir), state_path(s)]
        files += CustomerRecords.files(s.raw_dir)
        current = current_feature_version(s.features_dir)
        releases = self.ledger.releases()
        loaded = load_campaigns(s.campaigns_dir).campaigns.values()
        aliases: dict[str, str | None] = {}
        try:
            client = self._mlflow()
            for name, alias in wanted_refs(loaded, s.model_name):
                aliases[model_ref(name, alias)] = alias_version(client, name, alias)
        except Exception as exc:  # noqa: BLE001 - reported by load as a problem
            aliases["error"] = str(exc)[:200]
        return {
            "files": {str(p): _stamp(p) for p in files},
            "features": current.version if current else None,
            "releases": releases[["run_id", "status"]].to_dict("records") if len(releases) else [],
            "aliases": aliases,
            "online_store": _stamp(s.feast_dir / "registry.db"),
        }

    def load(self, previous: ServingState | None, signature: dict[str, Any]) -> ServingState:
        s = self.settings
        problems: list[str] = []
        loaded = load_campaigns(s.campaigns_dir)
        problems += [f"campaign file: {error}" for error in loaded.errors.values()]
        from orchestration.core.delivery.releases import file_hashes

        hashes = {n: file_hashes([p]) for n, p in loaded.sources.items()}
        policy = None
        try:
            policy = load_policy(s.policy_file)
        except Exception as exc:  # noqa: BLE001 - a broken policy decides nothing
            problems.append(f"policy: {exc}")
        features = self._features(previous, signature, problems)
        scorers = self._scorers(previous, signature, loaded.campaigns.values(), problems)
        release = standing_release(self.ledger.releases())
        cutoffs = release_cutoffs(s.decisions_dir, release) if release else None
        customers = self._customers(previous, problems)
        challengers = {sc.name: sc.version for sc in scorers.values() if sc.alias == CHALLENGER}
        return ServingState(
            loaded_at=datetime.now(UTC),
            signature=signature,
            campaigns=dict(loaded.campaigns),
            campaign_hashes=hashes,
            policy=policy,
            scorers=scorers,
            features=features,
            feature_version=signature.get("features"),
            release=release,
            cutoffs=cutoffs,
            customers=customers,
            canary_shares=canary_shares(s, loaded.campaigns.values(), challengers),
            problems=tuple(problems),
        )

    def _features(self, previous, signature, problems) -> FeatureReader | None:
        from orchestration.core.features.feast_store import FEATURE_SERVICE, open_feature_store

        same = (
            previous is not None
            and previous.features is not None
            and (previous.signature.get("online_store") == signature.get("online_store"))
        )
        if same:
            return previous.features
        try:
            self._store = open_feature_store(self.settings)
            return FeastFeatureReader(self._store, FEATURE_SERVICE)
        except Exception as exc:  # noqa: BLE001 - no registry yet: every decision is unavailable
            problems.append(f"feature store: {str(exc).splitlines()[0][:300]}")
            return None

    def _scorers(self, previous, signature, campaigns, problems) -> dict[str, Scorer]:
        from orchestration.core.model.registry import load_alias

        out: dict[str, Scorer] = {}
        for name, alias in wanted_refs(campaigns, self.settings.model_name):
            ref = model_ref(name, alias)
            version = signature["aliases"].get(ref)
            if version is None:
                problems.append(f"model {ref}: no version behind the alias")
                continue
            old = previous.scorers.get(ref) if previous else None
            if old is not None and old.version == version:
                out[ref] = old
                continue
            try:
                settings = self.settings.model_copy(update={"model_name": name})
                model = load_alias(settings, alias)
            except Exception as exc:  # noqa: BLE001 - reported; its campaigns are unavailable
                problems.append(f"model {ref}: {str(exc).splitlines()[0][:300]}")
                continue
            out[ref] = Scorer(name, alias, str(version), pyfunc_predictor(model))
        return out

    def _customers(self, previous, problems) -> CustomerRecords | None:
        raw = self.settings.raw_dir
        stamp = tuple(_stamp(p) for p in CustomerRecords.files(raw))
        if (
            previous is not None
            and previous.customers is not None
            and previous.customers.stamp == stamp
        ):
            return previous.customers
        try:
            return CustomerRecords.load(raw)
        except Exception as exc:  # noqa: BLE001 - no raw data: every decision is unavailable
            problems.append(f"raw customer data: {str(exc).splitlines()[0][:300]}")
            return None


# --- the API decisions store ---------------------------------------------------------------------

STORE_SCHEMA = """
create table if not exists api_decisions (
    request_id text primary key,
    request_digest text not null,
    run_id text not null,
    campaign text not null,
    channel text,
    customer_id integer not null,
    decision text not null,
    reason text not null,
    predicted_uplift real,
    expected_net_value real,
    value_rank real,
    model_version text,
    scored_by text,
    policy_version text,
    feature_timestamp text,
    decided_at text not null,
    deferred_until text,
    dry_run integer not null,
    decided_via text not null,
    decided_on text not null,
    propensity real,
    feature_version text,
    release_run_id text,
    answer text not null
);
create index if not exists api_decisions_customer on api_decisions (customer_id, decided_on);
"""
STORE_COLUMNS = (
    "request_id",
    "request_digest",
    "run_id",
    "campaign",
    "channel",
    "customer_id",
    "decision",
    "reason",
    "predicted_uplift",
    "expected_net_value",
    "value_rank",
    "model_version",
    "scored_by",
    "policy_version",
    "feature_timestamp",
    "decided_at",
    "deferred_until",
    "dry_run",
    "decided_via",
    "decided_on",
    "propensity",
    "feature_version",
    "release_run_id",
    "answer",
)


def store_path(settings: Settings) -> Path:
    """Where the API's decisions are: beside the batch's Parquet runs, outside their glob."""
    return settings.decisions_dir / "api" / "decisions.db"


def request_digest(customer_id: int, campaign: str) -> str:
    return hashlib.sha256(f"{int(customer_id)}|{campaign}".encode()).hexdigest()


class ApiDecisionStore:
    """One row per request id: the decision in the batch schema plus ``decided_via = "api"``, and
    the exact answer given, so a repeated request id gets the same answer and no second row. The
    request's free-form ``context`` is not stored (it may hold personal data)."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._con = sqlite3.connect(self.path, timeout=30, check_same_thread=False)
        self._con.execute("pragma journal_mode=wal")
        self._con.execute("pragma synchronous=normal")
        self._con.executescript(STORE_SCHEMA)
        self._lock = threading.Lock()

    def get(self, request_id: str) -> tuple[str, dict[str, Any]] | None:
        with self._lock:
            row = self._con.execute(
                "select request_digest, answer from api_decisions where request_id = ?",
                (request_id,),
            ).fetchone()
        return (row[0], json.loads(row[1])) if row else None

    def put_many(self, rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
        """Insert the rows whose request id is new; return the stored answer of every one."""
        if not rows:
            return {}
        placeholders = ", ".join("?" * len(STORE_COLUMNS))
        with self._lock:
            self._con.execute("begin immediate")
            try:
                self._con.executemany(
                    f"insert or ignore into api_decisions ({', '.join(STORE_COLUMNS)})"
                    f" values ({placeholders})",
                    [tuple(row[c] for c in STORE_COLUMNS) for row in rows],
                )
                self._con.execute("commit")
            except BaseException:
                self._con.execute("rollback")
                raise
            ids = [row["request_id"] for row in rows]
            stored = self._con.execute(
                f"select request_id, answer from api_decisions"
                f" where request_id in ({','.join('?' * len(ids))})",
                ids,
            ).fetchall()
        return {rid: json.loads(answer) for rid, answer in stored}

    def frame(
        self, customer_id: int | None = None, campaign: str | None = None, day: str | None = None
    ) -> pd.DataFrame:
        """Stored decisions in the batch schema (plus the API's columns), oldest first."""
        where, params = ["1 = 1"], []
        for column, value in (
            ("customer_id", customer_id),
            ("campaign", campaign),
            ("decided_on", day),
        ):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        with self._lock:
            frame = pd.read_sql_query(
                f"select * from api_decisions where {' and '.join(where)} order by decided_at",
                self._con,
                params=params,
            )
        for column in ("decided_at", "feature_timestamp", "deferred_until"):
            frame[column] = pd.to_datetime(frame[column], utc=True, format="ISO8601")
        frame["dry_run"] = frame["dry_run"].astype(bool)
        return frame

    def close(self) -> None:
        with self._lock:
            self._con.close()


def api_decisions(
    decisions_dir: Path, customer_id: int, campaign: str | None, day: str
) -> pd.DataFrame:
    """``decision_store.explain`` for the API's decisions (empty when the API decided nothing)."""
    path = Path(decisions_dir) / "api" / "decisions.db"
    if not path.exists():
        return pd.DataFrame()
    store = ApiDecisionStore(path)
    try:
        return store.frame(customer_id, campaign, day)
    finally:
        store.close()


# --- the service ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class DecisionRequest:
    request_id: str
    customer_id: int
    campaign: str
    received: float = field(default_factory=time.perf_counter)


class UnknownCampaign(LookupError):
    """The request names a campaign no campaign file defines (a client error)."""


class RequestIdReused(ValueError):
    """The request id was used before for another customer or campaign (a client error)."""


@dataclass
class Evaluated:
    """Decisions for a set of customers: engine rows, the safe-default reason of the others, the
    features read and the time spent per stage (ms)."""

    decided_at: datetime
    rows: pd.DataFrame  # the batch schema, one row per (customer, evaluated campaign)
    safe: dict[int, str]  # customer_id -> safe-default reason, for customers not evaluated
    feature_timestamps: dict[int, pd.Timestamp]  # customer_id -> oldest feature time (or NaT)
    latency_ms: dict[str, float]
    _by_key: dict[tuple[int, str], dict[str, Any]] | None = None

    def row(self, customer_id: int, campaign: str) -> dict[str, Any] | None:
        if self._by_key is None:
            records = self.rows.to_dict("records") if len(self.rows) else []
            self._by_key = {(int(r["customer_id"]), r["campaign"]): r for r in records}
        return self._by_key.get((int(customer_id), campaign))


def _safe_default_reasons(
    state: ServingState,
    ids: np.ndarray,
    features: pd.DataFrame | None,
    decided_at: datetime,
    window_hours: float,
) -> dict[int, str]:
    safe: dict[int, str] = {}
    if state.customers is None or state.features is None or state.policy is None:
        return {int(c): UNAVAILABLE for c in ids}
    known = state.customers.known(ids, decided_at)
    stamps = features["feature_timestamp"] if features is not None else None
    for i, customer in enumerate(ids):
        if not known[i]:
            safe[int(customer)] = UNKNOWN_CUSTOMER
            continue
        stamp = stamps.iloc[i] if stamps is not None else pd.NaT
        age = (_utc(decided_at) - stamp).total_seconds() / 3600 if not pd.isna(stamp) else math.inf
        if age > window_hours:
            safe[int(customer)] = STALE_FEATURES
    return safe


class DecisionService:
    """Holds the serving state, decides, records and answers (the HTTP layer only translates)."""

    def __init__(
        self,
        settings: Settings,
        *,
        loader: StateLoader | None = None,
        ledger: LedgerReader | None = None,
        store: ApiDecisionStore | None = None,
        clock: Callable[[], datetime] | None = None,
        refresh_seconds: float = 10.0,
    ):
        self.settings = settings
        self.ledger = ledger or LedgerReader(settings.gateway_dir / "ledger.db")
        self.loader = loader or StateLoader(settings, self.ledger)
        self.store = store or ApiDecisionStore(store_path(settings))
        self.clock = clock or settings.now
        self.refresh_seconds = refresh_seconds
        self._state: ServingState | None = None
        self._checked = 0.0
        self._online_checked = 0.0
        self._lock = threading.Lock()

    @property
    def state(self) -> ServingState:
        if self._state is None:
            self.refresh(force=True)
        assert self._state is not None
        return self._state

    def refresh(self, force: bool = False) -> bool:
        """Reload what changed (checked at most every ``refresh_seconds``); True if reloaded."""
        with self._lock:
            now = time.monotonic()
            if not force and self._state is not None and now - self._checked < self.refresh_seconds:
                return False
            self._checked = now
            signature = self.loader.signature()
            if not force and self._state is not None and signature == self._state.signature:
                if now - self._online_checked >= ONLINE_CHECK_SECONDS:
                    self._online_checked = now
                    self._state = replace(self._state, online=self._online_freshness(self._state))
                return False
            state = self.loader.load(self._state, signature)
            self._online_checked = now
            self._state = replace(state, online=self._online_freshness(state))
            return True

    def _online_freshness(self, state: ServingState, sample: int = 100) -> dict[str, Any]:
        """The online store's freshness on a sample of customers, as of the service's clock."""
        if state.features is None or state.customers is None or len(state.customers.ids) == 0:
            return {"sampled": 0}
        ids = state.customers.ids
        if len(ids) > sample:
            ids = np.sort(np.random.default_rng(0).choice(ids, sample, replace=False))
        try:
            stamps = state.features.read(ids.tolist())["feature_timestamp"]
        except Exception as exc:  # noqa: BLE001 - reported, not raised
            return {"sampled": 0, "error": str(exc)[:200]}
        now = _utc(self.clock())
        age = (now - stamps).dt.total_seconds() / 3600
        window = self.settings.thresholds.online_freshness_hours
        stale = stamps.isna() | (age > window)
        return {
            "sampled": len(ids),
            "stale": int(stale.sum()),
            "missing": int(stamps.isna().sum()),
            "stale_share": float(stale.mean()),
            "oldest_age_hours": None if age.isna().all() else round(float(age.max()), 3),
            "newest_feature_timestamp": None if stamps.isna().all() else stamps.max().isoformat(),
            "window_hours": window,
            "measured_at": now.isoformat(),
        }

    # --- deciding ---------------------------------------------------------------------------

    def evaluate(
        self,
        customer_ids: Sequence[int],
        decided_at: datetime | None = None,
        contact_history: pd.DataFrame | None = None,
        sent_today: Mapping[str, int] | None = None,
        state: ServingState | None = None,
    ) -> Evaluated:
        """Decide these customers for every campaign whose release stands, without recording.

        ``decided_at`` defaults to the clock; ``contact_history`` / ``sent_today`` default to the
        ledger's rows of these customers (a replay passes what the batch saw)."""
        state = state or self.state
        started = time.perf_counter()
        decided_at = _utc(decided_at or self.clock()).to_pydatetime()
        ids = np.unique(np.asarray(list(customer_ids), dtype=np.int64))
        features = (
            state.features.read(ids.tolist()) if state.features is not None and len(ids) else None
        )
        t_features = time.perf_counter()
        window = self.settings.thresholds.online_freshness_hours
        safe = _safe_default_reasons(state, ids, features, decided_at, window)
        usable = np.array([int(c) not in safe for c in ids], dtype=bool)
        rows = pd.DataFrame()
        t_score = t_features
        if usable.any() and features is not None:
            assert state.customers is not None and state.policy is not None
            scored = features if usable.all() else features[usable]
            scores = score_frame(scored, state.features.columns, state.scorers.values())
            t_score = time.perf_counter()
            rows = self._decide(state, ids[usable], scores, decided_at, contact_history, sent_today)
        finished = time.perf_counter()
        stamps = (
            dict(zip(ids.tolist(), features["feature_timestamp"], strict=True))
            if features is not None
            else {}
        )
        return Evaluated(
            decided_at=decided_at,
            rows=rows,
            safe=safe,
            feature_timestamps=stamps,
            latency_ms={
                "features": (t_features - started) * 1000,
                "score": (t_score - t_features) * 1000,
                "policy": (finished - t_score) * 1000,
            },
        )

    def _decide(self, state, ids, scores, decided_at, history, sent_today) -> pd.DataFrame:
        policy = state.policy
        assert policy is not None and state.customers is not None
        if history is None:
            days = policy.policy.longest_cap_window_days
            history = self.ledger.contacts(ids.tolist(), decided_at, days)
        if sent_today is None:
            sent_today = self.ledger.sent_today(decided_at.date().isoformat())
        released = [
            c
            for c in sorted(state.campaigns.values(), key=lambda c: c.name)
            if c.enabled and not state.campaign_not_released(c.name)
        ]
        candidates = state.customers.candidates(ids, decided_at)
        return decide_customers(
            candidates,
            scores,
            released,
            policy,
            history,
            sent_today,
            decided_at,
            state.cutoffs or {},
            state.canary_shares,
        )

    def decide(self, requests: Sequence[DecisionRequest]) -> list[dict[str, Any]]:
        """Answer and record each request (idempotent by request id); never raises for the data:
        a failure answers ``no_send`` / ``unavailable``. Raises UnknownCampaign / RequestIdReused
        only through ``check``, before a request is queued."""
        fresh: list[DecisionRequest] = []
        answers: dict[str, dict[str, Any]] = {}
        for request in requests:
            stored = self.store.get(request.request_id)
            if stored is not None:
                answers[request.request_id] = {**stored[1], "replayed": True}
            elif request.request_id not in {r.request_id for r in fresh}:
                fresh.append(request)
        if fresh:
            state = self.state  # one state for the whole batch, whatever a reload does meanwhile
            try:
                ids = [r.customer_id for r in fresh]
                evaluated: Evaluated | None = self.evaluate(ids, state=state)
                error = None
            except Exception as exc:  # noqa: BLE001 - never an error page: a safe default
                evaluated, error = None, f"{type(exc).__name__}: {exc}"[:300]
            built = [self._answer(state, r, evaluated, error) for r in fresh]
            stored = self.store.put_many([row for _, row in built])
            for request, (answer, _) in zip(fresh, built, strict=True):
                kept = stored.get(request.request_id, answer)
                # another worker stored this request id first: its answer is the answer
                answers[request.request_id] = kept if kept == answer else {**kept, "replayed": True}
        return [answers[r.request_id] for r in requests]

    def check(self, request: DecisionRequest) -> dict[str, Any] | None:
        """Client errors before any work: an unknown campaign, a request id reused for another
        customer or campaign. Returns the stored answer when the request was answered before."""
        stored = self.store.get(request.request_id)
        if stored is not None:
            if stored[0] != request_digest(request.customer_id, request.campaign):
                raise RequestIdReused(
                    f"request_id {request.request_id!r} was already used for another customer or"
                    " campaign; use a new request_id for a new decision"
                )
            return {**stored[1], "replayed": True}
        if request.campaign not in self.state.campaigns:
            known = ", ".join(sorted(self.state.campaigns)) or "none"
            raise UnknownCampaign(
                f"unknown campaign {request.campaign!r}: no campaign file defines it (known: {known})"
            )
        return None

    def _answer(
        self,
        state: ServingState,
        request: DecisionRequest,
        evaluated: Evaluated | None,
        error: str | None,
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        campaign = state.campaigns.get(request.campaign)
        if campaign is None:  # its file went away between the check and the decision
            evaluated, error = None, f"campaign {request.campaign!r} is no longer defined"
            campaign = Campaign(name=request.campaign, channel="email", max_sends=1, enabled=False)
        decided_at = evaluated.decided_at if evaluated else _utc(self.clock()).to_pydatetime()
        reason, detail, row = self._outcome(state, campaign, request.customer_id, evaluated, error)
        decision = row["decision"] if row is not None else NO_SEND
        scorer = state.scorer_for(campaign)
        stamp = None
        if evaluated is not None:
            stamp = _iso_or_none(evaluated.feature_timestamps.get(int(request.customer_id)))
        model_version = (
            row["model_version"] if row is not None else (scorer.version if scorer else None)
        )
        scored_by = row["scored_by"] if row is not None else None
        latency = (
            dict(evaluated.latency_ms)
            if evaluated
            else {"features": 0.0, "score": 0.0, "policy": 0.0}
        )
        latency["total"] = (time.perf_counter() - request.received) * 1000
        answer = {
            "request_id": request.request_id,
            "customer_id": int(request.customer_id),
            "campaign": campaign.name,
            "channel": campaign.channel,
            "decision": decision,
            "reason": reason,
            "reason_text": reason_text(reason),
            "detail": detail,
            "score": _number(row["predicted_uplift"]) if row is not None else None,
            "expected_net_value": _number(row["expected_net_value"]) if row is not None else None,
            "propensity": self._propensity(state, campaign, scored_by),
            "scored_by": scored_by,
            "model_version": None if model_version is None else str(model_version),
            "policy_version": state.policy.version if state.policy else None,
            "feature_version": state.feature_version,
            "feature_timestamp": stamp,
            "release": state.release.run_id if state.release else None,
            "decided_at": pd.Timestamp(decided_at).isoformat(),
            "deferred_until": _iso_or_none(row["deferred_until"]) if row is not None else None,
            "dry_run": bool(campaign.dry_run),
            "replayed": False,
            "latency_ms": {k: round(v, 3) for k, v in latency.items()},
        }
        return answer, self._row(request, answer, row)

    @staticmethod
    def _propensity(state: ServingState, campaign: Campaign, scored_by: str | None) -> float:
        """1.0 for a deterministic choice; the canary's share for the traffic it splits."""
        share = state.canary_shares.get(campaign.name, 0.0)
        if share <= 0 or scored_by is None:
            return 1.0
        return float(share) if scored_by == CHALLENGER else float(1 - share)

    @staticmethod
    def _outcome(state, campaign, customer_id, evaluated, error):
        """(reason, detail, engine row or None for a safe default)."""
        if error is not None:
            return UNAVAILABLE, error, None
        if state.problems and (state.features is None or state.policy is None):
            return UNAVAILABLE, "; ".join(state.problems), None
        if not campaign.enabled:
            return CAMPAIGN_DISABLED, "", None
        problems = state.campaign_not_released(campaign.name)
        if state.scorer_for(campaign) is None:
            return UNAVAILABLE, f"no model loaded for campaign {campaign.name}", None
        if problems:
            return NOT_RELEASED, "; ".join(problems), None
        assert evaluated is not None
        if customer_id in evaluated.safe:
            return evaluated.safe[customer_id], "", None
        row = evaluated.row(customer_id, campaign.name)
        if row is None:
            return UNAVAILABLE, f"campaign {campaign.name} was not evaluated", None
        release = state.release
        if release is not None and str(row["model_version"]) not in release.model_versions:
            detail = (
                f"model version {row['model_version']} ({row['scored_by']}) is not in release "
                f"{release.run_id} (versions {', '.join(sorted(release.model_versions)) or 'none'})"
            )
            return NOT_RELEASED, detail, None
        return str(row["reason"]), "", row

    @staticmethod
    def _row(
        request: DecisionRequest, answer: dict[str, Any], row: Mapping | None
    ) -> dict[str, Any]:
        return {
            "request_id": request.request_id,
            "request_digest": request_digest(request.customer_id, request.campaign),
            "run_id": API_RUN_ID,
            "campaign": answer["campaign"],
            "channel": answer["channel"],
            "customer_id": answer["customer_id"],
            "decision": answer["decision"],
            "reason": answer["reason"],
            "predicted_uplift": answer["score"],
            "expected_net_value": answer["expected_net_value"],
            "value_rank": None,
            "model_version": answer["model_version"],
            "scored_by": answer["scored_by"],
            "policy_version": answer["policy_version"],
            "feature_timestamp": answer["feature_timestamp"],
            "decided_at": answer["decided_at"],
            "deferred_until": answer["deferred_until"],
            "dry_run": int(answer["dry_run"]),
            "decided_via": DECIDED_VIA,
            "decided_on": answer["decided_at"][:10],
            "propensity": answer["propensity"],
            "feature_version": answer["feature_version"],
            "release_run_id": answer["release"],
            "answer": json.dumps(answer, sort_keys=True),
        }

    def health(self) -> dict[str, Any]:
        state = self.state
        not_released = state.not_released()
        ok = not state.problems and not not_released
        return {
            "status": "ok" if ok else "degraded",
            "released": not not_released,
            "not_released_because": not_released,
            "problems": list(state.problems),
            "loaded_at": state.loaded_at.isoformat(),
            "models": {ref: s.version for ref, s in sorted(state.scorers.items())},
            "policy_version": state.policy.version if state.policy else None,
            "feature_version": state.feature_version,
            "release": None
            if state.release is None
            else {
                "run_id": state.release.run_id,
                "released_at": state.release.released_at,
                "model_versions": sorted(state.release.model_versions),
                "policy_version": state.release.policy_version,
                "feature_version": state.release.feature_version,
                "cutoffs": state.cutoffs,
            },
            "campaigns": {
                name: {
                    "enabled": c.enabled,
                    "dry_run": c.dry_run,
                    "released": not state.campaign_not_released(name),
                    "canary_share": state.canary_shares.get(name, 0.0),
                }
                for name, c in sorted(state.campaigns.items())
            },
            "online_store": state.online,
            "decisions_store": str(self.store.path),
        }

    def close(self) -> None:
        self.store.close()
        self.ledger.close()


def _number(value: Any) -> float | None:
    if value is None or pd.isna(value):
        return None
    return float(value)


def _iso_or_none(value: Any) -> str | None:
    return None if value is None or pd.isna(value) else pd.Timestamp(value).isoformat()


__all__ = [
    "DECISIONS",
    "ApiDecisionStore",
    "CustomerRecords",
    "DecisionRequest",
    "DecisionService",
    "ServingState",
    "StandingRelease",
    "decide_customers",
    "send_cutoffs",
]
