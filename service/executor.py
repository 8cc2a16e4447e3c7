"""One job end to end: compile once, run every test in a warm sandbox, judge, feedback.

The only place where a request meets a sandbox. An infrastructure failure anywhere
below becomes `status: sandbox_error`, logged with its traceback, never a verdict.
"""

from __future__ import annotations

import base64
import logging
import secrets
from dataclasses import dataclass, replace

from service import compile_cache, feedback, judge
from service.languages import BUILD_DIR, LANGUAGES, LanguageSpec, sandbox_env
from service.sandbox.base import (
    PutRejected,
    RunLimits,
    RunOutcome,
    RunSpec,
    Sandbox,
    SandboxError,
    Session,
)
from service.schema import (
    CallTest,
    CompileResult,
    ExecuteRequest,
    ExecuteResult,
    Limits,
    SqlTest,
    StdioTest,
    Test,
    TestResult,
    Verdict,
)
from service.settings import Settings

log = logging.getLogger(__name__)

@dataclass(frozen=True)
class ExecutorConfig:
    """How the executor runs every job: compile and checker limits, feedback size."""

    compile_limits: RunLimits
    checker_limits: RunLimits
    feedback_max_chars: int = 2000


def run_limits(limits: Limits, address_space: bool) -> RunLimits:
    return RunLimits(cpu_time_s=limits.cpu_time_s, wall_time_s=limits.wall_time_s,
                     memory_mb=limits.memory_mb, output_kb=limits.output_kb, pids=limits.pids,
                     address_space=address_space)


def plan_test(test: Test, spec: LanguageSpec, code: str, limits: Limits,
              nonce: str, files: dict[str, bytes] | None = None,
              fetch: tuple[str, ...] = ()) -> RunSpec:
    """Pure: how to run one test of a submission. `files` go into a stdio run's own dir
    (where SandboxFusion's programs find theirs), `fetch` is read back from it."""
    env = sandbox_env(spec)
    rl = run_limits(limits, spec.address_space_limit)
    program = f"{BUILD_DIR}/{spec.source_name(code)}"
    if isinstance(test, StdioTest):
        if spec.id == "python":  # forked from the warm interpreter
            return RunSpec(argv=[program], kind="script", limits=rl, env=env,
                           stdin=test.stdin, files=files or {}, fetch=fetch)
        return RunSpec(argv=spec.run_argv(code, limits.memory_mb), limits=rl, env=env,
                       stdin=test.stdin, files=files or {}, fetch=fetch)
    if isinstance(test, CallTest):
        return RunSpec(argv=[program], kind="call", limits=rl, env=env, spec={
            "entry_point": test.entry_point, "args": test.args, "kwargs": test.kwargs,
            "nonce": nonce})
    if isinstance(test, SqlTest):
        return RunSpec(argv=[program], kind="sql", limits=rl, env=env,
                       spec={"setup_sql": test.setup_sql, "nonce": nonce})
    return RunSpec(argv=[program], kind="assert", limits=rl, env=env, spec={
        "code": test.code, "setup": test.setup, "entry_point": test.entry_point,
        "nonce": nonce})


def plan_checker(test: StdioTest, actual: bytes, limits: RunLimits) -> RunSpec:
    """The problem's checker, in a fresh directory of its own, with its own copies."""
    files = {"checker.py": (test.checker_code or "").encode(), "input": test.stdin.encode(),
             "expected": test.expected_stdout.encode(), "actual": actual}
    return RunSpec(argv=["checker.py", "input", "expected", "actual"], kind="script",
                   limits=limits, env=sandbox_env(LANGUAGES["python"]), files=files)


def compile_submission(session: Session, spec: LanguageSpec, code: str, exec_config: ExecutorConfig,
                       files: dict[str, bytes] | None = None,
                       wall_s: float | None = None) -> CompileResult:
    files = files or {}
    try:
        session.put({**files, spec.source_name(code): code.encode()})
    except PutRejected as e:
        return CompileResult(status="error", stderr=str(e))
    argv = spec.compile_argv(code)
    if argv is None:
        return CompileResult(status="skipped")
    limits = exec_config.compile_limits
    limits = RunLimits(**{**limits.to_wire(), "address_space": spec.compile_address_space_limit})
    if wall_s is not None:
        limits = replace(limits, wall_time_s=min(limits.wall_time_s, wall_s),
                         cpu_time_s=min(limits.cpu_time_s, wall_s))
    session.limit_memory(limits.memory_mb)
    names = compile_cache.ARTIFACTS.get(spec.id, ())
    key = compile_cache.cache_key(spec.id, code, files, argv)
    with compile_cache.CACHE.claim(key) as hit:
        if hit is not None and restore(session, spec, hit, limits):
            return hit.result
        if names:
            limits = replace(limits, output_kb=max(limits.output_kb, compile_cache.ARTIFACT_KB))
        try:
            out = session.run(RunSpec(argv=argv, limits=limits, env=sandbox_env(spec),
                                      in_build_dir=True, fetch=names))
        except SandboxError:
            if not session.memory_exhausted():
                raise
            # the compiler took the sandbox down with it (gVisor): the source's fault
            return CompileResult(status="error", stderr=(
                f"Compilation ran out of memory ({limits.memory_mb} MB)."))
        result = compile_result(out, limits)
        # a compile cut short by a limit is not the source's verdict: another request's
        # limits may let it through
        limited = out.timed_out or out.output_exceeded or bool(out.oom_killed)
        if names and not limited and (result.status == "error" or set(names) <= set(out.files)):
            compile_cache.CACHE.put(key, compile_cache.Entry(result, dict(out.files)))
        return result


def restore(session: Session, spec: LanguageSpec, hit: compile_cache.Entry,
            limits: RunLimits) -> bool:
    """A cached compile back in this build dir (put() writes no exec bit: chmod does)."""
    if hit.result.status != "ok":
        return True
    session.put(hit.artifacts)
    out = session.run(RunSpec(argv=["chmod", "755", *hit.artifacts], limits=limits,
                              env=sandbox_env(spec), in_build_dir=True))
    return out.ok


def compile_result(out: RunOutcome, limits: RunLimits) -> CompileResult:
    if out.ok and not out.oom_killed:
        return CompileResult(status="ok", time_s=out.wall_time_s, exit_code=0)
    message = judge.text(out.stderr) + judge.text(out.stdout)
    if out.oom_killed:
        message = f"Compilation ran out of memory ({limits.memory_mb} MB).\n" + message
    elif out.timed_out or out.output_exceeded:
        message = "Compilation took too long or printed too much.\n" + message
    return CompileResult(status="error", stderr=judge.excerpt(message.strip(), 4000),
                         time_s=out.wall_time_s, exit_code=out.exit_code,
                         timed_out=out.timed_out)


BATCH_OUTPUT_BYTES = 32 << 20  # bounds one answer frame: tests per round trip x output cap


def run_tests(session: Session, req: ExecuteRequest, spec: LanguageSpec,
              exec_config: ExecutorConfig,
              fetched: dict[str, bytes] | None = None) -> list[TestResult]:
    """`fetched` receives the request's fetch_files, read after the last test's run."""
    session.limit_memory(req.limits.memory_mb)
    if req.stop_on_first_failure:
        return run_tests_in_turn(session, req, spec, exec_config)
    nonces = [secrets.token_hex(16) for _ in req.tests]
    files, last = decoded(req.files), len(req.tests) - 1
    plans = [plan_test(t, spec, req.code, req.limits, n, files,
                       tuple(req.fetch_files) if i == last else ())
             for i, (t, n) in enumerate(zip(req.tests, nonces, strict=True))]
    per_frame = max(1, BATCH_OUTPUT_BYTES // (2 * req.limits.output_kb * 1024))
    results: list[TestResult] = []
    for start in range(0, len(plans), per_frame):
        # judged frame by frame: one frame's raw output is held at a time, not the job's
        end = start + per_frame
        frame = session.run_many(plans[start:end])
        if fetched is not None and end >= len(plans) and frame:
            fetched.update(frame[-1].files)
        results += [_judged(session, req, spec, exec_config, test, outcome, nonce)
                    for test, outcome, nonce in zip(req.tests[start:end], frame,
                                                    nonces[start:end], strict=True)]
    return results


def decoded(files: dict[str, str]) -> dict[str, bytes]:
    """The request's files (validated as base64 at the API)."""
    return {path: base64.b64decode(data) for path, data in files.items()}


def run_tests_in_turn(session: Session, req: ExecuteRequest, spec: LanguageSpec,
                      exec_config: ExecutorConfig) -> list[TestResult]:
    """One test at a time, so that the first failure stops the rest."""
    results: list[TestResult] = []
    failed = False
    for test in req.tests:
        if failed:
            results.append(TestResult(verdict=Verdict.skipped, input=judge.describe_input(test)))
            continue
        nonce = secrets.token_hex(16)
        outcome = session.run(plan_test(test, spec, req.code, req.limits, nonce))
        result = _judged(session, req, spec, exec_config, test, outcome, nonce)
        failed = failed or result.verdict != Verdict.accepted
        results.append(result)
    return results


def _judged(session: Session, req: ExecuteRequest, spec: LanguageSpec, exec_config: ExecutorConfig,
            test: Test, outcome: RunOutcome, nonce: str) -> TestResult:
    """The test's verdict, after its checker program has run where it has one."""
    checker = _run_checker(session, test, outcome, exec_config)
    result = judge.judge(test, outcome, req.limits, spec.oom_markers, nonce, checker,
                         keep_bytes=judge.keep_per_test(len(req.tests)))
    # the caller compares the output itself: all of it, as printed (one test only, so that
    # a job's results stay bounded: see judge.keep_per_test)
    if req.full_output and len(req.tests) == 1:
        result = result.model_copy(update={"stdout": judge.text(outcome.stdout),
                                           "stderr": judge.text(outcome.stderr)})
    return result


def _run_checker(session: Session, test: Test, outcome: RunOutcome,
                 exec_config: ExecutorConfig) -> RunOutcome | None:
    if not (isinstance(test, StdioTest) and test.checker == "program" and outcome.ok):
        return None
    return session.run(plan_checker(test, outcome.stdout, exec_config.checker_limits))


def assemble(req: ExecuteRequest, compiled: CompileResult, results: list[TestResult],
             exec_config: ExecutorConfig) -> ExecuteResult:
    kinds = [t.type for t in req.tests]
    return ExecuteResult(
        id=req.id,
        verdict=judge.overall_verdict(results),
        passed=sum(r.verdict == Verdict.accepted for r in results),
        total=len(results),
        compile=compiled,
        tests=results,
        feedback=feedback.render(results, kinds, compiled, req.feedback_style,
                                 max_chars=exec_config.feedback_max_chars),
    )


def execute_in(session: Session, req: ExecuteRequest, exec_config: ExecutorConfig) -> ExecuteResult:
    spec = LANGUAGES[req.language]
    compiled = compile_submission(session, spec, req.code, exec_config, decoded(req.files),
                                  req.compile_timeout_s)
    fetched: dict[str, bytes] = {}
    if compiled.status == "error":
        message = judge.error_tail(compiled.stderr, 3)
        results = [TestResult(verdict=Verdict.compile_error, input=judge.describe_input(t),
                              message=message) for t in req.tests]
    else:
        results = run_tests(session, req, spec, exec_config, fetched)
    result = assemble(req, compiled, results, exec_config)
    result.files = {p: base64.b64encode(v).decode() for p, v in fetched.items()}
    return result


def out_of_memory(req: ExecuteRequest, exec_config: ExecutorConfig) -> ExecuteResult:
    """The program took so much memory that the sandbox itself was OOM-killed: its fault,
    whichever test it was on."""
    message = f"Out of memory: the program exhausted its {req.limits.memory_mb} MB."
    results = [TestResult(verdict=Verdict.memory_limit_exceeded, message=message,
                          input=judge.describe_input(t)) for t in req.tests]
    return assemble(req, CompileResult(status="skipped"), results, exec_config)


def execute(req: ExecuteRequest, sandbox: Sandbox, exec_config: ExecutorConfig) -> ExecuteResult:
    try:
        with sandbox.session() as session:
            try:
                return execute_in(session, req, exec_config)
            except SandboxError:
                if session.memory_exhausted():
                    log.info("job %s: sandbox OOM-killed by the program", req.id)
                    return out_of_memory(req, exec_config)
                raise
    except SandboxError as e:
        log.exception("sandbox failure on job %s", req.id)
        return ExecuteResult(id=req.id, status="sandbox_error", error=str(e),
                             total=len(req.tests))


def executor_config(settings: Settings) -> ExecutorConfig:
    compile_limits = RunLimits(
        cpu_time_s=settings.compile_cpu_time_s, wall_time_s=settings.compile_wall_time_s,
        memory_mb=settings.compile_memory_mb, output_kb=256, pids=128)
    checker_limits = RunLimits(cpu_time_s=10, wall_time_s=20, memory_mb=1024, output_kb=64,
                               pids=16)
    return ExecutorConfig(compile_limits=compile_limits, checker_limits=checker_limits,
                  feedback_max_chars=settings.feedback_max_chars)
