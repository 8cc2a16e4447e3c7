"""Checks a well-formed request against what this server allows; pure.

Beyond the schema: text must be valid Unicode (JSON lets a client send a lone UTF-16
surrogate, which no sandbox, log or response can carry), JSON values are not nested
deeper than they can be serialised (about 250 levels: the walk that says where reports
those past MAX_VALUE_DEPTH), and limits and tolerances are finite numbers.
"""

from __future__ import annotations

import math
from typing import Any

from pydantic import BaseModel
from pydantic_core import PydanticSerializationError

from service.languages import LANGUAGES
from service.schema import ExecuteRequest, StdioTest
from service.settings import Settings

# Below the depth pydantic can serialise (~250) and the judge reads back (compare.MAX_DEPTH).
MAX_VALUE_DEPTH = 200
MAX_REPORTED = 10


def request_problems(req: ExecuteRequest, settings: Settings) -> list[str]:
    """Every reason to refuse the request (empty when it may run)."""
    problems = value_problems(req)
    if problems:  # the checks below would trip over the same values
        return problems
    spec = LANGUAGES[req.language]
    if len(req.code.encode()) > settings.max_code_kb * 1024:
        problems.append(f"code is larger than the maximum {settings.max_code_kb} KB")
    if len(req.tests) > settings.max_tests:
        problems.append(f"{len(req.tests)} tests: at most {settings.max_tests} per request")
    for i, test in enumerate(req.tests):
        if test.type not in spec.test_types:
            problems.append(f"tests[{i}]: {test.type!r} tests are not supported for "
                            f"{req.language} (supported: {', '.join(spec.test_types)})")
        if isinstance(test, StdioTest) and test.checker == "program" and not test.checker_code:
            problems.append(f"tests[{i}]: checker 'program' needs checker_code")
    total_input = sum(len(t.model_dump_json()) for t in req.tests)
    if total_input > settings.max_input_kb * 1024:
        problems.append(f"tests are larger than the maximum {settings.max_input_kb} KB")
    problems += path_problems(req)
    maxima = settings.max_limits()
    for name, value in req.limits.model_dump().items():
        cap = getattr(maxima, name)
        if value > cap:
            problems.append(f"limits.{name}={value} exceeds the server maximum {cap}")
    return problems


MAX_NAME, MAX_PATH = 255, 4096


def path_problems(req: ExecuteRequest) -> list[str]:
    """`files` and `fetch_files` name paths inside the run's directory: relative, no `..`.

    The sandbox refuses the others too; refusing them here says it is the request's fault.
    """
    named = [("files", p) for p in req.files] + [("fetch_files", p) for p in req.fetch_files]
    return [f"{field}: {path[:200]!r} is not a relative path inside the run directory"
            for field, path in named if not is_relative_path(path)][:MAX_REPORTED]


def is_relative_path(path: str) -> bool:
    parts = path.split("/")
    return bool(path) and not path.startswith("/") and len(path) <= MAX_PATH \
        and "\0" not in path and all(p not in ("", ".", "..") and len(p.encode()) <= MAX_NAME
                                     for p in parts)


def value_problems(req: ExecuteRequest) -> list[str]:
    """Lone surrogates, values nested too deeply, non-finite limits or tolerances."""
    problems = [f"{where} must be a finite number, not {value}"
                for where, value in finite_fields(req) if not math.isfinite(value)]
    try:
        # fast (native) when all is well, as nearly always; it writes a lone surrogate in
        # a dict key as U+FFFD instead of failing, so that case is walked too
        suspect = "\ufffd" in req.model_dump_json()
    except PydanticSerializationError as e:
        problems += walk_problems(req) or [f"the request cannot be serialised: {e}"]
    else:
        problems += walk_problems(req) if suspect else []
    return problems[:MAX_REPORTED]


def finite_fields(req: ExecuteRequest) -> list[tuple[str, float]]:
    fields = [(f"limits.{k}", float(v)) for k, v in req.limits.model_dump().items()]
    for i, test in enumerate(req.tests):
        for name in ("abs_tol", "rel_tol"):
            if hasattr(test, name):
                fields.append((f"tests[{i}].{name}", getattr(test, name)))
    return fields


def walk_problems(model: BaseModel) -> list[str]:
    """Where the request holds what cannot be serialised: a path for each problem."""
    problems: list[str] = []
    stack: list[tuple[Any, str, int]] = [(model, "", 0)]
    while stack and len(problems) < MAX_REPORTED:
        value, path, depth = stack.pop()
        if isinstance(value, BaseModel):
            stack.extend((getattr(value, k), f"{path}.{k}".lstrip("."), depth)
                         for k in type(value).model_fields)
        elif isinstance(value, str):
            if not is_valid_text(value):
                problems.append(f"{path or 'value'}: text holds a lone UTF-16 surrogate "
                                "(not valid Unicode)")
        elif depth >= MAX_VALUE_DEPTH and isinstance(value, list | dict):
            problems.append(f"{path}: JSON value nested more than {MAX_VALUE_DEPTH} deep")
        elif isinstance(value, list):
            stack.extend((v, f"{path}[{i}]", depth + 1) for i, v in enumerate(value))
        elif isinstance(value, dict):
            for k, v in value.items():
                stack.extend([(k, f"{path} (a key)", depth + 1),
                              (v, f"{path}[{k!r}]", depth + 1)])
    return problems


def is_valid_text(s: str) -> bool:
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
