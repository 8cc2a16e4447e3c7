"""Pure, total comparison of a program's answer with the expected one. No I/O.

Every function here returns a bool for any input a program can produce: a comparison
that cannot be made (a huge int against a float, a value nested too deeply) is `False`,
never an exception. Tolerance only ever applies where the *expected* value is a float:
an integer answer is exact, and a bool is never a number.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Callable, Iterator
from decimal import Decimal
from itertools import zip_longest
from typing import Any

# ASCII numerals only: Python's float() also takes '١٢', 'inf', '1_000' and ' nan '.
_INT = re.compile(r"[+-]?[0-9]+", re.ASCII)
_FLOAT = re.compile(r"[+-]?(?:[0-9]+\.[0-9]*|\.[0-9]+|[0-9]+)(?:[eE][+-]?[0-9]+)?", re.ASCII)
_TOKEN = re.compile(r"\S+")  # the same whitespace as str.split()
_BREAK = re.compile("\r\n|[\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")  # str.splitlines()
# Deeper than any expected value the API accepts (it must serialise: ~250 levels): a deeper
# answer cannot be equal, and stopping here keeps the recursion below bounded.
MAX_DEPTH = 300


def _close(expected: float, actual: float, abs_tol: float, rel_tol: float) -> bool:
    if math.isnan(expected) or math.isnan(actual):
        return math.isnan(expected) and math.isnan(actual)
    if math.isinf(expected) or math.isinf(actual):
        return expected == actual
    return math.isclose(expected, actual, rel_tol=rel_tol, abs_tol=abs_tol)


def float_token_eq(expected: str, actual: str, abs_tol: float, rel_tol: float) -> bool:
    """One token of the `float` checker: tolerance only where the expected token is a
    float numeral; an integer token must be matched by exactly its value, a word by itself."""
    if expected == actual:
        return True
    if not (_FLOAT.fullmatch(expected) and _FLOAT.fullmatch(actual)):
        return False
    if _INT.fullmatch(expected):  # exact: "2.000" is 2, "1000001" is not 1000000
        return _exactly_equal(expected, actual)
    return _close(float(expected), float(actual), abs_tol, rel_tol)


def _exactly_equal(expected: str, actual: str) -> bool:
    try:
        return Decimal(expected) == Decimal(actual)
    except ArithmeticError:  # an exponent beyond Decimal's range: not this integer
        return False


def tokens(s: str) -> Iterator[str]:
    """str.split()'s tokens one at a time: a program's output is never held as a list."""
    return (m.group() for m in _TOKEN.finditer(s))


def line_count(s: str) -> int:
    """How many lines str.splitlines() would give, without making them."""
    return sum(1 for _ in _BREAK.finditer(s)) + (1 if s and not _BREAK.fullmatch(s[-1]) else 0)


def _tokens_equal(expected: str, actual: str, same: Callable[[str, str], bool]) -> bool:
    return all(e is not None and a is not None and same(e, a)
               for e, a in zip_longest(tokens(expected), tokens(actual)))


def compare_output(checker: str, expected: str, actual: str,
                   abs_tol: float = 1e-6, rel_tol: float = 1e-6) -> bool:
    """Host memory stays bounded by the expected output's size, whatever the program printed:
    line lists are only built once the line counts agree, tokens are streamed."""
    if checker == "exact":
        return expected == actual
    if checker == "lines":
        e, a = expected.rstrip("\n"), actual.rstrip("\n")
        return e.count("\n") == a.count("\n") and \
            [ln.rstrip() for ln in e.split("\n")] == [ln.rstrip() for ln in a.split("\n")]
    if checker == "unordered_lines":
        e, a = expected.strip(), actual.strip()
        return line_count(e) == line_count(a) and \
            Counter(ln.strip() for ln in e.splitlines()) == \
            Counter(ln.strip() for ln in a.splitlines())
    if checker == "float":
        return _tokens_equal(expected, actual,
                             lambda e, a: float_token_eq(e, a, abs_tol, rel_tol))
    return _tokens_equal(expected, actual, str.__eq__)  # "tokens"


def _numbers_equal(expected: int | float, actual: Any, abs_tol: float, rel_tol: float) -> bool:
    if isinstance(actual, bool) or not isinstance(actual, int | float):
        return False
    if isinstance(expected, int):
        return expected == actual  # exact, also against a float: 3 == 3.0, never 3 ~ 3.0000001
    if isinstance(actual, int):
        try:
            actual = float(actual)
        except OverflowError:  # 10**400: no float expected value is near it
            return False
    return _close(expected, actual, abs_tol, rel_tol)


def values_equal(expected: Any, actual: Any, abs_tol: float = 1e-6, rel_tol: float = 1e-6,
                 depth: int = 0) -> bool:
    """JSON values: lists and tuples alike, floats within tolerance, bool is not int."""
    if depth > MAX_DEPTH:
        return False
    if isinstance(expected, bool) or isinstance(actual, bool):
        return type(expected) is type(actual) and expected == actual
    if isinstance(expected, int | float):
        return _numbers_equal(expected, actual, abs_tol, rel_tol)
    if isinstance(expected, list | tuple):
        return isinstance(actual, list | tuple) and len(expected) == len(actual) and all(
            values_equal(e, a, abs_tol, rel_tol, depth + 1)
            for e, a in zip(expected, actual, strict=True))
    if isinstance(expected, dict):
        return isinstance(actual, dict) and expected.keys() == actual.keys() and all(
            values_equal(expected[k], actual[k], abs_tol, rel_tol, depth + 1) for k in expected)
    if isinstance(expected, str | type(None)):
        return type(expected) is type(actual) and expected == actual
    return False


def _row_key(row: Any) -> str:
    try:
        return json.dumps(row, sort_keys=True, default=str)
    except (ValueError, TypeError, RecursionError):
        return repr(type(row))


def rows_equal(expected: list[list[Any]], actual: Any, ordered: bool,
               abs_tol: float = 1e-6, rel_tol: float = 1e-6) -> bool:
    if not isinstance(actual, list) or len(actual) != len(expected):
        return False
    if not ordered:
        expected, actual = sorted(expected, key=_row_key), sorted(actual, key=_row_key)
    return values_equal(expected, actual, abs_tol, rel_tol)
