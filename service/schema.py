"""Wire models shared by the service, its workers and the trainer.

This is the only service module the trainer imports (with service.client).
"""

from __future__ import annotations

import base64
import binascii
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, field_validator

Language = Literal["python", "cpp", "c", "javascript", "java", "rust", "go", "bash", "sql"]


class Verdict(StrEnum):
    accepted = "accepted"
    wrong_answer = "wrong_answer"
    runtime_error = "runtime_error"
    time_limit_exceeded = "time_limit_exceeded"
    memory_limit_exceeded = "memory_limit_exceeded"
    output_limit_exceeded = "output_limit_exceeded"
    compile_error = "compile_error"
    skipped = "skipped"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Limits(_Strict):
    """Per-run limits. Defaults are safe; the server caps each at its configured maximum."""

    cpu_time_s: float = Field(5.0, gt=0, description="CPU seconds, all threads together")
    wall_time_s: float = Field(10.0, gt=0)
    memory_mb: int = Field(512, ge=16)
    output_kb: int = Field(1024, ge=1, description="stdout+stderr cap; the program is cut off")
    pids: int = Field(64, ge=1, description="processes and threads the program may hold")


Checker = Literal["tokens", "exact", "lines", "float", "unordered_lines", "program"]


class StdioTest(_Strict):
    type: Literal["stdio"] = "stdio"
    stdin: str = ""
    expected_stdout: str
    checker: Checker = "tokens"
    abs_tol: float = Field(1e-6, ge=0)
    rel_tol: float = Field(1e-6, ge=0)
    checker_code: str | None = Field(
        None,
        description="Python checker for checker='program': run as "
        "`checker.py INPUT EXPECTED ACTUAL`; exit 0 accepts, stdout is its message.",
    )


class CallTest(_Strict):
    type: Literal["call"] = "call"
    entry_point: str = Field(min_length=1, max_length=200)
    args: list[Any] = []
    kwargs: dict[str, Any] = {}
    expected: Any = None
    abs_tol: float = Field(1e-6, ge=0)
    rel_tol: float = Field(1e-6, ge=0)


class AssertTest(_Strict):
    """Test code (asserts, or HumanEval's `check(fn)`) run in a trusted process that never
    runs the program; it reaches the program's functions only through a channel that
    carries built-in values."""

    type: Literal["assert"] = "assert"
    code: str = Field(min_length=1)
    setup: str = Field(
        "", description="the problem's own trusted helper code (e.g. a HumanEval prompt's "
        "helpers), defined before the test code; the program's definitions never shadow it")
    entry_point: str | None = Field(
        None, max_length=200, description="the program's function under test: it replaces "
        "a stub of the same name in `setup` (HumanEval's prompt declares it)")


class SqlTest(_Strict):
    type: Literal["sql"] = "sql"
    setup_sql: str = ""
    expected_rows: list[list[Any]]
    ordered: bool = False


def _test_type(value: Any) -> str:
    """The tag; a test without `type` is a stdio test, as each model's default says."""
    if isinstance(value, dict):
        return str(value.get("type", "stdio"))
    return str(getattr(value, "type", "stdio"))


Test = Annotated[
    Annotated[StdioTest, Tag("stdio")] | Annotated[CallTest, Tag("call")]
    | Annotated[AssertTest, Tag("assert")] | Annotated[SqlTest, Tag("sql")],
    Discriminator(_test_type, custom_error_type="unknown_test_type",
                  custom_error_message="unknown test type (stdio, call, assert, sql)"),
]

FeedbackStyle = Literal["rlef", "plain"]


class ExecuteRequest(_Strict):
    id: str | None = Field(None, max_length=200, description="client id, echoed back")
    language: Language
    code: str
    tests: list[Test] = Field(min_length=1)
    limits: Limits = Limits()
    stop_on_first_failure: bool = False
    feedback_style: FeedbackStyle = "rlef"
    files: dict[str, str] = Field(
        {}, description="base64 contents by relative path, written into the build dir before "
        "compiling (SandboxFusion's `files`)")
    fetch_files: list[str] = Field(
        [], max_length=100, description="paths relative to the run dir, read back after the "
        "last test's run, base64 in the result's `files`")
    full_output: bool = Field(
        False, description="a single-test request's stdout/stderr whole and exact (up to "
        "output_kb), not an excerpt")
    compile_timeout_s: float | None = Field(
        None, gt=0, description="compile wall time, capped by the server's")

    @field_validator("files")
    @classmethod
    def _files_are_base64(cls, files: dict[str, str]) -> dict[str, str]:
        for path, data in files.items():
            try:
                base64.b64decode(data, validate=True)
            except (binascii.Error, ValueError):
                raise ValueError(f"files[{path[:200]!r}] is not base64") from None
        return files


class CompileResult(BaseModel):
    status: Literal["ok", "error", "skipped"]
    stderr: str = ""
    time_s: float = 0.0
    exit_code: int | None = None
    timed_out: bool = False


class TestResult(BaseModel):
    __test__ = False  # not a pytest class

    verdict: Verdict
    exit_code: int | None = None
    signal: int | None = None
    cpu_time_s: float = 0.0
    wall_time_s: float = 0.0
    max_rss_kb: int = 0
    stdout: str = ""
    stderr: str = ""
    input: str = ""
    expected: str = ""
    actual: str = ""
    message: str = ""


class ExecuteResult(BaseModel):
    id: str | None = None
    index: int | None = Field(None, description="position in its batch")
    status: Literal["ok", "sandbox_error"] = "ok"
    error: str = ""
    verdict: Verdict | None = None
    passed: int = 0
    total: int = 0
    compile: CompileResult = CompileResult(status="skipped")
    tests: list[TestResult] = []
    feedback: str = ""
    files: dict[str, str] = Field({}, description="fetched files: base64 by requested path")


class LanguageInfo(BaseModel):
    id: Language
    source_file: str
    compiled: bool
    version: str
    test_types: list[str]


class ErrorResponse(BaseModel):
    detail: Any


class BatchRequest(_Strict):
    requests: list[ExecuteRequest] = Field(min_length=1)


class BatchCreated(BaseModel):
    id: str
    total: int


class BatchStatus(BaseModel):
    id: str
    total: int
    done: int


class BatchResults(BaseModel):
    id: str
    done: bool
    total: int
    results: list[ExecuteResult] = Field(description="finished so far, in request order")


def render_feedback(results: list[TestResult], kinds: list[str],
                    compile_result: CompileResult | None = None,
                    style: FeedbackStyle = "rlef") -> str:
    """The feedback text the service shows a model (service/feedback.py renders it), for
    code outside the service that must use the same wording, e.g. a trainer's warm-up
    data: one source, so the two cannot drift apart."""
    from service.feedback import render

    return render(results, kinds, compile_result or CompileResult(status="skipped"), style)
