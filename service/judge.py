"""Pure judging: (test, run outcome) -> test verdict. No I/O.

Limits are judged first (output, time, memory), then crashes, then the answer itself.
"""

from __future__ import annotations

import json
import math
import signal
from collections import Counter
from typing import Any

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

EXCERPT = 400


def text(data: bytes) -> str:
    """Program output as valid text whatever bytes it printed."""
    return data.decode("utf-8", errors="replace")


def excerpt(s: str, limit: int = EXCERPT) -> str:
    return s if len(s) <= limit else s[:limit] + f"...({len(s) - limit} more chars)"


def error_tail(stderr: str, lines: int = 6) -> str:
    kept = [ln for ln in stderr.strip().splitlines() if ln.strip()]
    return "\n".join(kept[-lines:])


# --- output comparison -------------------------------------------------------------------

def _is_close(a: float, b: float, abs_tol: float, rel_tol: float) -> bool:
    return math.isclose(a, b, rel_tol=rel_tol, abs_tol=abs_tol)


def _float_token_eq(e: str, a: str, abs_tol: float, rel_tol: float) -> bool:
    if e == a:
        return True
    try:
        fe, fa = float(e), float(a)
    except ValueError:
        return False
    if math.isnan(fe) or math.isnan(fa):
        return math.isnan(fe) and math.isnan(fa)
    return _is_close(fe, fa, abs_tol, rel_tol)


def compare_output(checker: str, expected: str, actual: str,
                   abs_tol: float = 1e-6, rel_tol: float = 1e-6) -> bool:
    if checker == "exact":
        return expected == actual
    if checker == "lines":
        return [ln.rstrip() for ln in expected.rstrip("\n").split("\n")] == \
               [ln.rstrip() for ln in actual.rstrip("\n").split("\n")]
    if checker == "unordered_lines":
        return Counter(ln.strip() for ln in expected.strip().splitlines()) == \
               Counter(ln.strip() for ln in actual.strip().splitlines())
    e_tok, a_tok = expected.split(), actual.split()
    if checker == "float":
        return len(e_tok) == len(a_tok) and all(
            _float_token_eq(e, a, abs_tol, rel_tol) for e, a in zip(e_tok, a_tok, strict=True))
    return e_tok == a_tok  # "tokens"


def values_equal(expected: Any, actual: Any, abs_tol: float = 1e-6, rel_tol: float = 1e-6) -> bool:
    """JSON values: lists and tuples alike, floats within tolerance, bool is not int."""
    if isinstance(expected, bool) or isinstance(actual, bool):
        return type(expected) is type(actual) and expected == actual
    if isinstance(expected, int | float) and isinstance(actual, int | float):
        if isinstance(expected, int) and isinstance(actual, int):
            return expected == actual
        return _float_token_eq(repr(float(expected)), repr(float(actual)), abs_tol, rel_tol)
    if isinstance(expected, list) and isinstance(actual, list):
        return len(expected) == len(actual) and all(
            values_equal(e, a, abs_tol, rel_tol) for e, a in zip(expected, actual, strict=True))
    if isinstance(expected, dict) and isinstance(actual, dict):
        return expected.keys() == actual.keys() and all(
            values_equal(expected[k], actual[k], abs_tol, rel_tol) for k in expected)
    return bool(expected == actual)


def rows_equal(expected: list[list[Any]], actual: list[list[Any]], ordered: bool) -> bool:
    if not ordered:
        def key(row: list[Any]) -> str:
            return json.dumps(row, sort_keys=True, default=str)
        expected, actual = sorted(expected, key=key), sorted(actual, key=key)
    return values_equal(expected, actual)


# --- verdicts ------------------------------------------------------------------------------

def limit_verdict(outcome: RunOutcome, limits: Limits, oom_markers: tuple[str, ...],
                  ) -> Verdict | None:
    """A verdict from how the run ended, before looking at its answer; None if it ran fine."""
    if outcome.output_exceeded:
        return Verdict.output_limit_exceeded
    if (outcome.timed_out or outcome.signal == signal.SIGXCPU
            or outcome.cpu_time_s > limits.cpu_time_s):
        return Verdict.time_limit_exceeded
    stderr_tail = text(outcome.stderr[-4096:])
    limit_kb = limits.memory_mb * 1024
    oom = any(m in stderr_tail for m in oom_markers) or outcome.max_rss_kb >= 0.97 * limit_kb
    # A big process SIGKILLed without a timeout or output cut: the cgroup's OOM killer.
    oom_killed = outcome.signal == signal.SIGKILL and outcome.max_rss_kb >= limit_kb // 2
    if (oom or oom_killed) and outcome.exit_code != 0:
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


def base_result(outcome: RunOutcome, verdict: Verdict, output_kb: int) -> TestResult:
    return TestResult(
        verdict=verdict,
        exit_code=outcome.exit_code,
        signal=outcome.signal,
        cpu_time_s=outcome.cpu_time_s,
        wall_time_s=outcome.wall_time_s,
        max_rss_kb=outcome.max_rss_kb,
        stdout=excerpt(text(outcome.stdout), min(output_kb * 1024, 64 * 1024)),
        stderr=excerpt(text(outcome.stderr), 8 * 1024),
    )


def read_channel(outcome: RunOutcome, nonce: str) -> dict[str, Any] | None:
    """The harness's result, or None when the program did not finish its tests honestly."""
    try:
        payload = json.loads(outcome.channel.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    if not isinstance(payload, dict) or payload.get("nonce") != nonce:
        return None
    return payload


def describe_call(test: CallTest) -> str:
    args = [json.dumps(a) for a in test.args]
    args += [f"{k}={json.dumps(v)}" for k, v in test.kwargs.items()]
    return f"{test.entry_point}({', '.join(args)})"


def stdio_answer(test: StdioTest, actual: str) -> bool:
    return compare_output(test.checker, test.expected_stdout, actual, test.abs_tol, test.rel_tol)


def judge(test: Test, outcome: RunOutcome, limits: Limits, oom_markers: tuple[str, ...],
          nonce: str, checker: RunOutcome | None = None) -> TestResult:
    """The verdict of one test from its run (and, for checker='program', the checker's run)."""
    verdict = limit_verdict(outcome, limits, oom_markers)
    result = base_result(outcome, verdict or Verdict.accepted, limits.output_kb)
    result.input = describe_input(test)
    if verdict is not None:
        result.message = limit_message(verdict, outcome)
        return result
    if isinstance(test, StdioTest):
        return _judge_stdio(test, result, text(outcome.stdout), checker)
    payload = read_channel(outcome, nonce)
    if payload is None:
        result.verdict = Verdict.runtime_error
        result.message = "The program exited before its tests finished."
        return result
    if isinstance(test, CallTest):
        result.expected = excerpt(json.dumps(test.expected))
        result.actual = excerpt(json.dumps(payload.get("result")))
        ok = values_equal(test.expected, payload.get("result"), test.abs_tol, test.rel_tol)
    elif isinstance(test, SqlTest):
        rows = payload.get("rows", [])
        result.expected = excerpt(json.dumps(test.expected_rows))
        result.actual = excerpt(json.dumps(rows, default=str))
        ok = rows_equal(test.expected_rows, rows, test.ordered)
    else:
        ok = payload.get("done") is True
    result.verdict = Verdict.accepted if ok else Verdict.wrong_answer
    return result


def _judge_stdio(test: StdioTest, result: TestResult, actual: str,
                 checker: RunOutcome | None) -> TestResult:
    result.expected = excerpt(test.expected_stdout)
    result.actual = excerpt(actual)
    if test.checker == "program":
        ok = checker is not None and checker.ok
        if checker is not None and not ok:
            result.message = excerpt(text(checker.stdout).strip() or text(checker.stderr).strip())
    else:
        ok = stdio_answer(test, actual)
    result.verdict = Verdict.accepted if ok else Verdict.wrong_answer
    return result


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
