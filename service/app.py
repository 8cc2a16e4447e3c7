"""FastAPI app factory: thin routes over the executor (embedded) or the Redis queue."""

from __future__ import annotations

import hmac
import logging
import shlex
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response

from service import metrics
from service.executor import Policy, execute, policy_from
from service.languages import LANGUAGES
from service.queue import BatchNotFound, JobQueue, LocalQueue, NoWorkers, QueueFull
from service.redis_queue import QueueUnavailable, RedisQueue
from service.sandbox import open_sandbox
from service.sandbox.base import Sandbox
from service.sandboxfusion import router as sandboxfusion_router
from service.schema import (
    BatchCreated,
    BatchRequest,
    BatchResults,
    BatchStatus,
    ErrorResponse,
    ExecuteRequest,
    ExecuteResult,
    LanguageInfo,
    StdioTest,
    Verdict,
)
from service.settings import Settings
from service.validation import request_problems

log = logging.getLogger(__name__)
ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse, "description": text} for code, text in (
        (401, "Missing or wrong bearer token (when RLEF_API_TOKEN is set)"),
        (404, "Unknown or expired batch"),
        (413, "Request body too large"),
        (422, "Invalid request, or beyond server limits"),
        (429, "Queue full: retry after the Retry-After header's seconds"),
        (503, "No sandbox or worker can run code right now"),
        (504, "The job is still queued or running: fetch it later by its batch id"))}
HEALTH_TTL_S = 5.0


class State:
    def __init__(self, settings: Settings, sandbox: Sandbox | None, queue: JobQueue) -> None:
        self.settings = settings
        self.sandbox = sandbox
        self.queue = queue
        self.policy: Policy = policy_from(settings)
        self.versions: list[LanguageInfo] | None = None
        self.healthy_at = 0.0

    async def run(self, req: ExecuteRequest) -> ExecuteResult:
        """One job: in this process when it has a sandbox, else through the queue."""
        if self.sandbox is not None:
            res = await run_in_threadpool(execute, req, self.sandbox, self.policy)
        else:
            batch_id = await self.queue.submit([req])
            limits = req.limits
            wait = (self.settings.compile_wall_time_s + len(req.tests) * limits.wall_time_s
                    + self.settings.visibility_timeout_s * self.settings.max_attempts + 30)
            out = await self.queue.results(batch_id, wait_s=wait)
            if not out.done:
                raise HTTPException(504, detail=f"job still running: GET /batches/{batch_id}"
                                                "/results")
            res = out.results[0].model_copy(update={"index": None})
        metrics.observe(res)
        return res


async def language_versions(state: State) -> list[LanguageInfo]:
    infos = []
    for spec in LANGUAGES.values():
        req = ExecuteRequest(language="bash", code=shlex.join(spec.version) + " 2>&1 | head -n1",
                             tests=[StdioTest(expected_stdout="")])
        res = await state.run(req)
        version = res.tests[0].stdout.strip() if res.tests else ""
        infos.append(LanguageInfo(id=spec.id, source_file=spec.source_file,  # type: ignore[arg-type]
                                  compiled=spec.compile is not None,
                                  version=version or "unavailable",
                                  test_types=list(spec.test_types)))
    return infos


def build_state(settings: Settings, sandbox: Sandbox | None) -> State:
    if settings.redis_url:
        return State(settings, None, RedisQueue(settings.redis_url, settings.max_queue_depth,
                                                settings.result_ttl_s))
    assert sandbox is not None
    queue = LocalQueue(sandbox, policy_from(settings), settings.pool_size,
                       settings.max_queue_depth, settings.result_ttl_s)
    return State(settings, sandbox, queue)


def create_app(settings: Settings | None = None, sandbox: Sandbox | None = None) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        cfg = settings or Settings()
        box = sandbox
        if box is None and not cfg.redis_url:
            box = await run_in_threadpool(open_sandbox, cfg)
        app.state.rlef = build_state(cfg, box)
        try:
            yield
        finally:
            await app.state.rlef.queue.close()
            if box is not None and box is not sandbox:
                await run_in_threadpool(box.close)

    app = FastAPI(title="rlef", version="0.1.0", lifespan=lifespan,
                  description="Sandboxed code execution with feedback for RL on code.")
    install_error_handlers(app)
    app.include_router(sandboxfusion_router)

    @app.middleware("http")
    async def guard(request: Request, call_next: Any) -> Any:
        settings = request.app.state.rlef.settings
        if settings.api_token and request.url.path != "/healthz" and not authorized(
                request.headers.get("authorization", ""), settings.api_token):
            return JSONResponse(status_code=401, headers={"WWW-Authenticate": "Bearer"},
                                content={"detail": "missing or wrong bearer token"})
        size = request.headers.get("content-length")
        cap = settings.max_body_mb * 1024 * 1024
        if size is not None and size.isdigit() and int(size) > cap:
            return JSONResponse(status_code=413, content={"detail": f"body over {cap} bytes"})
        return await call_next(request)

    @app.post("/execute", response_model=ExecuteResult, responses=ERRORS)
    async def execute_route(req: ExecuteRequest, request: Request) -> ExecuteResult:
        state: State = request.app.state.rlef
        check(req, state.settings)
        return await state.run(req)

    @app.post("/batches", response_model=BatchCreated, responses=ERRORS)
    async def create_batch(body: BatchRequest, request: Request) -> BatchCreated:
        state: State = request.app.state.rlef
        for i, req in enumerate(body.requests):
            check(req, state.settings, where=f"requests[{i}]: ")
        batch_id = await state.queue.submit(body.requests)
        return BatchCreated(id=batch_id, total=len(body.requests))

    @app.get("/batches/{batch_id}", response_model=BatchStatus, responses=ERRORS)
    async def batch_status(batch_id: str, request: Request) -> BatchStatus:
        return await request.app.state.rlef.queue.status(batch_id)  # type: ignore[no-any-return]

    @app.get("/batches/{batch_id}/results", response_model=BatchResults, responses=ERRORS)
    async def batch_results(batch_id: str, request: Request,
                            wait: Annotated[float, Query(ge=0, le=60)] = 0) -> BatchResults:
        state: State = request.app.state.rlef
        out: BatchResults = await state.queue.results(batch_id, wait_s=wait)
        return out

    @app.get("/languages", response_model=list[LanguageInfo], responses=ERRORS)
    async def languages(request: Request) -> list[LanguageInfo]:
        state: State = request.app.state.rlef
        if state.versions is None:
            state.versions = await language_versions(state)
        return state.versions

    @app.get("/healthz", responses=ERRORS)
    async def healthz(request: Request) -> dict[str, Any]:
        state: State = request.app.state.rlef
        workers = await state.queue.workers()
        if time.monotonic() - state.healthy_at > HEALTH_TTL_S:
            res = await state.run(ExecuteRequest(language="python", code="print(1)",
                                                 tests=[StdioTest(expected_stdout="1")]))
            if res.status != "ok" or res.verdict != Verdict.accepted:
                raise HTTPException(503, detail=f"sandbox cannot run code: {res.error}")
            state.healthy_at = time.monotonic()
        backend = state.sandbox.name if state.sandbox else "redis"
        return {"status": "ok", "backend": backend, "workers": workers}

    @app.get("/metrics", include_in_schema=False)
    async def metrics_route(request: Request) -> Response:
        body, content_type = await metrics.render(request.app.state.rlef.queue)
        return Response(body, media_type=content_type)

    return app


def authorized(header: str, token: str) -> bool:
    scheme, _, given = header.partition(" ")
    # constant-time: the comparison must not leak how much of a guess was right
    return scheme.lower() == "bearer" and hmac.compare_digest(given.encode(), token.encode())


def check(req: ExecuteRequest, settings: Settings, where: str = "") -> None:
    problems = request_problems(req, settings)
    if problems:
        raise HTTPException(status_code=422, detail=[where + p for p in problems])


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(QueueFull)
    async def full(request: Request, exc: QueueFull) -> JSONResponse:
        return JSONResponse(status_code=429, content={"detail": str(exc)},
                            headers={"Retry-After": str(exc.retry_after_s)})

    @app.exception_handler(BatchNotFound)
    async def missing(request: Request, exc: BatchNotFound) -> JSONResponse:
        return JSONResponse(status_code=404, content={"detail": str(exc)})

    @app.exception_handler(NoWorkers)
    @app.exception_handler(QueueUnavailable)
    async def unavailable(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse(status_code=503, content={"detail": str(exc)},
                            headers={"Retry-After": "2"})
