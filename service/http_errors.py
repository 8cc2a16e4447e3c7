"""How the API answers what goes wrong: documented codes, a JSON `detail` with the reason.

Validation errors quote the offending input only as a short, always-serialisable excerpt:
FastAPI's default echoes it whole, and NaN or a lone surrogate in it made that a 500.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from redis.exceptions import RedisError

from service.queue import BatchNotFound, NoWorkers, QueueFull
from service.redis_queue import QueueUnavailable
from service.schema import ErrorResponse

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
INPUT_CHARS = 200


def safe_text(s: str, limit: int = INPUT_CHARS) -> str:
    s = s[:limit] + ("...(truncated)" if len(s) > limit else "")
    return s.encode("utf-8", "backslashreplace").decode("utf-8")


def safe_input(value: Any) -> Any:
    """An excerpt of what the client sent that JSON can always carry."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value if abs(value) < 2**63 else safe_text(f"{value:.3e}")
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, str):
        return safe_text(value)
    return f"<{type(value).__name__}>"


def validation_detail(exc: RequestValidationError) -> list[dict[str, Any]]:
    return [{"type": str(e.get("type", "")),
             "loc": [p if isinstance(p, int) else safe_text(str(p)) for p in e.get("loc", ())],
             "msg": safe_text(str(e.get("msg", "")), 1000),
             "input": safe_input(e.get("input"))} for e in exc.errors()[:20]]


async def invalid(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return JSONResponse(status_code=422, content={"detail": validation_detail(exc)})


async def full(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, QueueFull)
    return JSONResponse(status_code=429, content={"detail": str(exc)},
                        headers={"Retry-After": str(exc.retry_after_s)})


async def missing(request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse(status_code=404, content={"detail": str(exc)})


async def unavailable(request: Request, exc: Exception) -> JSONResponse:
    detail = str(exc)
    if isinstance(exc, RedisError):  # raised where the queue does not wrap it itself
        detail = f"Redis unavailable: {exc}"
    return JSONResponse(status_code=503, content={"detail": detail}, headers={"Retry-After": "2"})


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, invalid)
    app.add_exception_handler(QueueFull, full)
    app.add_exception_handler(BatchNotFound, missing)
    for unreachable in (NoWorkers, QueueUnavailable, RedisError):
        app.add_exception_handler(unreachable, unavailable)
