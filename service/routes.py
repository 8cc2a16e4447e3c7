"""The API's routes: plain functions, their shared state as a dependency (service.state)."""

from __future__ import annotations

import shlex
import time
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from service import metrics
from service.http_errors import ERRORS
from service.languages import LANGUAGES
from service.schema import (
    BatchCreated,
    BatchRequest,
    BatchResults,
    BatchStatus,
    ExecuteRequest,
    ExecuteResult,
    LanguageInfo,
    StdioTest,
    Verdict,
)
from service.settings import Settings
from service.state import State, StateDep
from service.validation import request_problems

router = APIRouter()
HEALTH_TTL_S = 5.0


async def check(requests: list[ExecuteRequest], settings: Settings, batch: bool) -> None:
    """422 with every reason the requests cannot run here (off the event loop: a bad
    request may need a walk over all its values to say where)."""
    def problems() -> list[str]:
        return [(f"requests[{i}]: " if batch else "") + p for i, req in enumerate(requests)
                for p in request_problems(req, settings)]
    found = await run_in_threadpool(problems)
    if found:
        raise HTTPException(status_code=422, detail=found)


@router.post("/execute", response_model=ExecuteResult, responses=ERRORS)
async def execute(req: ExecuteRequest, state: StateDep) -> ExecuteResult:
    await check([req], state.settings, batch=False)
    return await state.run(req)


@router.post("/batches", response_model=BatchCreated, responses=ERRORS)
async def create_batch(body: BatchRequest, state: StateDep) -> BatchCreated:
    await check(body.requests, state.settings, batch=True)
    batch_id = await state.queue.submit(body.requests)
    return BatchCreated(id=batch_id, total=len(body.requests))


@router.get("/batches/{batch_id}", response_model=BatchStatus, responses=ERRORS)
async def batch_status(batch_id: str, state: StateDep) -> BatchStatus:
    return await state.queue.status(batch_id)


@router.get("/batches/{batch_id}/results", response_model=BatchResults, responses=ERRORS)
async def batch_results(batch_id: str, state: StateDep,
                        wait: Annotated[float, Query(ge=0, le=60)] = 0) -> BatchResults:
    return await state.queue.results(batch_id, wait_s=wait)


@router.get("/languages", response_model=list[LanguageInfo], responses=ERRORS)
async def languages(state: StateDep) -> list[LanguageInfo]:
    if state.versions is None:
        state.versions = [await language_version(state, lang) for lang in LANGUAGES]
    return state.versions


async def language_version(state: State, language: str) -> LanguageInfo:
    spec = LANGUAGES[language]
    req = ExecuteRequest(language="bash", code=shlex.join(spec.version) + " 2>&1 | head -n1",
                         tests=[StdioTest(expected_stdout="")])
    res = await state.run(req)
    version = res.tests[0].stdout.strip() if res.tests else ""
    return LanguageInfo(id=spec.id, source_file=spec.source_file,  # type: ignore[arg-type]
                        compiled=spec.compile is not None, version=version or "unavailable",
                        test_types=list(spec.test_types))


@router.get("/healthz", responses=ERRORS)
async def healthz(state: StateDep) -> dict[str, Any]:
    """Runs a canary job at most every HEALTH_TTL_S; 503 when it cannot."""
    workers = await state.queue.workers()
    if time.monotonic() - state.healthy_at > HEALTH_TTL_S:
        res = await state.run(ExecuteRequest(language="python", code="print(1)",
                                             tests=[StdioTest(expected_stdout="1")]))
        if res.status != "ok" or res.verdict != Verdict.accepted:
            raise HTTPException(503, detail=f"sandbox cannot run code: {res.error}")
        state.healthy_at = time.monotonic()
    backend = state.sandbox.name if state.sandbox else "redis"
    return {"status": "ok", "backend": backend, "workers": workers}


@router.get("/metrics", include_in_schema=False)
async def metrics_route(state: StateDep) -> Response:
    body, content_type = await metrics.render(state.queue)
    return Response(body, media_type=content_type)
