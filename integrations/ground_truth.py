"""Test suites as the RL stacks store them -> rlef tests.

Accepted shapes (a dict, or the same as a JSON string, as veRL's parquet columns hold it):
- rlef's own: a list of test objects (`{"type": "stdio", ...}`, `{"type": "call", ...}`).
- veRL / PRIME / SandboxFusion `in_outs`: `{"inputs": [...], "outputs": [...]}` (stdin and
  expected stdout), with `fn_name` for call-based problems (one JSON value per input line),
  or `assert_case` (Python asserts appended to the program).
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import TypeAdapter

from service.schema import AssertTest, CallTest, StdioTest, Test

TESTS: TypeAdapter[list[Test]] = TypeAdapter(list[Test])


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def _call_args(raw: Any) -> list[Any]:
    if isinstance(raw, list):
        return raw
    return [_json(line) for line in str(raw).split("\n") if line.strip()]


def _in_outs(spec: dict[str, Any]) -> list[Test]:
    asserts = spec.get("assert_case")
    if isinstance(asserts, list):
        return [AssertTest(code=a) for a in asserts if a]
    fn_name = spec.get("fn_name")
    tests: list[Test] = []
    for raw_in, raw_out in zip(spec["inputs"], spec["outputs"], strict=True):
        if fn_name:
            out = _json(raw_out) if isinstance(raw_out, str) else raw_out
            expected = out[0] if isinstance(out, list) and len(out) == 1 else out
            tests.append(CallTest(entry_point=fn_name, args=_call_args(raw_in), expected=expected))
        else:
            stdout = "\n".join(map(str, raw_out)) if isinstance(raw_out, list) else str(raw_out)
            tests.append(StdioTest(stdin=str(raw_in), expected_stdout=stdout))
    return tests


def to_tests(spec: Any) -> list[Test]:
    """Raises ValueError with the reason for a suite in none of the accepted shapes."""
    if isinstance(spec, str):
        spec = _json(spec)
    if isinstance(spec, list):
        return TESTS.validate_python(spec)
    if isinstance(spec, dict) and ("assert_case" in spec or {"inputs", "outputs"} <= set(spec)):
        return _in_outs(spec)
    raise ValueError("tests must be a list of rlef tests or an {'inputs', 'outputs'} object, "
                     f"not {type(spec).__name__}")
