"""Client for the rlef service, used by the trainer and the CLI.

`ExecutionClient(url)` speaks HTTP (`http://...`) or straight to the Redis queue
(`redis://...`, skipping the API hop). Every call has a sync and an async form.
Transient refusals (429, 503, connection errors, Redis down) are retried with jittered
exponential back-off up to `retry_s`; anything else raises ServiceError with the reason.

It also re-exports the command-line helpers of service.cmdline (fail, free_port,
local_service, ...), since the trainer imports only this module and service.schema.
"""

from __future__ import annotations

import asyncio
import functools
import os
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol, TypeVar

import httpx

from service.cmdline import (
    fail,
    free_port,
    local_service,
    serve_in_thread,
    spawn_service,
    wait_ready,
)
from service.schema import BatchResults, ExecuteRequest, ExecuteResult

__all__ = ["ExecutionClient", "ServiceError", "fail", "free_port", "local_service",
           "serve_in_thread", "spawn_service", "wait_ready"]

T = TypeVar("T")
RETRYABLE = {429, 502, 503}


class ServiceError(RuntimeError):
    """The service refused a request or could not be reached; the message says why."""


class Retryable(ServiceError):
    def __init__(self, message: str, after_s: float | None = None) -> None:
        super().__init__(message)
        self.after_s = after_s


class _Transport(Protocol):
    async def submit(self, requests: Sequence[ExecuteRequest]) -> str: ...

    async def results(self, batch_id: str, wait_s: float) -> BatchResults: ...

    async def close(self) -> None: ...


def checked(resp: httpx.Response, what: str) -> httpx.Response:
    """The response if it succeeded; else Retryable (429/502/503) or ServiceError with why."""
    if resp.status_code < 400:
        return resp
    try:
        detail: Any = resp.json().get("detail", resp.text)
    except (ValueError, AttributeError):
        detail = resp.text[:2000]
    message = f"{what}: HTTP {resp.status_code}: {detail}"
    if resp.status_code in RETRYABLE:
        after = resp.headers.get("retry-after")
        raise Retryable(message, float(after) if after else None)
    raise ServiceError(message)


class _Http:
    def __init__(self, url: str, token: str | None, timeout_s: float) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.http = httpx.AsyncClient(base_url=url, headers=headers, timeout=timeout_s)

    async def call(self, method: str, path: str, **kw: Any) -> Any:
        try:
            resp = await self.http.request(method, path, **kw)
        except httpx.TransportError as e:
            raise Retryable(f"cannot reach {self.http.base_url}: {e!r}") from e
        return checked(resp, f"{method} {path}").json()

    async def submit(self, requests: Sequence[ExecuteRequest]) -> str:
        body = '{"requests": [' + ",".join(r.model_dump_json() for r in requests) + "]}"
        out = await self.call("POST", "/batches", content=body,
                              headers={"content-type": "application/json"})
        return str(out["id"])

    async def results(self, batch_id: str, wait_s: float) -> BatchResults:
        out = await self.call("GET", f"/batches/{batch_id}/results", params={"wait": wait_s})
        return BatchResults.model_validate(out)

    async def close(self) -> None:
        await self.http.aclose()


class _Redis:
    def __init__(self, url: str) -> None:
        from service.queue import NoWorkers, QueueFull
        from service.redis_queue import QueueUnavailable, RedisQueue

        self.queue = RedisQueue(url, max_depth=1 << 30)
        self.transient = (QueueFull, NoWorkers, QueueUnavailable)

    async def submit(self, requests: Sequence[ExecuteRequest]) -> str:
        try:
            return await self.queue.submit(list(requests))
        except self.transient as e:
            raise Retryable(str(e)) from e

    async def results(self, batch_id: str, wait_s: float) -> BatchResults:
        from service.queue import BatchNotFound

        try:
            return await self.queue.results(batch_id, wait_s)
        except BatchNotFound as e:
            raise ServiceError(str(e)) from e
        except self.transient as e:
            raise Retryable(str(e)) from e

    async def close(self) -> None:
        await self.queue.close()


class Backoff:
    """Jittered exponential back-off until `retry_s` has passed: the one retry policy."""

    def __init__(self, retry_s: float) -> None:
        self.retry_s, self.delay = retry_s, 0.1
        self.deadline = time.monotonic() + retry_s

    def pause(self, e: Retryable) -> float:
        """Seconds to wait before the next try, or ServiceError once out of time."""
        if time.monotonic() + self.delay > self.deadline:
            raise ServiceError(f"gave up after {self.retry_s:.0f}s: {e}") from e
        pause = e.after_s if e.after_s is not None else self.delay
        self.delay = min(self.delay * 2, 10.0)
        return pause * random.uniform(0.5, 1.5)


async def with_retries(fn: Callable[[], Awaitable[T]], retry_s: float) -> T:
    backoff = Backoff(retry_s)
    while True:
        try:
            return await fn()
        except Retryable as e:
            await asyncio.sleep(backoff.pause(e))


def with_retries_sync(fn: Callable[[], T], retry_s: float) -> T:
    backoff = Backoff(retry_s)
    while True:
        try:
            return fn()
        except Retryable as e:
            time.sleep(backoff.pause(e))


class ExecutionClient:
    def __init__(self, url: str, token: str | None = None, timeout_s: float = 120.0,
                 retry_s: float = 300.0, batch_size: int = 256) -> None:
        # the token may come from the environment, as the server's does
        token = token or os.environ.get("RLEF_API_TOKEN") or None
        self.url, self.token, self.timeout_s = url.rstrip("/"), token, timeout_s
        self.retry_s, self.batch_size = retry_s, batch_size
        self._sync: httpx.Client | None = None

    def _transport(self) -> _Transport:
        if self.url.startswith(("redis://", "rediss://", "unix://")):
            return _Redis(self.url)
        return _Http(self.url, self.token, self.timeout_s)

    async def aexecute_many(self, requests: Sequence[ExecuteRequest], progress: bool = False,
                            poll_s: float = 20.0) -> list[ExecuteResult]:
        """Results in request order; each request's `id` is echoed in its result."""
        transport = self._transport()
        bar = _progress(len(requests), progress)
        try:
            chunks = [list(requests[i:i + self.batch_size])
                      for i in range(0, len(requests), self.batch_size)]
            out: list[ExecuteResult] = []
            ids = [await with_retries(functools.partial(transport.submit, c), self.retry_s)
                   for c in chunks]
            for batch_id, chunk in zip(ids, chunks, strict=True):
                out += await self._collect(transport, batch_id, len(chunk), poll_s, bar)
            return out
        finally:
            if bar is not None:
                bar.close()
            await transport.close()

    async def _collect(self, transport: _Transport, batch_id: str, total: int, poll_s: float,
                       bar: Any) -> list[ExecuteResult]:
        seen = 0
        while True:
            res = await with_retries(lambda: transport.results(batch_id, poll_s), self.retry_s)
            if bar is not None:
                bar.update(len(res.results) - seen)
            seen = len(res.results)
            if res.done:
                if len(res.results) != total:
                    raise ServiceError(f"batch {batch_id}: {len(res.results)}/{total} results")
                return [r.model_copy(update={"index": None}) for r in res.results]

    async def aexecute(self, request: ExecuteRequest) -> ExecuteResult:
        return (await self.aexecute_many([request]))[0]

    def execute_many(self, requests: Sequence[ExecuteRequest], progress: bool = False,
                     ) -> list[ExecuteResult]:
        return asyncio.run(self.aexecute_many(requests, progress=progress))

    def execute(self, request: ExecuteRequest) -> ExecuteResult:
        """One job through POST /execute (HTTP, kept-alive connection) or a one-job batch."""
        if not self.url.startswith("http"):
            return self.execute_many([request])[0]
        if self._sync is None:
            headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
            self._sync = httpx.Client(base_url=self.url, headers=headers, timeout=self.timeout_s)
        sync, body = self._sync, request.model_dump_json()

        def post() -> ExecuteResult:
            try:
                resp = sync.post("/execute", content=body,
                                 headers={"content-type": "application/json"})
            except httpx.TransportError as e:
                raise Retryable(f"cannot reach {self.url}: {e!r}") from e
            return ExecuteResult.model_validate_json(checked(resp, "POST /execute").content)

        return with_retries_sync(post, self.retry_s)

    def health(self) -> dict[str, Any]:
        try:
            resp = httpx.get(f"{self.url}/healthz", timeout=self.timeout_s)
        except httpx.HTTPError as e:
            raise ServiceError(f"cannot reach {self.url}: {e!r}") from e
        if resp.status_code != 200:
            raise ServiceError(f"unhealthy: HTTP {resp.status_code}: {resp.text}")
        return dict(resp.json())


def _progress(total: int, enabled: bool) -> Any:
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, desc="executing", unit="job")
