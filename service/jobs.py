"""One job run so that nothing escapes: the executor already turns sandbox failures into
`sandbox_error`; anything else raised on the host side (a bug) becomes one too, logged
with its traceback, instead of an HTTP 500 or a dead worker thread."""

from __future__ import annotations

import logging

from service.executor import ExecutorConfig, execute
from service.sandbox.base import Sandbox
from service.schema import ExecuteRequest, ExecuteResult

log = logging.getLogger(__name__)


def run_job(req: ExecuteRequest, sandbox: Sandbox, exec_config: ExecutorConfig) -> ExecuteResult:
    try:
        return execute(req, sandbox, exec_config)
    except Exception as e:  # never the program's verdict: the host failed
        log.exception("job %s: internal error", req.id)
        return ExecuteResult(id=req.id, status="sandbox_error", total=len(req.tests),
                             error=f"internal error: {type(e).__name__}: {e}"[:2000])
