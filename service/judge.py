"""Pure judging: (test, run outcome) -> test verdict. No I/O.

Limits are judged first (output, time, memory), then crashes, then the answer itself.
Total: nothing a program prints or returns can raise here. The result channel is parsed
within bounds (size, nesting, int digits), compared with service.compare (which never
raises), and anything odd becomes a verdict with a message saying why.
"""

from __future__ import annotations

import json
import signal
from typing import Any

from service.compare import MAX_DEPTH, compare_output, rows_equal, values_equal
from service.sandbox.base import RunOutcome
from service.schema import (
    AssertTest,
    CallTest,
    Limits,
    SqlTest,
    StdioTest,
    Test,
    TestResult,
    Verdict,
)

__all__ = ["compare_output", "rows_equal", "values_equal", "judge", "limit_verdict"]

EXCERPT = 400
# A channel payload beyond this cannot be an honest answer: the expected value is at most
# a few times smaller once JSON spacing and float digits are allowed for.
CHANNEL_SLACK = 1 << 20
EXITED_EARLY = "The program exited before its tests finished."
KEEP_BYTES = 64 * 1024  # stdout kept in a test's result
STDERR_KEEP = 8 * 1024
JOB_KEEP_BYTES = 4 << 20  # stdout kept over all of a job's results (stderr: as much again)


def keep_per_test(tests: int) -> int:
    """Output bytes each test's result may keep so that a job's stay near JOB_KEEP_BYTES."""
    return max(1024, min(KEEP_BYTES, JOB_KEEP_BYTES // max(1, tests)))


def text(data: bytes) -> str:
    """Program output as valid text whatever bytes it printed."""
    return data.decode("utf-8", errors="replace")


def clean(s: str) -> str:
    """A string from the program as valid UTF-8 text (lone surrogates cannot be sent)."""
    return s.encode("utf-8", "surrogatepass").decode("utf-8", "replace")


def excerpt(s: str, limit: int = EXCERPT) -> str:
    return s if len(s) <= limit else s[:limit] + f"...({len(s) - limit} more chars)"


def error_tail(stderr: str, lines: int = 6) -> str:
    kept = [ln for ln in stderr.strip().splitlines() if ln.strip()]
    return "\n".join(kept[-lines:])


def show(value: Any) -> str:
    """A JSON excerpt of a value, whatever the value is."""
    try:
        return excerpt(json.dumps(value, default=str))
    except (ValueError, TypeError, RecursionError) as e:
        return f"<a {type(value).__name__} that cannot be shown: {excerpt(str(e), 80)}>"


# --- verdicts from how the run ended -------------------------------------------------------

def memory_exceeded(outcome: RunOutcome, limits: Limits, oom_markers: tuple[str, ...]) -> bool:
    """Over the limit is over the limit, however the program ended."""
    failed_alloc = outcome.exit_code != 0 and any(
        m in text(outcome.stderr[-4096:]) for m in oom_markers)
    if outcome.oom_killed is not None:  # the sandbox's memory cgroup watched the run
        return outcome.oom_killed or failed_alloc
    # rlimits only (no cgroup): a peak over the limit, a failed allocation, or a big
    # process SIGKILLed without a timeout or output cut (the container's cap)
    limit_kb = limits.memory_mb * 1024
    peak = outcome.max_rss_kb
    killed_big = outcome.signal == signal.SIGKILL and peak >= limit_kb // 2
    return peak > limit_kb or (outcome.exit_code != 0 and (
        failed_alloc or peak >= 0.97 * limit_kb or killed_big))


def limit_verdict(outcome: RunOutcome, limits: Limits, oom_markers: tuple[str, ...],
                  ) -> Verdict | None:
    """A verdict from how the run ended, before looking at its answer; None if it ran fine."""
    if outcome.output_exceeded:
        return Verdict.output_limit_exceeded
    if (outcome.timed_out or outcome.signal == signal.SIGXCPU
            or outcome.cpu_time_s > limits.cpu_time_s):
        return Verdict.time_limit_exceeded
    if memory_exceeded(outcome, limits, oom_markers):
        return Verdict.memory_limit_exceeded
    if outcome.spawn_error or outcome.exit_code != 0:
        return Verdict.runtime_error
    return None


def limit_message(verdict: Verdict, outcome: RunOutcome) -> str:
    if verdict == Verdict.time_limit_exceeded:
        return "Execution took too long."
    if verdict == Verdict.memory_limit_exceeded:
        return "Out of memory."
    if verdict == Verdict.output_limit_exceeded:
        return "Output limit exceeded."
    if outcome.spawn_error:
        return outcome.spawn_error
    tail = error_tail(text(outcome.stderr))
    if outcome.signal is not None:
        try:
            name = signal.Signals(outcome.signal).name
        except ValueError:
            name = str(outcome.signal)
        return (tail + "\n" if tail else "") + f"Killed by signal {name}."
    return tail or f"Exited with code {outcome.exit_code}."


def base_result(outcome: RunOutcome, verdict: Verdict, output_kb: int,
                keep_bytes: int = KEEP_BYTES) -> TestResult:
    keep = min(output_kb * 1024, keep_bytes)
    return TestResult(
        verdict=verdict,
        exit_code=outcome.exit_code,
        signal=outcome.signal,
        cpu_time_s=outcome.cpu_time_s,
        wall_time_s=outcome.wall_time_s,
        max_rss_kb=outcome.max_rss_kb,
        # decode only the head: the excerpt is all that is kept
        stdout=excerpt(text(outcome.stdout[:keep + 4]), keep),
        stderr=excerpt(text(outcome.stderr[:STDERR_KEEP + 4]), min(STDERR_KEEP, keep)),
    )


# --- the result channel -----------------------------------------------------------------

class Unreadable(ValueError):
    """The channel holds no payload the host can use; the message says why."""


def too_deep(value: Any, limit: int = MAX_DEPTH) -> bool:
    stack = [(value, 0)]
    while stack:
        v, depth = stack.pop()
        if depth > limit:
            return True
        if isinstance(v, list):
            stack.extend((x, depth + 1) for x in v)
        elif isinstance(v, dict):
            stack.extend((x, depth + 1) for x in v.values())
    return False


def parse_channel(data: bytes, nonce: str, max_bytes: int) -> dict[str, Any] | None:
    """The harness's payload; None when there is none with this job's nonce.

    Raises Unreadable for a payload the host refuses to read (too big, too deep, an int
    beyond Python's digit limit, invalid JSON...).
    """
    if not data:
        return None
    if len(data) > max_bytes:
        raise Unreadable(f"the result is too large ({len(data)} bytes)")
    try:
        payload = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as e:  # ValueError: huge ints
        raise Unreadable(f"the result is not readable JSON: {excerpt(str(e), 120)}") from None
    if not isinstance(payload, dict) or payload.get("nonce") != nonce:
        return None
    if too_deep(payload):
        raise Unreadable(f"the result is nested more than {MAX_DEPTH} levels deep")
    return payload


def channel_cap(test: Test) -> int:
    if isinstance(test, CallTest):
        return CHANNEL_SLACK + 4 * len(show_full(test.expected))
    if isinstance(test, SqlTest):
        return CHANNEL_SLACK + 4 * len(show_full(test.expected_rows))
    return CHANNEL_SLACK


def show_full(value: Any) -> str:
    try:
        return json.dumps(value)
    except (ValueError, TypeError, RecursionError):
        return ""


# --- verdicts from the answer -------------------------------------------------------------

def judge(test: Test, outcome: RunOutcome, limits: Limits, oom_markers: tuple[str, ...],
          nonce: str, checker: RunOutcome | None = None,
          keep_bytes: int = KEEP_BYTES) -> TestResult:
    """The verdict of one test from its run (and, for checker='program', the checker's run).

    The result keeps at most `keep_bytes` of stdout (and of stderr): once judged, the
    outcome's raw bytes can be dropped. The caller divides a per-job budget over its tests
    (see keep_per_test) so that a job's results stay bounded whatever its programs print.
    """
    verdict = limit_verdict(outcome, limits, oom_markers)
    result = base_result(outcome, verdict or Verdict.accepted, limits.output_kb, keep_bytes)
    result.input = describe_input(test)
    if verdict is not None:
        result.message = limit_message(verdict, outcome)
        return result
    if isinstance(test, StdioTest):
        return _judge_stdio(test, result, text(outcome.stdout), checker)
    try:
        payload = parse_channel(outcome.channel, nonce, channel_cap(test))
    except Unreadable as e:
        bad = Verdict.runtime_error if isinstance(test, AssertTest) else Verdict.wrong_answer
        return _verdict(result, bad, str(e))
    if payload is None:
        return _verdict(result, Verdict.runtime_error, EXITED_EARLY)
    if isinstance(test, AssertTest):
        return _judge_assert(result, payload)
    return _judge_value(test, result, payload)


def _judge_value(test: CallTest | SqlTest, result: TestResult,
                 payload: dict[str, Any]) -> TestResult:
    """A call's return value or a query's rows against the expected ones."""
    key = "result" if isinstance(test, CallTest) else "rows"
    if key not in payload:
        return _verdict(result, Verdict.runtime_error, EXITED_EARLY)
    actual = payload[key]
    result.actual = clean(show(actual))
    if isinstance(test, CallTest):
        result.expected = show(test.expected)
        ok = values_equal(test.expected, actual, test.abs_tol, test.rel_tol)
    else:
        result.expected = show(test.expected_rows)
        ok = rows_equal(test.expected_rows, actual, test.ordered)
    return _verdict(result, Verdict.accepted if ok else Verdict.wrong_answer)


def _verdict(result: TestResult, verdict: Verdict, message: str = "") -> TestResult:
    result.verdict = verdict
    if message:
        result.message = message
    return result


def _judge_assert(result: TestResult, payload: dict[str, Any]) -> TestResult:
    """The trusted test process's report: passed, failed (an assert) or error."""
    status, message = payload.get("status"), payload.get("message")
    message = clean(excerpt(message, 2000)) if isinstance(message, str) else ""
    if status == "passed":
        return _verdict(result, Verdict.accepted)
    if status == "failed":
        return _verdict(result, Verdict.wrong_answer, message or "An assertion failed.")
    if status == "error":
        return _verdict(result, Verdict.runtime_error, message or "The tests raised an error.")
    return _verdict(result, Verdict.runtime_error, EXITED_EARLY)


def _judge_stdio(test: StdioTest, result: TestResult, actual: str,
                 checker: RunOutcome | None) -> TestResult:
    result.expected = excerpt(test.expected_stdout)
    result.actual = excerpt(actual)
    if test.checker == "program":
        ok = checker is not None and checker.ok
        if checker is not None and not ok:
            result.message = excerpt(text(checker.stdout).strip() or text(checker.stderr).strip())
    else:
        ok = compare_output(test.checker, test.expected_stdout, actual, test.abs_tol,
                            test.rel_tol)
    return _verdict(result, Verdict.accepted if ok else Verdict.wrong_answer)


def describe_call(test: CallTest) -> str:
    args = [show_full(a) for a in test.args]
    args += [f"{k}={show_full(v)}" for k, v in test.kwargs.items()]
    return f"{test.entry_point}({', '.join(args)})"


def describe_input(test: Test) -> str:
    if isinstance(test, StdioTest):
        return excerpt(test.stdin)
    if isinstance(test, CallTest):
        return excerpt(describe_call(test))
    if isinstance(test, AssertTest):
        return excerpt(test.code)
    return excerpt(test.setup_sql)


def overall_verdict(results: list[TestResult]) -> Verdict:
    for r in results:
        if r.verdict not in (Verdict.accepted, Verdict.skipped):
            return r.verdict
    return Verdict.accepted
