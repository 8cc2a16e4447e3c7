"""Redis Streams queue, API side (async): submit batches, wait for results, count workers.

Jobs go on one stream read by one consumer group. A worker acknowledges a job only in
the same atomic step that stores its result (worker_store.py), so a worker that dies
mid-job leaves the job pending, and another worker reclaims it after the visibility
timeout. Results are written once per index (HSETNX): a job run twice is reported once.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from service import keys
from service.queue import BatchNotFound, NoWorkers, QueueFull, ordered
from service.schema import BatchResults, BatchStatus, ExecuteRequest, ExecuteResult


class QueueUnavailable(Exception):
    """Redis cannot be reached; the message says so (answered 503)."""


class RedisQueue:
    def __init__(self, url: str, max_depth: int, ttl_s: int = 3600) -> None:
        self.url = url
        self.max_depth = max_depth
        self.ttl_s = ttl_s
        self.r: Any = aioredis.from_url(url, decode_responses=True, socket_connect_timeout=5,
                                   socket_timeout=60, health_check_interval=10)

    async def _guard(self, coro):  # type: ignore[no-untyped-def]
        try:
            return await coro
        except RedisError as e:
            raise QueueUnavailable(f"Redis at {self.url} unavailable: {e}") from e

    async def submit(self, requests: list[ExecuteRequest]) -> str:
        return await self._guard(self._submit(requests))  # type: ignore[no-any-return]

    async def _submit(self, requests: list[ExecuteRequest]) -> str:
        depth = await self.r.xlen(keys.JOBS)
        if depth + len(requests) > self.max_depth:
            raise QueueFull(depth, self.max_depth, retry_after_s=2)
        if await self.workers() == 0:
            raise NoWorkers("no live workers: start `rlef worker --redis-url ...`")
        batch_id = uuid.uuid4().hex
        meta = keys.batch_meta(batch_id)
        now = time.time()
        async with self.r.pipeline(transaction=False) as pipe:
            pipe.hset(meta, mapping={"total": len(requests), "done": 0})
            pipe.expire(meta, self.ttl_s)
            for index, req in enumerate(requests):
                job = keys.Job(batch_id, index, attempts=0, request_json=req.model_dump_json(),
                               enqueued=now)
                pipe.xadd(keys.JOBS, job.fields())
            await pipe.execute()
        return batch_id

    async def _meta(self, batch_id: str) -> tuple[int, int]:
        total, done = await self.r.hmget(keys.batch_meta(batch_id), ["total", "done"])
        if total is None:
            raise BatchNotFound(batch_id)
        return int(total), int(done or 0)

    async def status(self, batch_id: str) -> BatchStatus:
        total, done = await self._guard(self._meta(batch_id))
        return BatchStatus(id=batch_id, total=total, done=done)

    async def results(self, batch_id: str, wait_s: float) -> BatchResults:
        return await self._guard(self._results(batch_id, wait_s))  # type: ignore[no-any-return]

    async def _results(self, batch_id: str, wait_s: float) -> BatchResults:
        deadline = time.monotonic() + wait_s
        total, done = await self._meta(batch_id)
        while done < total and (left := deadline - time.monotonic()) > 0:
            # Short blocks: several waiters on one batch share one notify list.
            await self.r.blpop([keys.batch_notify(batch_id)], timeout=max(0.05, min(left, 1.0)))
            total, done = await self._meta(batch_id)
        raw = await self.r.hgetall(keys.batch_results(batch_id))
        found = {int(i): ExecuteResult.model_validate_json(v) for i, v in raw.items()}
        return ordered(batch_id, total, found)

    async def workers(self) -> int:
        count = 0
        async for _ in self.r.scan_iter(match=keys.WORKER_GLOB, count=100):
            count += 1
        return count

    async def depth(self) -> int:
        return int(await self._guard(self.r.xlen(keys.JOBS)))

    async def in_flight(self) -> int:
        try:
            info = await self.r.xpending(keys.JOBS, keys.GROUP)
        except RedisError:
            return 0
        return int(info["pending"])

    async def stats(self) -> dict[str, str]:
        return dict(await self._guard(self.r.hgetall(keys.STATS)))

    async def close(self) -> None:
        await self.r.aclose()
