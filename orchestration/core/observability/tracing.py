"""Tracing with OpenTelemetry: one trace per pipeline run, its id on every row the run writes.

The trace id of a run is its Dagster run id (a UUID: 128 bits, exactly a W3C trace id), so every
part of the system derives it without passing it around: the decisions of the run carry it in
``trace_id``, the ledger rows it enqueued too, and the HTTP provider receives it in a W3C
``traceparent`` header on each batch (and per message in the body). When a run ends, its trace is
exported with a root span for the run and a span per stage (Dagster step) carrying the stage's
real start and end times, status and row count.

Exporters (``CAMPAIGN_TRACE_EXPORTER``): ``file`` (default; OTLP-shaped JSON, one span per line,
``<data>/traces/spans.jsonl``), ``otlp`` (OTLP over HTTP to ``CAMPAIGN_TRACE_OTLP_ENDPOINT``,
e.g. a local collector or Jaeger), ``none``. Plain Python: no dagster import.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

SERVICE_NAME = "campaign-orchestration"
EXPORTERS = ("file", "otlp", "none")
# Decision spans wait at most this long in the batch before they are exported.
DECISION_SPANS_DELAY_MS = 1000


def trace_id_for_run(run_id: str) -> str:
    """The 32-hex-digit trace id of a run: its UUID's digits (a hash for any other run id)."""
    try:
        return uuid.UUID(str(run_id)).hex
    except ValueError:
        return hashlib.sha256(str(run_id).encode()).hexdigest()[:32]


def root_span_id(trace_id: str) -> str:
    """The run's root span id (16 hex digits), derived from the trace id, never zero."""
    digest = hashlib.sha256(f"root:{trace_id}".encode()).hexdigest()[:16]
    return digest if int(digest, 16) else "0000000000000001"


def traceparent(trace_id: str, span_id: str | None = None) -> str:
    """A W3C ``traceparent`` header value (version 00, sampled)."""
    return f"00-{trace_id}-{span_id or root_span_id(trace_id)}-01"


def parse_traceparent(header: str) -> tuple[str, str]:
    """(trace id, parent span id) of a ``traceparent`` header; ValueError when malformed."""
    parts = header.strip().split("-")
    if len(parts) != 4 or len(parts[1]) != 32 or len(parts[2]) != 16:
        raise ValueError(f"not a W3C traceparent header: {header!r}")
    int(parts[1], 16), int(parts[2], 16)
    return parts[1], parts[2]


@dataclass(frozen=True)
class StageSpan:
    """One stage of a run as a span: name, real start and end, outcome and rows (if counted)."""

    name: str
    started_at: datetime
    ended_at: datetime
    status: str
    rows: int | None = None


@dataclass(frozen=True)
class TraceSettings:
    exporter: str = "file"
    file: Path | None = None
    otlp_endpoint: str | None = None


def _fixed_ids(trace_id: str) -> Any:
    """An OpenTelemetry IdGenerator that hands out the run's ids: the root span first."""
    from opentelemetry.sdk.trace.id_generator import RandomIdGenerator

    class FixedIds(RandomIdGenerator):
        def __init__(self) -> None:
            self._trace_id = int(trace_id, 16)
            self._first = int(root_span_id(trace_id), 16)
            self._handed_root = False

        def is_trace_id_random(self) -> bool:
            return False

        def generate_trace_id(self) -> int:
            return self._trace_id

        def generate_span_id(self) -> int:
            if not self._handed_root:
                self._handed_root = True
                return self._first
            return super().generate_span_id()

    return FixedIds()


def _exporter(settings: TraceSettings) -> tuple[Any, Any]:
    """(span exporter, file handle to close or None) for the configured exporter."""
    if settings.exporter == "otlp":
        if not settings.otlp_endpoint:
            raise ValueError(
                "CAMPAIGN_TRACE_EXPORTER=otlp needs CAMPAIGN_TRACE_OTLP_ENDPOINT "
                "(e.g. http://127.0.0.1:4318/v1/traces)"
            )
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter(endpoint=settings.otlp_endpoint), None
    from opentelemetry.sdk.trace.export import ConsoleSpanExporter

    if settings.file is None:
        raise ValueError("the file trace exporter needs a file path")
    settings.file.parent.mkdir(parents=True, exist_ok=True)
    handle = settings.file.open("a", encoding="utf-8")
    exporter = ConsoleSpanExporter(
        service_name=SERVICE_NAME,
        out=handle,
        formatter=lambda span: span.to_json(indent=None) + "\n",
    )
    return exporter, handle


def _provider(
    settings: TraceSettings, tracer_name: str, id_generator: Any = None, batched: bool = False
):
    """(tracer, provider, file handle or None): an SDK provider exporting each span as it ends,
    or, ``batched``, from a background thread in batches (``force_flush`` / ``shutdown`` export
    what is queued)."""
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

    exporter, handle = _exporter(settings)
    provider = TracerProvider(
        resource=Resource.create({"service.name": SERVICE_NAME}),
        id_generator=id_generator,
        shutdown_on_exit=False,
    )
    if batched:
        processor = BatchSpanProcessor(exporter, schedule_delay_millis=DECISION_SPANS_DELAY_MS)
    else:
        processor = SimpleSpanProcessor(exporter)
    provider.add_span_processor(processor)
    return provider.get_tracer(tracer_name), provider, handle


def _ns(moment: datetime) -> int:
    return int(moment.timestamp() * 1e9)


def export_run_trace(
    settings: TraceSettings,
    run_id: str,
    job: str,
    status: str,
    stages: Iterable[StageSpan],
) -> str | None:
    """Export one run's trace (root span + a span per stage); returns the trace id, or None when
    tracing is off or the run has no timed stage."""
    if settings.exporter == "none":
        return None
    if settings.exporter not in EXPORTERS:
        raise ValueError(f"CAMPAIGN_TRACE_EXPORTER must be one of {EXPORTERS}")
    stages = sorted(stages, key=lambda s: s.started_at)
    if not stages:
        return None
    from opentelemetry import trace
    from opentelemetry.trace import Status, StatusCode

    trace_id = trace_id_for_run(run_id)
    tracer, provider, handle = _provider(settings, "orchestration.pipeline", _fixed_ids(trace_id))
    try:
        root = tracer.start_span(
            f"run {job}",
            start_time=_ns(stages[0].started_at),
            attributes={"dagster.run_id": run_id, "dagster.job": job, "run.status": status},
        )
        parent = trace.set_span_in_context(root)
        for stage in stages:
            attributes: dict[str, Any] = {"stage.status": stage.status}
            if stage.rows is not None:
                attributes["stage.rows"] = stage.rows
            span = tracer.start_span(
                stage.name, context=parent, start_time=_ns(stage.started_at), attributes=attributes
            )
            if stage.status == "failure":
                span.set_status(Status(StatusCode.ERROR))
            span.end(end_time=_ns(stage.ended_at))
        if status != "SUCCESS":
            root.set_status(Status(StatusCode.ERROR, f"run {status.lower()}"))
        root.end(end_time=_ns(max(s.ended_at for s in stages)))
    finally:
        provider.shutdown()
        if handle is not None:
            handle.close()
    return trace_id


def read_trace(path: Path, trace_id: str) -> Iterator[dict]:
    """The spans of ``trace_id`` in a file written by the file exporter."""
    if not Path(path).exists():
        return
    wanted = f"0x{trace_id}"
    with Path(path).open(encoding="utf-8") as lines:
        for line in lines:
            span = json.loads(line)
            if span.get("context", {}).get("trace_id") == wanted:
                yield span


class DecisionTracer:
    """One trace per API decision: a span with the request's stage latencies (features, score,
    policy, total). Its trace id is new per decision (random, W3C). Spans are exported in batches
    from a background thread (at most ``DECISION_SPANS_DELAY_MS`` later; ``flush`` and ``close``
    export what is queued), not by the request: the file write or OTLP post is off its path."""

    def __init__(self, settings: TraceSettings) -> None:
        self.enabled = settings.exporter != "none"
        self._handle = None
        if not self.enabled:
            return
        self._tracer, self._provider, self._handle = _provider(
            settings, "orchestration.decisions", batched=True
        )

    @staticmethod
    def new_trace_id() -> str:
        return uuid.uuid4().hex

    def record(
        self, trace_id: str, name: str, latency_ms: dict[str, float], attributes: dict[str, Any]
    ) -> None:
        """Export the decision's span under ``trace_id``, ending now, ``latency_ms["total"]``
        long, with each stage's milliseconds as attributes."""
        if not self.enabled:
            return
        from opentelemetry import trace
        from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

        end = time.time_ns()
        start = end - int(latency_ms.get("total", 0.0) * 1e6)
        parent = NonRecordingSpan(
            SpanContext(int(trace_id, 16), int(root_span_id(trace_id), 16), False, TraceFlags(1))
        )
        span = self._tracer.start_span(
            name,
            context=trace.set_span_in_context(parent),
            start_time=start,
            attributes={
                **{k: v for k, v in attributes.items() if v is not None},
                **{f"latency_ms.{k}": float(v) for k, v in latency_ms.items()},
            },
        )
        span.end(end_time=end)

    def flush(self) -> None:
        """Export every span recorded so far."""
        if self.enabled:
            self._provider.force_flush()
            if self._handle is not None:
                self._handle.flush()

    def close(self) -> None:
        if self.enabled:
            self._provider.shutdown()
        if self._handle is not None:
            self._handle.close()
            self._handle = None
