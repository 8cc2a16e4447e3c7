"""Python test harness, copied into the sandbox's run dir for `assert`, `call` and `sql` tests.

Standard library only. A test passes only if this harness reaches its end and writes the
job's nonce to the result channel: a program that exits early (os._exit(0), sys.exit(0))
or never gets to its tests is a failure, never "0 failed". The channel fd and the nonce
are taken out of the environment before any submitted code runs.
"""

import json
import linecache
import os
import sys
import traceback

HARNESS_FILE = os.path.abspath(__file__)


def take_secrets():
    fd = int(os.environ.pop("RLEF_CHANNEL_FD"))
    nonce = os.environ.pop("RLEF_NONCE", "")
    return os.fdopen(fd, "w"), nonce


def load(path, name, remove=False):
    with open(path, encoding="utf-8") as f:
        text = f.read()
    if remove:  # the program must never read (or rewrite) its own tests
        os.unlink(path)
    # Registered so that tracebacks quote the failing line (e.g. the failing assert).
    linecache.cache[name] = (len(text), None, text.splitlines(True), name)
    return compile(text, name, "exec")


class Pristine:
    """The interpreter as it was before the program ran, given back to the test code.

    A program may patch builtins (abs, isinstance...) or stdlib functions (math.isclose)
    so that the asserts after it pass; the test code gets the originals back.
    """

    # cheap to import (C or already loaded): fractions/decimal would add ~10 ms per test
    MODULES = ("math", "cmath", "operator", "collections", "itertools", "functools", "re",
               "string", "heapq", "bisect", "json")

    def __init__(self):
        import builtins
        import importlib

        self.builtins = dict(vars(builtins))
        self.modules = {n: importlib.import_module(n) for n in self.MODULES}
        self.saved = {n: dict(vars(m)) for n, m in self.modules.items()}
        self.value_types = frozenset(
            [int, float, complex, str, bytes, bytearray, bool, type(None), list, tuple,
             dict, set, frozenset, range, type(Ellipsis), type({}.keys()), type({}.values()),
             type({}.items()), *self.collections_types()])

    def collections_types(self):
        c = self.modules["collections"]
        return [c.Counter, c.OrderedDict, c.defaultdict, c.deque]

    def restore(self):
        for name, module in self.modules.items():
            sys.modules[name] = module
            vars(module).update(self.saved[name])
        return {"__builtins__": dict(self.builtins)}

    def check_value(self, value, budget=100000):
        """Only built-in values may leave a program's function: no custom __eq__ tricks."""
        stack, seen = [value], set()
        while stack and budget > 0:
            budget -= 1
            v = stack.pop()
            if type(v) not in self.value_types:
                if hasattr(v, "__next__") and type(v).__module__ == "builtins":
                    continue  # map, filter, generators: consumed by the test itself
                raise TypeError("the program returned a %r, which tests cannot compare "
                                "(only built-in values are allowed)" % type(v).__name__)
            if isinstance(v, (list, tuple, set, frozenset)) and id(v) not in seen:
                seen.add(id(v))
                stack.extend(v)
            elif isinstance(v, dict) and id(v) not in seen:
                seen.add(id(v))
                stack.extend(v.keys())
                stack.extend(v.values())
        return value

    def guard(self, fn):
        def guarded(*args, **kwargs):
            return self.check_value(fn(*args, **kwargs))
        guarded.__name__, guarded.__doc__ = fn.__name__, fn.__doc__
        return guarded


def jsonable(value):
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=repr)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    raise TypeError("a value of type %s cannot be compared as JSON" % type(value).__name__)


def resolve(namespace, entry_point):
    if entry_point in namespace:
        return namespace[entry_point]
    cls = namespace.get("Solution")  # LeetCode style: class Solution: def entry(self, ...)
    if cls is not None and hasattr(cls, entry_point):
        return getattr(cls(), entry_point)
    raise NameError("function %r is not defined" % entry_point)


def run_assert():
    test = load("_rlef_test.py", "test.py", remove=True)
    pristine = Pristine()
    namespace = {"__name__": "__main__"}
    exec(load("/work/build/main.py", "solution.py"), namespace)
    scope = pristine.restore()
    for name, value in namespace.items():
        if name != "__builtins__":
            is_own = getattr(getattr(value, "__code__", None), "co_filename", "") == "solution.py"
            scope[name] = pristine.guard(value) if is_own else value
    exec(test, scope)
    return {"done": True}


def run_call():
    with open("_rlef_call.json", encoding="utf-8") as f:
        spec = json.load(f)
    os.unlink("_rlef_call.json")
    namespace = {"__name__": "solution"}
    exec(load("/work/build/main.py", "solution.py"), namespace)
    fn = resolve(namespace, spec["entry_point"])
    return {"result": fn(*spec["args"], **spec["kwargs"])}


def run_sql():
    import sqlite3

    with open("_rlef_setup.sql", encoding="utf-8") as f:
        setup = f.read()
    os.unlink("_rlef_setup.sql")
    with open("/work/build/main.sql", encoding="utf-8") as f:
        query = f.read()
    db = sqlite3.connect(":memory:")
    db.executescript(setup)
    return {"rows": [list(r) for r in db.execute(query).fetchall()]}


def print_user_traceback(exc):
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename != HARNESS_FILE]
    sys.stderr.write("Traceback (most recent call last):\n")
    sys.stderr.write("".join(traceback.format_list(frames)))
    sys.stderr.write("".join(traceback.format_exception_only(type(exc), exc)))


def main():
    channel, nonce = take_secrets()
    mode = sys.argv[1]
    sys.argv = ["main.py"]
    try:
        payload = {"assert": run_assert, "call": run_call, "sql": run_sql}[mode]()
        text = json.dumps(dict(payload, nonce=nonce), default=jsonable)
    except SystemExit as e:
        sys.stderr.write("SystemExit(%r): the program exited before its tests finished\n"
                         % (e.code,))
        sys.stdout.flush()
        os._exit(1)
    except BaseException as e:  # the program's own failure: report it as a traceback
        print_user_traceback(e)
        sys.stdout.flush()
        os._exit(1)
    channel.write(text)
    channel.flush()
    sys.stdout.flush()


if __name__ == "__main__":
    main()
