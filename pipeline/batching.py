"""Dynamic batching across callers (plain asyncio; the parser actor runs it on its event loop).

Every stream sends its frames to the shared parser actor as separate calls. An async actor
runs those calls concurrently on one event loop; :class:`DynamicBatcher` gathers their items
into one model batch of up to ``max_batch_size`` items, waiting at most ``max_wait_ms`` after
the first item for more, and runs the batch in a worker thread so the loop keeps collecting
the next batch meanwhile. Only one batch runs the model at a time: the model owns the device.

With a ``finish`` stage (a model parser's decoding), each batch runs ``process`` (the network)
in one thread and ``finish`` in another, so the network of batch n + 1 overlaps the decoding
of batch n: on a CPU the network keeps its cores while decoding, thumbnails and the other
pipeline stages use what is left. At most one batch waits to be finished, and batches finish
in order.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Generic, TypeVar

from describeme.operators.telemetry import Telemetry

log = logging.getLogger(__name__)

ItemT = TypeVar("ItemT")
ResultT = TypeVar("ResultT")


class DynamicBatcher(Generic[ItemT, ResultT]):
    """Batches items submitted by concurrent coroutines.

    Args:
        process: runs one batch: ``process(items) -> results`` with ``len(results) ==
            len(items)`` (called in a worker thread); with ``finish``, its first stage
            ``process(items) -> intermediate``.
        finish: optional second stage ``finish(items, intermediate) -> results``, run in its
            own thread, overlapping the next batch's ``process``.
        max_batch_size: most items per call to ``process``.
        max_wait_ms: longest wait after a batch's first item before running it anyway.
        telemetry: receives ``batch_size`` / ``batch_wait_seconds`` samples and queue depth.
    """

    def __init__(self, process: Callable[[list[ItemT]], Any], *,
                 finish: Callable[[list[ItemT], Any], Sequence[ResultT]] | None = None,
                 max_batch_size: int = 8, max_wait_ms: float = 10.0,
                 telemetry: Telemetry | None = None) -> None:
        if max_batch_size < 1:
            raise ValueError(f"max_batch_size must be >= 1, got {max_batch_size}")
        if max_wait_ms < 0:
            raise ValueError(f"max_wait_ms must be >= 0, got {max_wait_ms}")
        self.process, self.finish = process, finish
        self.max_batch_size = int(max_batch_size)
        self.max_wait_s = float(max_wait_ms) / 1000.0
        self.telemetry = telemetry or Telemetry()
        self._queue: asyncio.Queue[tuple[ItemT, asyncio.Future[Any], float]] | None = None
        self._worker: asyncio.Task[None] | None = None
        # One thread per stage: each stage runs one batch at a time, in submission order.
        self._first = ThreadPoolExecutor(1, thread_name_prefix="batch-process")
        self._second = ThreadPoolExecutor(1, thread_name_prefix="batch-finish")
        self._finishing: asyncio.Task[None] | None = None

    async def submit(self, items: Sequence[ItemT]) -> list[ResultT]:
        """Queues ``items`` and returns their results, in order, once their batches ran."""
        if self._queue is None:
            self._queue = asyncio.Queue()
            self._worker = asyncio.get_running_loop().create_task(self._run())
        loop = asyncio.get_running_loop()
        futures = []
        for item in items:
            future: asyncio.Future[Any] = loop.create_future()
            self._queue.put_nowait((item, future, time.perf_counter()))
            futures.append(future)
        self.telemetry.gauge("parser_queue_depth", self._queue.qsize())
        return list(await asyncio.gather(*futures))

    async def _collect(self) -> list[tuple[ItemT, asyncio.Future[Any], float]]:
        assert self._queue is not None
        batch = [await self._queue.get()]
        deadline = time.perf_counter() + self.max_wait_s
        while len(batch) < self.max_batch_size:
            if not self._queue.empty():
                batch.append(self._queue.get_nowait())
                continue
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                break
            try:
                batch.append(await asyncio.wait_for(self._queue.get(), remaining))
            except TimeoutError:
                break
        return batch

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = await self._collect()
            now = time.perf_counter()
            for _, _, queued in batch:
                self.telemetry.observe("batch_wait_seconds", now - queued)
            self.telemetry.observe("batch_size", float(len(batch)))
            items = [item for item, _, _ in batch]
            try:
                result = await loop.run_in_executor(self._first, self.process, items)
            except Exception as exc:  # every waiting caller gets the error, the loop goes on
                _fail(batch, exc)
                continue
            if self.finish is None:
                _deliver(batch, result)
                continue
            if self._finishing is not None:
                await self._finishing  # at most one batch waits for its second stage
            self._finishing = loop.create_task(self._finish(batch, items, result))

    async def _finish(self, batch: list[tuple[ItemT, asyncio.Future[Any], float]],
                      items: list[ItemT], intermediate: Any) -> None:
        assert self.finish is not None
        loop = asyncio.get_running_loop()
        try:
            results = await loop.run_in_executor(self._second, self.finish, items, intermediate)
        except Exception as exc:
            _fail(batch, exc)
            return
        _deliver(batch, results)


def _fail(batch: list[tuple[Any, asyncio.Future[Any], float]], exc: BaseException) -> None:
    log.error("batch of %d items failed", len(batch), exc_info=exc)
    for _, future, _ in batch:
        if not future.done():
            future.set_exception(exc)


def _deliver(batch: list[tuple[Any, asyncio.Future[Any], float]], results: Any) -> None:
    """Hands each caller its result; a processor returning the wrong count fails the batch."""
    if len(results) != len(batch):
        _fail(batch, RuntimeError(f"batch processor returned {len(results)} results for "
                                  f"{len(batch)} items"))
        return
    for (_, future, _), result in zip(batch, results, strict=True):
        if not future.done():
            future.set_result(result)
