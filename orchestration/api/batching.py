"""Micro-batching: concurrent requests decided together by one worker thread.

Each customer is decided on their own (``realtime.decide_customers`` gives every campaign room for
all of them), so deciding 30 requests in one online read, one model call and one engine pass gives
each the answer it would get alone, at a fraction of the cost. Nothing waits for a batch to fill:
the worker takes whatever queued while it was busy (at most ``max_batch``). One worker also means
one thread touches the Feast store, the models and the engine.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from orchestration.core.decisioning.realtime import DecisionRequest

_STOP = object()


class MicroBatcher:
    def __init__(
        self,
        decide: Callable[[list[DecisionRequest]], list[dict[str, Any]]],
        max_batch: int = 64,
    ):
        self.decide = decide
        self.max_batch = max_batch
        self._queue: queue.Queue = queue.Queue()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="decisions", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self._queue.put(_STOP)
            self._thread.join(timeout=10)
            self._thread = None

    def enqueue(self, request: DecisionRequest) -> Future:
        """Queue a request; the future resolves to its answer."""
        future: Future = Future()
        self._queue.put((request, future))
        return future

    def submit(self, request: DecisionRequest, timeout: float = 30.0) -> dict[str, Any]:
        return self.enqueue(request).result(timeout=timeout)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            batch = [item]
            while len(batch) < self.max_batch:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is _STOP:
                    self._queue.put(_STOP)
                    break
                batch.append(more)
            try:
                answers = self.decide([request for request, _ in batch])
            except BaseException as exc:  # noqa: BLE001 - handed to each waiting request
                for _, future in batch:
                    future.set_exception(exc)
                continue
            for (_, future), answer in zip(batch, answers, strict=True):
                future.set_result(answer)
