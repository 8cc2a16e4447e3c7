"""FastAPI app factory: thin routes (service/routes.py) over the executor (embedded) or the
Redis queue, behind the token and body-cap guard, with one error-to-status table."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from fastapi import FastAPI
from fastapi.concurrency import run_in_threadpool

from service import routes
from service.http_errors import ERRORS, install_error_handlers
from service.http_guard import Guard
from service.sandbox import open_sandbox
from service.sandbox.base import Sandbox
from service.sandboxfusion import router as sandboxfusion_router
from service.settings import Settings
from service.state import build_state


def lifespan_for(settings: Settings | None, sandbox: Sandbox | None,
                 ) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """Settings are read and the sandbox opened when the app starts, not when it is built."""
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
    return lifespan


def create_app(settings: Settings | None = None, sandbox: Sandbox | None = None) -> FastAPI:
    app = FastAPI(title="rlef", version="0.1.0", lifespan=lifespan_for(settings, sandbox),
                  description="Sandboxed code execution with feedback for RL on code.")
    install_error_handlers(app)
    app.add_middleware(Guard)
    # Routers: rlef's own API, then compatibility APIs (one line each; ERRORS documents the
    # answers every route may give, e.g. 401, 413 and 422 with a `detail` reason).
    app.include_router(routes.router)
    app.include_router(sandboxfusion_router, responses=ERRORS)
    return app
