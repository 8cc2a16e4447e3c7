"""Job queues behind one interface: in-process (embedded default) and Redis Streams.

The API submits batches and waits on their results; who runs the jobs differs:
`InProcessQueue` runs them on this process's sandbox pool, `RedisQueue` (redis_queue.py)
leaves them to `rlef worker` processes on any number of machines.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Protocol

from service.executor import ExecutorConfig, execute
from service.sandbox.base import Sandbox
from service.schema import BatchResults, BatchStatus, ExecuteRequest, ExecuteResult

log = logging.getLogger(__name__)


class QueueFull(Exception):
    def __init__(self, depth: int, limit: int, retry_after_s: int = 1) -> None:
        super().__init__(f"queue is full ({depth} jobs waiting, limit {limit}); retry later")
        self.retry_after_s = retry_after_s


class BatchNotFound(Exception):
    def __init__(self, batch_id: str) -> None:
        super().__init__(f"no batch {batch_id!r} (unknown, expired, or lost with its queue)")


class NoWorkers(Exception):
    """Nothing would ever run the job: answered 503 instead of waiting forever."""


class JobQueue(Protocol):
    async def submit(self, requests: list[ExecuteRequest]) -> str: ...

    async def status(self, batch_id: str) -> BatchStatus: ...

    async def results(self, batch_id: str, wait_s: float) -> BatchResults: ...

    async def workers(self) -> int: ...

    async def depth(self) -> int: ...

    async def close(self) -> None: ...


def ordered(batch_id: str, total: int, found: dict[int, ExecuteResult]) -> BatchResults:
    return BatchResults(id=batch_id, total=total, done=len(found) >= total,
                        results=[found[i] for i in sorted(found)])


@dataclass
class _Batch:
    total: int
    created: float = field(default_factory=time.monotonic)
    results: dict[int, ExecuteResult] = field(default_factory=dict)
    changed: asyncio.Event = field(default_factory=asyncio.Event)


class InProcessQueue:
    """Runs jobs in this process on its warm sandbox pool; keeps results for `ttl_s`."""

    def __init__(self, sandbox: Sandbox, exec_config: ExecutorConfig, concurrency: int,
                 max_depth: int, ttl_s: float = 3600.0) -> None:
        self.sandbox, self.exec_config = sandbox, exec_config
        self.max_depth, self.ttl_s = max_depth, ttl_s
        self._pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="job")
        self._batches: dict[str, _Batch] = {}
        self._pending = 0

    async def submit(self, requests: list[ExecuteRequest]) -> str:
        if self._pending + len(requests) > self.max_depth:
            raise QueueFull(self._pending, self.max_depth)
        self._expire()
        batch_id = uuid.uuid4().hex
        batch = self._batches[batch_id] = _Batch(total=len(requests))
        loop = asyncio.get_running_loop()
        self._pending += len(requests)
        for index, req in enumerate(requests):
            fut = loop.run_in_executor(self._pool, execute, req, self.sandbox, self.exec_config)
            fut.add_done_callback(functools.partial(self._finish, batch, index))
        return batch_id

    def _finish(self, batch: _Batch, index: int, fut: asyncio.Future[ExecuteResult]) -> None:
        self._pending -= 1
        exc = fut.exception()
        if exc is not None:  # execute() turns sandbox failures into results; this is a bug
            log.error("job crashed", exc_info=exc)
            result = ExecuteResult(status="sandbox_error", error=f"internal error: {exc}")
        else:
            result = fut.result()
        batch.results[index] = result.model_copy(update={"index": index})
        batch.changed.set()

    def _expire(self) -> None:
        cutoff = time.monotonic() - self.ttl_s
        for key in [k for k, b in self._batches.items() if b.created < cutoff]:
            del self._batches[key]

    def _get(self, batch_id: str) -> _Batch:
        try:
            return self._batches[batch_id]
        except KeyError:
            raise BatchNotFound(batch_id) from None

    async def status(self, batch_id: str) -> BatchStatus:
        batch = self._get(batch_id)
        return BatchStatus(id=batch_id, total=batch.total, done=len(batch.results))

    async def results(self, batch_id: str, wait_s: float) -> BatchResults:
        batch = self._get(batch_id)
        deadline = time.monotonic() + wait_s
        while len(batch.results) < batch.total and (left := deadline - time.monotonic()) > 0:
            batch.changed.clear()
            try:
                await asyncio.wait_for(batch.changed.wait(), timeout=left)
            except TimeoutError:
                break
        return ordered(batch_id, batch.total, dict(batch.results))

    async def workers(self) -> int:
        return 1

    async def depth(self) -> int:
        return self._pending

    async def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
