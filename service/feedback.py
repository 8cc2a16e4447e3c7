"""Pure: execution results -> the text a model reads between turns.

The default style follows the RLEF paper's template; "plain" drops the prompt wording.
Deterministic for the same results; long values and the whole text are capped.
"""

from __future__ import annotations

from collections.abc import Sequence

from service.schema import CompileResult, FeedbackStyle, TestResult, Verdict

MARK = "...(truncated)"


def clip(s: str, limit: int) -> str:
    s = s.rstrip("\n")
    return s if len(s) <= limit else s[:limit] + MARK


def _failure_reason(r: TestResult) -> str:
    if r.verdict == Verdict.time_limit_exceeded:
        return "Execution took too long."
    if r.verdict == Verdict.memory_limit_exceeded:
        return "Out of memory."
    if r.verdict == Verdict.output_limit_exceeded:
        return "Output limit exceeded."
    return r.message


def _rlef_line(r: TestResult, kind: str, value_chars: int) -> str:
    if kind in ("call", "assert"):
        test = clip(r.input.strip(), value_chars)
        if r.verdict == Verdict.wrong_answer and kind == "call":
            error = (f"Expected {clip(r.expected, value_chars)} but got "
                     f"{clip(r.actual, value_chars)}")
        elif r.verdict == Verdict.wrong_answer:  # the trusted test process quotes the assert
            error = clip(r.message or "assertion failed", value_chars)
        else:
            error = clip(_failure_reason(r), value_chars)
        return f"Failure: '{test}': '{error}'"
    prefix = f"- input '{clip(r.input, value_chars)}' failed:"
    if r.verdict == Verdict.wrong_answer:
        if r.message:  # a checker program's verdict
            return f"{prefix} {clip(r.message, value_chars)}"
        return (f"{prefix} Expected output '{clip(r.expected, value_chars)}' "
                f"but got '{clip(r.actual, value_chars)}'")
    return f"{prefix} {clip(_failure_reason(r), value_chars)}"


def _plain_line(i: int, r: TestResult, value_chars: int) -> str:
    lines = [f"test {i + 1}: {r.verdict.value}", f"input: {clip(r.input, value_chars)}"]
    if r.verdict == Verdict.wrong_answer and not r.message:
        lines += [f"expected: {clip(r.expected, value_chars)}",
                  f"got: {clip(r.actual, value_chars)}"]
    else:
        lines.append(f"error: {clip(_failure_reason(r), value_chars)}")
    return "\n".join(lines)


def render(results: list[TestResult], kinds: Sequence[str], compile_result: CompileResult,
           style: FeedbackStyle = "rlef", max_chars: int = 2000, value_chars: int = 200) -> str:
    """kinds[i] is the type of test i ("stdio", "call", "assert", "sql")."""
    if compile_result.status == "error":
        head = "Your code failed to compile:" if style == "rlef" else "compile error:"
        errors = "\n".join(compile_result.stderr.strip().splitlines()[:20])
        return clip(f"{head}\n{errors}", max_chars)
    failed = [(i, r) for i, r in enumerate(results)
              if r.verdict not in (Verdict.accepted, Verdict.skipped)]
    if not failed:
        return "All tests passed." if style == "rlef" else "all tests passed"
    out = ["Your code failed the following tests:", ""] if style == "rlef" else []
    used = sum(len(s) + 1 for s in out)
    for shown, (i, r) in enumerate(failed):
        line = (_rlef_line(r, kinds[i], value_chars) if style == "rlef"
                else _plain_line(i, r, value_chars))
        if used + len(line) + 1 > max_chars and shown > 0:
            out.append(f"... and {len(failed) - shown} more failing tests")
            break
        out.append(clip(line, max_chars - used))
        used += len(out[-1]) + 1
    return "\n".join(out)
