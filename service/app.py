"""FastAPI app factory: thin routes over the executor."""

from __future__ import annotations

import logging
import shlex
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from service.executor import Policy, execute, policy_from
from service.languages import LANGUAGES
from service.sandbox import open_sandbox
from service.sandbox.base import Sandbox
from service.schema import (
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
    413: {"model": ErrorResponse, "description": "Request body too large"},
    422: {"model": ErrorResponse, "description": "Invalid request, or beyond server limits"},
    503: {"model": ErrorResponse, "description": "No sandbox can run code right now"},
}
HEALTH_TTL_S = 5.0


class State:
    def __init__(self, settings: Settings, sandbox: Sandbox) -> None:
        self.settings = settings
        self.sandbox = sandbox
        self.policy: Policy = policy_from(settings)
        self.versions: list[LanguageInfo] | None = None
        self.healthy_at = 0.0


def probe(state: State) -> ExecuteResult:
    req = ExecuteRequest(language="python", code="print(1)",
                         tests=[StdioTest(expected_stdout="1")])
    return execute(req, state.sandbox, state.policy)


def language_versions(state: State) -> list[LanguageInfo]:
    infos = []
    for spec in LANGUAGES.values():
        req = ExecuteRequest(language="bash", code=shlex.join(spec.version) + " 2>&1 | head -n1",
                             tests=[StdioTest(expected_stdout="")])
        res = execute(req, state.sandbox, state.policy)
        version = res.tests[0].stdout.strip() if res.tests else ""
        infos.append(LanguageInfo(id=spec.id, source_file=spec.source_file,  # type: ignore[arg-type]
                                  compiled=spec.compile is not None,
                                  version=version or "unavailable",
                                  test_types=list(spec.test_types)))
    return infos


def create_app(settings: Settings | None = None, sandbox: Sandbox | None = None) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        cfg = settings or Settings()
        box = sandbox if sandbox is not None else await run_in_threadpool(open_sandbox, cfg)
        app.state.rlef = State(cfg, box)
        try:
            yield
        finally:
            if box is not sandbox:
                await run_in_threadpool(box.close)

    app = FastAPI(title="rlef", version="0.1.0", lifespan=lifespan,
                  description="Sandboxed code execution with feedback for RL on code.")

    @app.middleware("http")
    async def body_limit(request: Request, call_next: Any) -> Any:
        size = request.headers.get("content-length")
        cap = request.app.state.rlef.settings.max_body_mb * 1024 * 1024
        if size is not None and size.isdigit() and int(size) > cap:
            return JSONResponse(status_code=413, content={"detail": f"body over {cap} bytes"})
        return await call_next(request)

    @app.post("/execute", response_model=ExecuteResult, responses=ERRORS)
    async def execute_route(req: ExecuteRequest, request: Request) -> ExecuteResult:
        state: State = request.app.state.rlef
        problems = request_problems(req, state.settings)
        if problems:
            raise HTTPException(status_code=422, detail=problems)
        return await run_in_threadpool(execute, req, state.sandbox, state.policy)

    @app.get("/languages", response_model=list[LanguageInfo])
    async def languages(request: Request) -> list[LanguageInfo]:
        state: State = request.app.state.rlef
        if state.versions is None:
            state.versions = await run_in_threadpool(language_versions, state)
        return state.versions

    @app.get("/healthz", responses=ERRORS)
    async def healthz(request: Request) -> dict[str, Any]:
        state: State = request.app.state.rlef
        if time.monotonic() - state.healthy_at > HEALTH_TTL_S:
            res = await run_in_threadpool(probe, state)
            if res.status != "ok" or res.verdict != Verdict.accepted:
                raise HTTPException(503, detail=f"sandbox cannot run code: {res.error}")
            state.healthy_at = time.monotonic()
        return {"status": "ok", "backend": state.sandbox.name}

    return app
