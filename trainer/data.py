"""Problem sets -> one `Problem` model. Bad records are reported, never silently dropped."""

from __future__ import annotations

import ast
import gzip
import json
import logging
import random
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from service.schema import AssertTest, CallTest, Language, StdioTest, Test

log = logging.getLogger(__name__)


class Problem(BaseModel):
    id: str
    statement: str
    language: Language = "python"
    public_tests: list[Test]
    private_tests: list[Test] = []
    time_limit_s: float | None = None
    memory_mb: int | None = None
    starter_code: str = ""


class DataError(ValueError):
    """A data file that cannot be read at all (bad records alone are skipped and counted)."""


class LoadReport(BaseModel):
    loaded: int = 0
    bad: list[str] = []


def _literal(text: str) -> Any:
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def _entry_point(starter: str) -> str | None:
    m = re.search(r"def\s+(\w+)\s*\(", starter or "")
    return m.group(1) if m else None


def apps_tests(io: Any, entry: str | None) -> list[Test]:
    cases = _literal(io) if isinstance(io, str) else io
    tests: list[Test] = []
    for case in cases:
        out = case["output"]
        if entry:
            args = [_literal(line) for line in str(case["input"]).split("\n")]
            expected = out[0] if isinstance(out, list) and len(out) == 1 else out
            tests.append(CallTest(entry_point=entry, args=args, expected=expected))
        else:
            stdout = "\n".join(map(str, out)) if isinstance(out, list) else str(out)
            tests.append(StdioTest(stdin=str(case["input"]), expected_stdout=stdout))
    return tests


def from_apps(row: dict[str, Any]) -> Problem:
    entry = _entry_point(row.get("starter_code") or "")
    public = apps_tests(row["sample_io"], entry)
    private = apps_tests(row["test_list"], entry)
    return Problem(id=f"apps/{row['id']}", statement=row["description"], public_tests=public,
                   private_tests=private, starter_code=row.get("starter_code") or "")


def _words(text: str) -> str:
    return " ".join(text.split())


def in_statement(test: StdioTest, statement: str) -> bool:
    """Whether the statement shows this test (its input and its output) as an example."""
    text = _words(statement)
    return bool(test.stdin.strip()) and _words(test.stdin) in text \
        and _words(test.expected_stdout) in text


def from_sandboxfusion_cc(row: dict[str, Any]) -> Problem:
    """Public tests: those the statement shows as examples; every other test is private."""
    raw = json.loads(row["test"]) if isinstance(row["test"], str) else row["test"]
    tests = [StdioTest(stdin=t["input"]["stdin"], expected_stdout=t["output"]["stdout"])
             for t in raw]
    shown = [in_statement(t, row["content"]) for t in tests]
    return Problem(id=f"cc/{row['id']}", statement=row["content"],
                   public_tests=[t for t, s in zip(tests, shown, strict=True) if s],
                   private_tests=[t for t, s in zip(tests, shown, strict=True) if not s])


def _io_pairs(block: dict[str, Any] | None) -> list[Test]:
    block = block or {}
    return [StdioTest(stdin=i, expected_stdout=o)
            for i, o in zip(block.get("input", []), block.get("output", []), strict=False)]


def from_code_contests(row: dict[str, Any]) -> Problem:
    limit = row.get("time_limit")
    seconds = (limit.get("seconds", 0) + limit.get("nanos", 0) / 1e9
               if isinstance(limit, dict) else limit)
    mem = row.get("memory_limit_bytes")
    return Problem(id=f"cc/{row.get('name', row.get('id'))}", statement=row["description"],
                   public_tests=_io_pairs(row.get("public_tests")),
                   private_tests=_io_pairs(row.get("private_tests"))
                   + _io_pairs(row.get("generated_tests")),
                   time_limit_s=seconds or None,
                   memory_mb=int(mem) // (1024 * 1024) if mem else None)


def from_mbpp(row: dict[str, Any]) -> Problem:
    """The statement shows the first assert: it is the public test, the rest are private."""
    asserts = row["test_list"]
    setup = row.get("test_setup_code") or ""
    # some rows repeat the shown assert among the hidden ones: that copy is public
    hidden = list(dict.fromkeys(a for a in asserts[1:] if a.strip() != asserts[0].strip()))
    return Problem(id=f"mbpp/{row['task_id']}",
                   statement=f"{row['text']}\nYour code should pass this test:\n{asserts[0]}",
                   public_tests=[AssertTest(code=asserts[0], setup=setup)],
                   private_tests=[AssertTest(code=a, setup=setup) for a in hidden])


def prompt_examples(prompt: str, entry: str) -> list[str]:
    """Asserts made of the examples a HumanEval prompt shows: `>>> f(x)` followed by its
    result, or one-line `f(x) == y` / `f(x) ==> y` / `f(x) -> y`."""
    lines, out = prompt.splitlines(), []
    shown = re.compile(rf"^({re.escape(entry)}\(.*\))\s*(?:==>|==|->|=>|\u279e|should "
                       r"return|returns?)\s*(.+?)\.?$")
    for i, line in enumerate(lines):
        text = line.strip()
        if text.startswith(">>> ") and entry in text and i + 1 < len(lines):
            result = lines[i + 1].strip()
            pair = (text[4:], result) if result and not result.startswith(">>>") else None
        else:
            m = shown.match(text)
            pair = (m.group(1), m.group(2)) if m else None
        if pair:
            code = f"assert {pair[0]} == {pair[1]}"
            try:
                ast.parse(code)
            except SyntaxError:
                continue
            out.append(code)
    return out


def from_humaneval(row: dict[str, Any]) -> Problem:
    """Feedback comes from the prompt's own examples; the hidden `check` suite is private."""
    entry = row["entry_point"]
    public: list[Test] = [AssertTest(code=c, setup=row["prompt"], entry_point=entry)
                          for c in prompt_examples(row["prompt"], entry)]
    check = AssertTest(code=row["test"] + f"\ncheck({entry})\n", setup=row["prompt"],
                       entry_point=entry)
    return Problem(id=row["task_id"], statement=row["prompt"], public_tests=public,
                   private_tests=[check])


def detect(row: dict[str, Any]) -> Callable[[dict[str, Any]], Problem]:
    if "sample_io" in row:
        return from_apps
    if "content" in row and "test" in row:
        return from_sandboxfusion_cc
    if "description" in row and "public_tests" in row:
        return from_code_contests
    if "test_list" in row and "text" in row:
        return from_mbpp
    if "canonical_solution" in row and "entry_point" in row:
        return from_humaneval
    if "public_tests" in row and "statement" in row:
        return Problem.model_validate
    raise DataError(f"unknown record format (keys: {sorted(row)[:8]})")


def read_rows(path: Path) -> Iterable[tuple[int, str]]:
    opener: Any = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", encoding="utf-8") as f:
            yield from enumerate(f, 1)
    except OSError as e:
        raise DataError(f"cannot read {path}: {e}") from e


def load_problems(path: str | Path, limit: int | None = None) -> tuple[list[Problem], LoadReport]:
    """Any supported JSONL (optionally .gz); returns the problems and what was skipped."""
    path = Path(path)
    problems: list[Problem] = []
    report = LoadReport()
    for lineno, line in read_rows(path):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            problem = detect(row)(row)
            if not problem.public_tests:
                raise ValueError("no public tests")
        except (ValueError, KeyError, TypeError, ValidationError) as e:
            report.bad.append(f"{path.name}:{lineno}: {type(e).__name__}: {str(e)[:200]}")
            continue
        problems.append(problem)
        if limit and len(problems) >= limit:
            break
    report.loaded = len(problems)
    if report.bad:
        log.warning("%s: skipped %d bad records, e.g. %s", path, len(report.bad), report.bad[0])
    if not problems:
        raise DataError(f"{path}: no usable problems ({len(report.bad)} bad records)")
    return problems, report


def synthetic_problems(n: int, seed: int) -> list[Problem]:
    """A task the statement alone cannot solve but the feedback can: print a hidden digit.

    Turn 1 is a guess (1 in 10); the public test's feedback shows the expected output, so
    a policy that learns to read feedback solves it on turn 2.
    """
    rng = random.Random(seed)
    out = []
    for i in range(n):
        secret = str(rng.randrange(10))
        test = StdioTest(stdin="", expected_stdout=secret)
        out.append(Problem(id=f"secret/{seed}/{i}", statement="Print the secret digit.",
                           public_tests=[test], private_tests=[test]))
    return out
