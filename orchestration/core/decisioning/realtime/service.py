"""The decision service: holds the serving state, decides, records and answers."""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from orchestration.core.decisioning.campaigns import Campaign
from orchestration.core.decisioning.decide import (
    CHALLENGER,
)
from orchestration.core.decisioning.realtime.customer_decisions import (
    DecisionColumns,
    decide_customers,
)
from orchestration.core.decisioning.realtime.decision_store import (
    ApiDecisionStore,
    answer_json,
    request_digest,
    store_path,
)
from orchestration.core.decisioning.realtime.failed_requests import (
    FailedRequest,
    failures_path,
    record_failure,
)
from orchestration.core.decisioning.realtime.ledger_reader import LedgerReader
from orchestration.core.decisioning.realtime.online_scoring import score_frame
from orchestration.core.decisioning.realtime.reasons import (
    API_RUN_ID,
    CAMPAIGN_DISABLED,
    DECIDED_VIA,
    EVENT_TRIGGERED,
    NO_SEND,
    NOT_RELEASED,
    STALE_FEATURES,
    TRIGGER_NOT_MET,
    UNAVAILABLE,
    UNKNOWN_CUSTOMER,
    reason_text,
)
from orchestration.core.decisioning.realtime.serving_state import ServingState, StateLoader
from orchestration.core.decisioning.realtime.timestamps import utc
from orchestration.core.observability.tracing import DecisionTracer, TraceSettings
from orchestration.settings import Settings

log = logging.getLogger(__name__)

# How often the health report re-measures the online store's freshness (a sampled online read).
ONLINE_CHECK_SECONDS = 60.0


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
    decisions: DecisionColumns | None  # the batch schema, a row per (customer, evaluated campaign)
    safe: dict[int, str]  # customer_id -> safe-default reason, for customers not evaluated
    feature_timestamps: dict[int, pd.Timestamp]  # customer_id -> oldest feature time (or NaT)
    latency_ms: dict[str, float]
    features: pd.DataFrame | None = None  # what was read: customer_id and the feature columns
    feature_columns: list[str] = field(default_factory=list)
    _by_key: dict[tuple[int, str], dict[str, Any]] | None = None
    _features_by_id: dict[int, dict[str, Any]] | None = None

    def features_of(self, customer_id: int) -> dict[str, Any] | None:
        """The feature values read for this customer (None: nothing read), as the model saw
        them: numbers, None for a missing one."""
        if self.features is None or not self.feature_columns:
            return None
        if self._features_by_id is None:
            frame = self.features[self.feature_columns]
            ids = self.features["customer_id"].tolist()
            try:  # numbers: one block, one conversion
                values = frame.to_numpy(dtype=np.float64).tolist()
                rows = [dict(zip(self.feature_columns, v, strict=True)) for v in values]
            except (TypeError, ValueError):
                rows = _records(frame)
            self._features_by_id = dict(zip(ids, rows, strict=True))
        values = self._features_by_id.get(int(customer_id))
        if values is None:
            return None
        return {k: None if _missing(v) else v for k, v in values.items()}

    @property
    def rows(self) -> pd.DataFrame:
        """The decisions as a frame (the batch schema); a request reads :meth:`row` instead."""
        return self.decisions.frame() if self.decisions is not None else pd.DataFrame()

    def row(self, customer_id: int, campaign: str) -> dict[str, Any] | None:
        if self._by_key is None:
            records = self.decisions.records() if self.decisions is not None else []
            self._by_key = {(int(r["customer_id"]), r["campaign"]): r for r in records}
        return self._by_key.get((int(customer_id), campaign))


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """``frame.to_dict("records")`` (Python values: floats, Timestamps, NaT) a column at a time:
    a tenth of its cost for the few rows of a request."""
    names = list(frame.columns)
    columns = [frame[c].tolist() for c in names]
    return [dict(zip(names, values, strict=True)) for values in zip(*columns, strict=True)]


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
        age = (utc(decided_at) - stamp).total_seconds() / 3600 if not pd.isna(stamp) else math.inf
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
        self.tracer = DecisionTracer(
            TraceSettings(
                exporter=settings.trace_exporter,
                file=settings.traces_file,
                otlp_endpoint=settings.trace_otlp_endpoint,
            )
        )

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
        now = utc(self.clock())
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
        triggered: Collection[str] | None = None,
    ) -> Evaluated:
        """Decide these customers for every campaign whose release stands, without recording.

        ``decided_at`` defaults to the clock; ``contact_history`` / ``sent_today`` default to the
        ledger's rows of these customers (a replay passes what the batch saw). Campaigns with a
        ``trigger`` are left out, as in the batch, unless named in ``triggered`` (an event's
        campaigns, which then compete only with each other)."""
        state = state or self.state
        started = time.perf_counter()
        decided_at = utc(decided_at or self.clock()).to_pydatetime()
        ids = np.unique(np.asarray(list(customer_ids), dtype=np.int64))
        features = (
            state.features.read(ids.tolist()) if state.features is not None and len(ids) else None
        )
        t_features = time.perf_counter()
        window = self.settings.thresholds.online_freshness_hours
        safe = _safe_default_reasons(state, ids, features, decided_at, window)
        usable = np.array([int(c) not in safe for c in ids], dtype=bool)
        decisions = None
        t_score = t_features
        if usable.any() and features is not None:
            assert state.customers is not None and state.policy is not None
            scored = features if usable.all() else features[usable]
            scores = score_frame(scored, state.features.columns, state.scorers.values())
            t_score = time.perf_counter()
            decisions = self._decide(
                state, ids[usable], scores, decided_at, contact_history, sent_today, triggered
            )
        finished = time.perf_counter()
        stamps = (
            dict(zip(ids.tolist(), features["feature_timestamp"], strict=True))
            if features is not None
            else {}
        )
        return Evaluated(
            decided_at=decided_at,
            decisions=decisions,
            safe=safe,
            feature_timestamps=stamps,
            features=features,
            feature_columns=list(state.features.columns) if state.features is not None else [],
            latency_ms={
                "features": (t_features - started) * 1000,
                "score": (t_score - t_features) * 1000,
                "policy": (finished - t_score) * 1000,
            },
        )

    def _decide(
        self, state, ids, scores, decided_at, history, sent_today, triggered=None
    ) -> DecisionColumns:
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
            if c.enabled
            and not state.campaign_not_released(c.name)
            and (c.name in triggered if triggered is not None else not c.is_triggered)
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
            built = [self.build_answer(state, r, evaluated, error) for r in fresh]
            stored = self.store.put_many([row for _, row in built])
            for request, (answer, _) in zip(fresh, built, strict=True):
                kept = stored.get(request.request_id, answer)
                # another worker stored this request id first: its answer is the answer
                answers[request.request_id] = kept if kept == answer else {**kept, "replayed": True}
        return [answers[r.request_id] for r in requests]

    def record_failure(self, request: DecisionRequest, error: str) -> None:
        """Log a request that failed after ``decide`` (nothing of it was recorded), so the seed
        metrics count it; a failure to log is logged, not raised."""
        failure = FailedRequest(
            request_id=request.request_id,
            customer_id=int(request.customer_id),
            campaign=request.campaign,
            failed_at=utc(self.clock()).isoformat(),
            error=error[:300],
        )
        try:
            record_failure(failures_path(self.store.path), failure)
        except OSError:
            log.exception("could not log the failed request %s", request.request_id)

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

    def build_answer(
        self,
        state: ServingState,
        request: DecisionRequest,
        evaluated: Evaluated | None,
        error: str | None,
        event: str | None = None,
        not_fired: str | None = None,
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """The answer and the decisions-store row of one request. ``event``: decided on that
        customer event (a triggered campaign); ``not_fired``: why its trigger's condition did not
        hold (the answer is then ``no_send`` / ``trigger_condition_not_met``)."""
        campaign = state.campaigns.get(request.campaign)
        if campaign is None:  # its file went away between the check and the decision
            evaluated, error = None, f"campaign {request.campaign!r} is no longer defined"
            campaign = Campaign(name=request.campaign, channel="email", max_sends=1, enabled=False)
        decided_at = evaluated.decided_at if evaluated else utc(self.clock()).to_pydatetime()
        reason, detail, row = self._outcome(
            state, campaign, request.customer_id, evaluated, error, event, not_fired
        )
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
            "channel": str(row["channel"]) if row is not None else campaign.channel,
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
            **_variant_answer(row),
            "dry_run": bool(campaign.dry_run),
            "replayed": False,
            "latency_ms": {k: round(v, 3) for k, v in latency.items()},
            "trace_id": DecisionTracer.new_trace_id(),
        }
        self.tracer.record(
            answer["trace_id"],
            f"decision {campaign.name}",
            answer["latency_ms"],
            {
                "request_id": request.request_id,
                "decision": decision,
                "reason": reason,
                "campaign": campaign.name,
                "trigger_event": event,
            },
        )
        features = evaluated.features_of(request.customer_id) if evaluated is not None else None
        return answer, {
            **self._row(request, answer, row),
            "trigger_event": event,
            "trace_id": answer["trace_id"],
            "variant": answer["variant"],
            "template": answer["template"],
            "runner_up_value": answer["runner_up_value"],
            # the inputs of the decision, for `campaign explain` (stored, not answered)
            "features": None if features is None else answer_json(features),
        }

    @staticmethod
    def _propensity(state: ServingState, campaign: Campaign, scored_by: str | None) -> float:
        """1.0 for a deterministic choice; the canary's share for the traffic it splits."""
        share = state.canary_shares.get(campaign.name, 0.0)
        if share <= 0 or scored_by is None:
            return 1.0
        return float(share) if scored_by == CHALLENGER else float(1 - share)

    @staticmethod
    def _outcome(state, campaign, customer_id, evaluated, error, event=None, not_fired=None):
        """(reason, detail, engine row or None for a safe default)."""
        if error is not None:
            return UNAVAILABLE, error, None
        if state.problems and (state.features is None or state.policy is None):
            return UNAVAILABLE, "; ".join(state.problems), None
        if not campaign.enabled:
            return CAMPAIGN_DISABLED, "", None
        if campaign.is_triggered and event is None:
            return EVENT_TRIGGERED, f"send its event {campaign.trigger.event!r} to /v1/events", None
        problems = state.campaign_not_released(campaign.name)
        if state.scorer_for(campaign) is None:
            return UNAVAILABLE, f"no model loaded for campaign {campaign.name}", None
        if problems:
            return NOT_RELEASED, "; ".join(problems), None
        if not_fired is not None:
            return TRIGGER_NOT_MET, not_fired, None
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
            "answer": answer_json(answer),
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
        self.tracer.close()  # exports the spans still queued
        self.store.close()
        self.ledger.close()


def _variant_answer(row: Mapping | None) -> dict[str, Any]:
    """The chosen variant, its template and the runner-up's value (None without variants)."""

    def text(key: str) -> str | None:
        value = row.get(key) if row is not None else None
        return None if value is None or pd.isna(value) else str(value)

    return {
        "variant": text("variant"),
        "template": text("template"),
        "runner_up_value": _number(row.get("runner_up_value")) if row is not None else None,
    }


def _number(value: Any) -> float | None:
    if value is None or pd.isna(value):
        return None
    return float(value)


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _iso_or_none(value: Any) -> str | None:
    return None if value is None or pd.isna(value) else pd.Timestamp(value).isoformat()
