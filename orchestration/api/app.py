"""The real-time decision API (FastAPI): ``create_app(settings)``.

**Decisions never send.** A send from ``/v1/decisions`` would be a path around the release door: a
message reaches the send ledger only through the release of a run whose blocking checks passed
(``core/delivery/releases.py``, ``SendLedger.claim_due``). Each answer is recorded in the
decisions store (``<decisions>/api/decisions.db``, the batch schema plus ``decided_via = "api"``)
and nothing is enqueued. Only a triggered campaign's event enqueues, and only under the standing
release (below).

The service holds in-process, loaded once at start-up: the Feast store (online reads), the model
versions behind the campaigns' aliases (the champion; the challenger of a canary), the policy, the
campaigns, the ledger's standing release and the raw customer data. A background thread checks
every ``refresh_seconds`` whether any of them moved (alias versions, file stamps, the releases
table) and swaps in a reloaded state; requests never wait for it.

Endpoints:

* ``POST /v1/decisions`` (scope ``decide``): ``{request_id, customer_id, campaign, context?}`` ->
  the decision, its reason, the score (predicted uplift), propensity, model / policy / feature
  versions, the feature timestamp, the release and the latency per stage. Idempotent by
  ``request_id``: the same id gets the stored answer (``replayed: true``) and no second row; the
  same id for another customer or campaign is 409. An unknown campaign is 404. Anything the
  service cannot vouch for is decision ``no_send`` with a reason (``realtime`` module doc), never
  an error page.
* ``POST /v1/events`` (scope ``events``): ``{event_id, customer_id, event, occurred_at?,
  properties?}`` -> the real-time session features after the event and, per campaign whose
  ``trigger.event`` it is, the decision, its reason and whether a message was enqueued
  (``core/decisioning/realtime/triggers.py``). The one path here that can lead to a send: a
  ``send`` is enqueued in the gateway's ledger only under the standing release it was decided
  under, and the gateway's dispatch delivers it. Idempotent by ``event_id`` (a replay gets the
  first answer and enqueues nothing); a bad field is 422 naming it; an ``event_id`` reused for
  another event is 409. ``properties`` are accepted and not stored.
* ``GET /v1/health`` (no token): loaded versions, whether they are released, the online store's
  freshness on a sample of customers.
* ``POST /v1/admin/refresh`` (scope ``admin``): reload now.

Bearer tokens (``tokens.py``): missing or wrong is 401, without the scope 403; each token has a
token bucket (``rate_per_second``, ``burst``): over it is 429 with ``Retry-After``.
"""

# no `from __future__ import annotations`: FastAPI reads the endpoints' annotations, and
# the dependency aliases are local to create_app

import asyncio
import gc
import logging
import math
import threading
from collections.abc import Iterator
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import orjson
from fastapi import Depends, FastAPI, Header, HTTPException, Request
from fastapi.responses import JSONResponse as StarletteJSON
from pydantic import BaseModel, ConfigDict, Field

from orchestration.api.batching import MicroBatcher
from orchestration.api.tokens import TokenRecord, TokenStore, tokens_path
from orchestration.core.decisioning.campaigns import EVENT_NAME_PATTERN
from orchestration.core.decisioning.realtime import (
    NO_SEND,
    UNAVAILABLE,
    DecisionRequest,
    DecisionService,
    RequestIdReused,
    UnknownCampaign,
    reason_text,
)
from orchestration.core.decisioning.realtime.triggers import (
    CustomerEvent,
    EventIdReused,
    EventRejected,
    TriggeredCampaigns,
)
from orchestration.core.delivery.rate_limit import TokenBucket
from orchestration.settings import Settings

log = logging.getLogger(__name__)


class JSONResponse(StarletteJSON):
    """JSON rendered by orjson (a decision's answer in ~20 µs instead of ~200); numpy numbers as
    numbers."""

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY)


class DecisionBody(BaseModel):
    request_id: str = Field(..., min_length=1, max_length=200)
    customer_id: int
    campaign: str = Field(..., min_length=1, max_length=100)
    # accepted for the caller's own tracing; it does not change the decision and is not stored
    context: dict[str, Any] | None = None


class EventBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    event_id: str = Field(..., min_length=1, max_length=200)
    customer_id: int = Field(..., gt=0)
    event: str = Field(..., pattern=EVENT_NAME_PATTERN.pattern)
    occurred_at: datetime | None = None  # without an offset: UTC
    # accepted for the caller's own use; it does not change the decision and is not stored
    properties: dict[str, Any] | None = None


def default_triggers(settings: Settings, service: DecisionService) -> TriggeredCampaigns:
    """The events path on the configured data directory: the event store, Feast, the ledger."""
    from orchestration.core.decisioning.realtime.event_store import EventStore, events_path
    from orchestration.core.decisioning.realtime.session_features import FeastSessionFeatures
    from orchestration.core.delivery.dispatch import kill_switch_on
    from orchestration.core.delivery.ledger import SendLedger

    return TriggeredCampaigns(
        service,
        EventStore(events_path(settings)),
        FeastSessionFeatures(settings),
        open_ledger=lambda: SendLedger(settings.gateway_dir / "ledger.db"),
        kill_switch=lambda: kill_switch_on(settings.gateway_dir),
    )


class RequestBucket(TokenBucket):
    """The gateway's token bucket, taken without waiting: 0.0 when a token was taken, else the
    seconds until one is available."""

    def try_take(self) -> float:
        with self._lock:
            self._refill()
            if self._tokens >= 1:
                self._tokens -= 1
                return 0.0
            return (1 - self._tokens) / self.rate


class RateLimits:
    def __init__(self, rate_per_second: float, burst: float | None):
        self.rate = rate_per_second
        self.burst = burst if burst is not None else max(1.0, 2 * rate_per_second)
        self._buckets: dict[str, RequestBucket] = {}
        self._lock = threading.Lock()

    def wait_for(self, token_id: str) -> float:
        with self._lock:
            bucket = self._buckets.get(token_id)
            if bucket is None:
                bucket = self._buckets[token_id] = RequestBucket(self.rate, self.burst)
        return bucket.try_take()


def _refresher(service: DecisionService, stop: threading.Event) -> None:
    while not stop.wait(service.refresh_seconds):
        try:
            service.refresh()
        except Exception:  # noqa: BLE001 - the old state keeps serving; the next check retries
            log.exception("reloading the decision service's state failed")


def scoped_dependency(tokens: TokenStore, limits: RateLimits):
    """``scoped(scope)``: the dependency that authenticates the bearer token (401), checks
    the scope (403) and takes a token from its bucket (429)."""

    async def caller(authorization: Annotated[str | None, Header()] = None) -> TokenRecord:
        scheme, _, token = (authorization or "").partition(" ")
        record = tokens.authenticate(token.strip()) if scheme.lower() == "bearer" else None
        if record is None:
            raise HTTPException(
                401,
                "missing or invalid bearer token (Authorization: Bearer <token>; create one with"
                " `campaign token create --scope decide`)",
                headers={"WWW-Authenticate": "Bearer"},
            )
        return record

    def scoped(scope: str):
        async def check(record: Annotated[TokenRecord, Depends(caller)]) -> TokenRecord:
            if scope not in record.scopes:
                raise HTTPException(
                    403, f"token {record.name!r} lacks the {scope!r} scope (it has {record.scopes})"
                )
            wait = limits.wait_for(record.id)
            if wait > 0:
                raise HTTPException(
                    429,
                    f"rate limit of {limits.rate:g} requests/s (burst {limits.burst:g}) reached"
                    f" for token {record.name!r}",
                    headers={"Retry-After": str(max(1, math.ceil(wait)))},
                )
            return record

        return check

    return scoped


def create_app(
    settings: Settings,
    *,
    service: DecisionService | None = None,
    triggers: TriggeredCampaigns | None = None,
    tokens: TokenStore | None = None,
    tokens_file: Path | None = None,
    rate_per_second: float = 200.0,
    burst: float | None = None,
    refresh_seconds: float = 10.0,
    max_batch: int = 64,
) -> FastAPI:
    """The decision API over ``settings``' data directory (see the module doc)."""
    owned = service is None
    service = service or DecisionService(settings, refresh_seconds=refresh_seconds)
    owns_triggers = triggers is None
    triggers = triggers or default_triggers(settings, service)
    tokens = tokens or TokenStore(tokens_file or tokens_path(settings))
    limits = RateLimits(rate_per_second, burst)
    batcher = MicroBatcher(service.decide, max_batch=max_batch)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> Iterator[None]:
        service.state  # noqa: B018 - load at start-up, not on the first request
        gc.freeze()  # what start-up loaded stays out of the collector's way (no long pauses)
        stop = threading.Event()
        thread = threading.Thread(target=_refresher, args=(service, stop), daemon=True)
        thread.start()
        batcher.start()
        try:
            yield
        finally:
            stop.set()
            batcher.stop()
            thread.join(timeout=5)
            gc.unfreeze()
            if owns_triggers:
                triggers.close()
            if owned:
                service.close()

    app = FastAPI(
        title="Campaign decisions",
        version="1",
        description="Real-time decisions by the batch's policy engine. Decides; never sends.",
        lifespan=lifespan,
    )
    app.state.service = service
    app.state.tokens = tokens

    scoped = scoped_dependency(tokens, limits)

    can_decide = Annotated[TokenRecord, Depends(scoped("decide"))]
    is_admin = Annotated[TokenRecord, Depends(scoped("admin"))]
    can_send_events = Annotated[TokenRecord, Depends(scoped("events"))]

    @app.post("/v1/decisions")
    async def decide(body: DecisionBody, _: can_decide) -> JSONResponse:
        request = DecisionRequest(body.request_id, body.customer_id, body.campaign)
        try:
            stored = service.check(request)
        except UnknownCampaign as exc:
            raise HTTPException(404, str(exc)) from None
        except RequestIdReused as exc:
            raise HTTPException(409, str(exc)) from None
        if stored is not None:
            return JSONResponse(stored)
        try:
            return JSONResponse(await asyncio.wrap_future(batcher.enqueue(request)))
        except Exception as exc:  # noqa: BLE001 - never an error page: a safe default
            log.exception("decision %s failed", body.request_id)
            error = f"{type(exc).__name__}: {exc}"
            service.record_failure(request, error)  # counted by the seed metrics
            return JSONResponse(_unavailable(body, error))

    @app.post("/v1/events")
    def events(body: EventBody, _: can_send_events) -> JSONResponse:
        event = CustomerEvent(body.event_id, body.customer_id, body.event, body.occurred_at)
        try:
            return JSONResponse(triggers.handle(event))
        except EventRejected as exc:
            detail = [{"loc": ["body", exc.field], "msg": str(exc), "type": "value_error"}]
            raise HTTPException(422, detail) from None
        except EventIdReused as exc:
            raise HTTPException(409, str(exc)) from None

    @app.get("/v1/health")
    def health() -> JSONResponse:
        return JSONResponse(service.health())

    @app.post("/v1/admin/refresh")
    def refresh(_: is_admin) -> JSONResponse:
        reloaded = service.refresh(force=True)
        return JSONResponse({"reloaded": reloaded, **service.health()})

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s", request.url.path)
        return JSONResponse({"error": f"{type(exc).__name__}: {exc}"[:300]}, status_code=500)

    return app


def _unavailable(body: DecisionBody, detail: str) -> dict[str, Any]:
    return {
        "request_id": body.request_id,
        "customer_id": body.customer_id,
        "campaign": body.campaign,
        "decision": NO_SEND,
        "reason": UNAVAILABLE,
        "reason_text": reason_text(UNAVAILABLE),
        "detail": detail[:300],
        "score": None,
        "propensity": 1.0,
        "replayed": False,
    }
