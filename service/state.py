"""What the API's routes share: settings, the sandbox (embedded mode) and the job queue.

Built once in the app's lifespan; routes get it as a FastAPI dependency (`StateDep`).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.concurrency import run_in_threadpool

from service import metrics
from service.executor import ExecutorConfig, executor_config
from service.jobs import run_job
from service.queue import InProcessQueue, JobQueue
from service.redis_queue import RedisQueue
from service.sandbox.base import Sandbox
from service.schema import ExecuteRequest, ExecuteResult, LanguageInfo
from service.settings import Settings


class State:
    def __init__(self, settings: Settings, sandbox: Sandbox | None, queue: JobQueue) -> None:
        self.settings = settings
        self.sandbox = sandbox
        self.queue = queue
        self.exec_config: ExecutorConfig = executor_config(settings)
        self.versions: list[LanguageInfo] | None = None
        self.healthy_at = 0.0

    async def run(self, req: ExecuteRequest) -> ExecuteResult:
        """One job: in this process when it has a sandbox, else through the queue."""
        if self.sandbox is not None:
            res = await run_in_threadpool(run_job, req, self.sandbox, self.exec_config)
        else:
            res = await self._through_queue(req)
        metrics.observe(res)
        return res

    async def _through_queue(self, req: ExecuteRequest) -> ExecuteResult:
        batch_id = await self.queue.submit([req])
        cfg = self.settings
        wait = (cfg.compile_wall_time_s + len(req.tests) * req.limits.wall_time_s
                + cfg.visibility_timeout_s * cfg.max_attempts + 30)
        out = await self.queue.results(batch_id, wait_s=wait)
        if not out.done:
            raise HTTPException(504, detail=f"job still running: GET /batches/{batch_id}/results")
        return out.results[0].model_copy(update={"index": None})


def build_state(settings: Settings, sandbox: Sandbox | None) -> State:
    if settings.redis_url:
        return State(settings, None, RedisQueue(settings.redis_url, settings.max_queue_depth,
                                                settings.result_ttl_s))
    assert sandbox is not None
    queue = InProcessQueue(sandbox, executor_config(settings), settings.pool_size,
                           settings.max_queue_depth, settings.result_ttl_s)
    return State(settings, sandbox, queue)


def get_state(request: Request) -> State:
    state: State = request.app.state.rlef
    return state


StateDep = Annotated[State, Depends(get_state)]
