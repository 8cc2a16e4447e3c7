"""Checks a well-formed request against what this server allows; pure."""

from __future__ import annotations

from service.languages import LANGUAGES
from service.schema import ExecuteRequest, StdioTest
from service.settings import Settings


def request_problems(req: ExecuteRequest, settings: Settings) -> list[str]:
    """Every reason to refuse the request (empty when it may run)."""
    problems = []
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
    maxima = settings.max_limits()
    for name, value in req.limits.model_dump().items():
        cap = getattr(maxima, name)
        if value > cap:
            problems.append(f"limits.{name}={value} exceeds the server maximum {cap}")
    return problems
