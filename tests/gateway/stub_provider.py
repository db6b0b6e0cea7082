"""A stub HTTP messaging provider with injectable faults, bound to 127.0.0.1.

It speaks the wire format of ``orchestration.core.delivery.http_provider`` and deduplicates by
idempotency key like a real provider. It records, per key, how many times a message was
*accepted as new* (must never exceed 1) and how many duplicate submissions it saw, so a test can
tell "the gateway never sent twice" apart from "the provider saved us".

Faults (set on ``stub.faults``, changeable while running):
- ``error_rate``: share of batch requests answered 503 (nothing accepted);
- ``throttle_rate``: share answered 429 with ``Retry-After: <retry_after>``;
- ``accept_then_timeout_rate``: share accepted, then the answer is delayed past the client's
  timeout (the client cannot know the outcome);
- ``latency``: seconds every batch request takes;
- ``outage``: every request (including lookups) answered 503.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Faults:
    error_rate: float = 0.0
    throttle_rate: float = 0.0
    retry_after: float = 0.05
    accept_then_timeout_rate: float = 0.0
    timeout_hold: float = 1.5
    latency: float = 0.0
    outage: bool = False
    # Deterministic answers for the next batch requests, consumed in order before the rates
    # apply: "503", "429", "timeout" (accept, then answer too late) or "ok".
    script: list[str] = field(default_factory=list)


class StubProvider:
    def __init__(self, token: str = "test-token", seed: int = 0):
        self.token = token
        self.faults = Faults()
        self.accepted: Counter[str] = Counter()
        self.duplicates: Counter[str] = Counter()
        self.addresses: dict[str, str] = {}
        self.requests = 0
        self.batch_keys: list[str] = []
        # W3C traceparent of each batch request, and of each accepted message (its body field)
        self.traceparents: list[str] = []
        self.message_traceparents: dict[str, str] = {}
        self._lock = threading.Lock()
        self._rng = random.Random(seed)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle ------------------------------------------------------------------------
    def start(self, port: int = 0) -> str:
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # quiet
                pass

            def do_POST(self) -> None:  # noqa: N802
                stub._handle(self)

        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self.url

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    # --- behaviour ------------------------------------------------------------------------
    def _reply(self, handler: BaseHTTPRequestHandler, status: int, body: dict, headers=None):
        data = json.dumps(body).encode()
        try:
            handler.send_response(status)
            for k, v in (headers or {}).items():
                handler.send_header(k, v)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(len(data)))
            handler.end_headers()
            handler.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (timeout) or was killed

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        if handler.headers.get("Authorization") != f"Bearer {self.token}":
            self._reply(handler, 401, {"error": "bad token"})
            return
        length = int(handler.headers.get("Content-Length", 0))
        try:
            payload = json.loads(handler.rfile.read(length))
        except (ValueError, ConnectionResetError):
            self._reply(handler, 400, {"error": "bad body"})
            return
        f = self.faults
        if f.outage:
            self._reply(handler, 503, {"error": "outage"})
            return
        if handler.path == "/messages/lookup":
            with self._lock:
                found = {k: f"stub:{k}" for k in payload.get("keys", []) if self.accepted[k]}
            self._reply(handler, 200, {"found": found})
            return
        if handler.path != "/messages":
            self._reply(handler, 404, {"error": "no such path"})
            return
        if f.latency:
            time.sleep(f.latency)
        with self._lock:
            self.requests += 1
            self.batch_keys.append(handler.headers.get("Idempotency-Key", ""))
            self.traceparents.append(handler.headers.get("traceparent", ""))
            roll = self._rng.random()
            scripted = f.script.pop(0) if f.script else None
        if scripted is not None:
            roll = {"503": -1.0, "429": f.error_rate, "timeout": f.error_rate + f.throttle_rate}
            roll = roll.get(scripted, 2.0)
            if scripted == "429":
                self._reply(
                    handler, 429, {"error": "slow down"}, {"Retry-After": str(f.retry_after)}
                )
                return
            if scripted == "timeout":
                roll = -2.0
        if roll == -1.0 or (scripted is None and roll < f.error_rate):
            self._reply(handler, 503, {"error": "injected"})
            return
        if scripted is None and roll < f.error_rate + f.throttle_rate:
            self._reply(handler, 429, {"error": "slow down"}, {"Retry-After": str(f.retry_after)})
            return
        results = []
        with self._lock:
            for m in payload.get("messages", []):
                key = m["idempotency_key"]
                if self.accepted[key]:
                    self.duplicates[key] += 1
                    results.append({"idempotency_key": key, "status": "duplicate", "id": key})
                    continue
                if "@" not in m.get("to", "") and not m.get("to", "").startswith(("+", "push:")):
                    results.append(
                        {"idempotency_key": key, "status": "rejected", "error": "bad to"}
                    )
                    continue
                self.accepted[key] += 1
                self.addresses[key] = m["to"]
                self.message_traceparents[key] = m.get("traceparent", "")
                results.append({"idempotency_key": key, "status": "accepted", "id": f"stub:{key}"})
        if roll == -2.0 or (
            scripted is None and roll < f.error_rate + f.throttle_rate + f.accept_then_timeout_rate
        ):
            time.sleep(f.timeout_hold)  # accepted, but the client times out first
        self._reply(handler, 200, {"results": results})

    def snapshot(self) -> dict:
        with self._lock:
            return {
                "accepted": dict(self.accepted),
                "duplicates": dict(self.duplicates),
                "requests": self.requests,
            }
