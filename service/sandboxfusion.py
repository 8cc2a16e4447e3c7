"""SandboxFusion-compatible API: `POST /run_code` and `GET /v1/ping`, so that veRL
(`reward.sandbox_fusion.url`, `SandboxFusionTool`), SkyRL (`SANDBOX_FUSION_URL`) and
tinker-cookbook (`SANDBOX_URL`) can point at rlef unchanged.

One /run_code request is one rlef job with one stdio test: it runs embedded or through the
queue as /execute does. The answer is always HTTP 200 with a status, as SandboxFusion's:
`Success` exactly when every step finished with return code 0, `Failed` for the program's
failures (time limit: run status TimeLimitExceeded and return code null), `SandboxError`
for rlef's own. The two exceptions: an unknown language or a request over this server's
limits is a 422 with the reason, and a request that cannot finish before the caller's
deadline (compile + run + 10 s, veRL's) gets a 504 first, the one status veRL retries.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import os
from typing import Any, Literal
from weakref import WeakKeyDictionary

from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel, ConfigDict, Field

from service.languages import LANGUAGES
from service.schema import ExecuteRequest, ExecuteResult, Limits, StdioTest, TestResult, Verdict
from service.validation import request_problems

router = APIRouter(tags=["sandboxfusion"])
CALLER_SLACK_S = 10.0  # veRL's API_TIMEOUT on top of compile + run
ANSWER_MARGIN_S = 1.5  # answer the 504 this long before the caller gives up
LANGUAGE_IDS = {"python": "python", "python3": "python", "cpp": "cpp", "c": "c",
                "nodejs": "javascript", "javascript": "javascript", "go": "go",
                "java": "java", "rust": "rust", "bash": "bash", "sql": "sql"}
SQL_RUNNER = "sqlite3 -batch <<'__RLEF_SQL_END__'\n{code}\n__RLEF_SQL_END__\n"


class RunCodeRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")  # as SandboxFusion: unknown fields ignored

    code: str
    language: str
    compile_timeout: float = Field(10, gt=0)
    run_timeout: float = Field(10, gt=0)
    memory_limit_MB: int = -1
    stdin: str | None = None
    files: dict[str, str | None] = {}
    fetch_files: list[str] = []


CommandStatus = Literal["Finished", "TimeLimitExceeded", "Error"]


class CommandRunResult(BaseModel):
    status: CommandStatus
    execution_time: float | None = None
    return_code: int | None = None
    stdout: str = ""
    stderr: str = ""


class RunCodeResponse(BaseModel):
    status: Literal["Success", "Failed", "SandboxError"]
    message: str = ""
    compile_result: CommandRunResult | None = None
    run_result: CommandRunResult | None = None
    executor_pod_name: str | None = None
    files: dict[str, str] = {}


def to_execute(body: RunCodeRequest, maxima: Limits) -> ExecuteRequest:
    """Raises ValueError with the reason for what rlef cannot run."""
    language = LANGUAGE_IDS.get(body.language)
    if language is None:
        raise ValueError(f"language {body.language!r} is not available on rlef (available: "
                         f"{', '.join(sorted(LANGUAGE_IDS))})")
    code = body.code
    if language == "sql":  # SandboxFusion runs SQL through the sqlite3 shell
        language, code = "bash", SQL_RUNNER.format(code=code)
    for path, content in body.files.items():
        try:
            base64.b64decode(content or "", validate=True)
        except (binascii.Error, ValueError) as e:
            raise ValueError(f"files[{path!r}] is not base64: {e}") from None
    seconds = min(body.run_timeout, maxima.wall_time_s)
    memory = maxima.memory_mb if body.memory_limit_MB <= 0 else body.memory_limit_MB
    limits = Limits(cpu_time_s=min(seconds, maxima.cpu_time_s), wall_time_s=seconds,
                    memory_mb=min(memory, maxima.memory_mb), output_kb=maxima.output_kb,
                    pids=Limits().pids)
    return ExecuteRequest(
        language=language, code=code, limits=limits,  # type: ignore[arg-type]
        tests=[StdioTest(stdin=body.stdin or "", expected_stdout="", checker="exact")],
        files={p: c or "" for p, c in body.files.items()}, fetch_files=body.fetch_files,
        full_output=True, compile_timeout_s=body.compile_timeout)


def return_code(test: TestResult) -> int:
    if test.exit_code is not None and not (test.exit_code == 0 and test.signal):
        return test.exit_code
    return 128 + test.signal if test.signal else 1


def run_result(test: TestResult) -> tuple[CommandRunResult, str]:
    """The run's result and the reason for a limit that stopped it."""
    if test.verdict == Verdict.time_limit_exceeded:
        return CommandRunResult(status="TimeLimitExceeded", execution_time=test.wall_time_s,
                                stdout=test.stdout, stderr=test.stderr), test.message
    limited = test.verdict in (Verdict.memory_limit_exceeded, Verdict.output_limit_exceeded)
    code = return_code(test) if limited or test.verdict == Verdict.runtime_error else (
        test.exit_code or 0)
    if limited and code == 0:
        code = 1  # cut off: never a clean exit
    reason = f"{test.verdict.value}: {test.message}".strip(": ") if limited else ""
    return CommandRunResult(status="Finished", execution_time=test.wall_time_s,
                            return_code=code, stdout=test.stdout, stderr=test.stderr), reason


def from_result(res: ExecuteResult, compiled_language: bool) -> RunCodeResponse:
    pod = os.environ.get("HOSTNAME")
    if res.status == "sandbox_error":
        return RunCodeResponse(status="SandboxError", message=res.error, executor_pod_name=pod)
    compile_out = None
    if compiled_language:
        c = res.compile
        compile_out = CommandRunResult(
            status="TimeLimitExceeded" if c.timed_out else "Finished", execution_time=c.time_s,
            return_code=None if c.timed_out else (
                c.exit_code if c.exit_code is not None else int(c.status == "error")),
            stderr=c.stderr)
        if c.status == "error":
            return RunCodeResponse(status="Failed", message="compilation failed",
                                   compile_result=compile_out, executor_pod_name=pod)
    run, reason = run_result(res.tests[0])
    ok = run.status == "Finished" and run.return_code == 0
    return RunCodeResponse(status="Success" if ok else "Failed", message=reason,
                           compile_result=compile_out, run_result=run, files=res.files,
                           executor_pod_name=pod)


@router.get("/v1/ping")
async def ping() -> str:
    return "pong"


@router.post("/run_code", response_model=RunCodeResponse)
async def run_code(body: RunCodeRequest, request: Request) -> Any:
    state = request.app.state.rlef
    try:
        req = to_execute(body, state.settings.max_limits())
    except ValueError as e:
        raise HTTPException(422, detail=str(e)) from None
    problems = request_problems(req, state.settings)
    if problems:
        raise HTTPException(422, detail=problems)
    res = await run_in_time(state, req, body.compile_timeout + body.run_timeout)
    return from_result(res, LANGUAGES[req.language].compile is not None)


OVERLOADED = "overloaded: the job could not start before the caller's deadline; retry"
_SLOTS: WeakKeyDictionary[Any, asyncio.Semaphore] = WeakKeyDictionary()


def slots(state: Any) -> asyncio.Semaphore | None:
    """/run_code jobs running at once in an embedded service: one per warm sandbox."""
    if state.sandbox is None:
        return None
    if state not in _SLOTS:
        _SLOTS[state] = asyncio.Semaphore(max(1, state.settings.pool_size))
    return _SLOTS[state]


async def run_in_time(state: Any, req: ExecuteRequest, work_s: float) -> ExecuteResult:
    """The job, or a 504 as soon as it cannot start in time: the caller waits work_s plus
    its slack. Embedded, a job that never got a sandbox is never run; through the queue
    the answer comes before the caller's deadline (the job itself stays queued)."""
    start_within = CALLER_SLACK_S - ANSWER_MARGIN_S
    gate = slots(state)
    if gate is None:
        try:
            return await asyncio.wait_for(state.run(req), timeout=work_s + start_within)
        except TimeoutError:
            raise HTTPException(504, detail=OVERLOADED) from None
    try:
        await asyncio.wait_for(gate.acquire(), timeout=start_within)
    except TimeoutError:
        raise HTTPException(504, detail=OVERLOADED) from None
    try:
        return await state.run(req)  # type: ignore[no-any-return]
    finally:
        gate.release()
