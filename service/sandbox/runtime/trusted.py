"""The trusted test process of an `assert` test.

A fork of the fork server, which never ran submitted code; it forks the program's
process first (before it reads anything of the test), then reads the test over a pipe
only it holds, runs the problem's setup and the test code in its own interpreter, and
reaches the program's functions through a socket that carries built-in values (see
values.py). It is non-dumpable: a program of the same uid can neither ptrace it nor
read its memory or fds. Its verdict goes to the runner over a pipe the program never
held. Whatever the program does (exit, crash, hang, lie on the channel, kill this
process) the outcome is a failure, never a pass.
"""

import builtins
import importlib
import json
import os
import signal
import sys
import traceback

from . import framing, values

BUILTIN_NAMES = frozenset(dir(builtins))
# The modules whose names (or plain attributes) a program may have the trusted side bind,
# as a test reads them from the program's namespace (MBPP's `math.isclose` after the
# program's `import math`). Only modules with no import-time behaviour: importing any
# other module could run code the program chose (unittest.__main__, pdb's rc file...).
SAFE_MODULES = frozenset([
    "math", "cmath", "re", "string", "collections", "collections.abc", "itertools",
    "functools", "operator", "heapq", "bisect", "json", "fractions", "decimal",
    "statistics", "random", "datetime", "typing", "copy", "numbers", "array", "sys",
    "time", "textwrap", "unicodedata", "hashlib", "struct", "enum", "dataclasses"])
# Exceptions that steer the caller's control flow rather than report an error: a
# StopIteration raised inside `map` would end the iteration, silently, as a pass.
CONTROL_FLOW = (StopIteration, StopAsyncIteration)


class ProgramGone(Exception):
    """The program's process exited or broke the channel during the test."""


class Remote:
    """The program's process, seen from here."""

    def __init__(self, sock):
        self.sock = sock
        self.reader = framing.SocketReader(sock)
        self.decoder = values.Decoder(handle=lambda n: ProgramObject(self, n))

    def request(self, msg):
        try:
            framing.send(self.sock, msg)
            reply = self.reader.recv()
        except (OSError, EOFError, framing.FrameError):
            raise ProgramGone("the program's process exited during the test") from None
        if "value" in reply:
            try:
                return self.decoder.value(reply["value"], 0)
            except (ValueError, TypeError, RecursionError) as e:
                raise TypeError("the program returned a value tests cannot use: %s" % e) \
                    from None
        raise rebuilt(reply.get("raise"))

    def call(self, target, args, kwargs):
        return self.request({"op": "call", "target": target,
                             "args": values.dumps(list(args), _handle_of),
                             "kwargs": values.dumps(dict(kwargs), _handle_of)})


def _handle_of(obj):
    if type(obj) is ProgramObject:
        return object.__getattribute__(obj, "_ref")
    raise values.Unencodable("only built-in values can be passed to the program")


class ProgramObject:
    """An object that lives in the program: it can be passed back, called, and have
    attributes read or set, all through the channel. It compares by identity only."""

    __slots__ = ("_remote", "_ref")

    def __init__(self, remote, ref):
        object.__setattr__(self, "_remote", remote)
        object.__setattr__(self, "_ref", ref)

    def __getattr__(self, name):
        remote = object.__getattribute__(self, "_remote")
        return remote.request({"op": "getattr", "target": self._ref, "name": name})

    def __setattr__(self, name, value):
        self._remote.request({"op": "setattr", "target": self._ref, "name": name,
                              "value": values.dumps(value, _handle_of)})

    def __call__(self, *args, **kwargs):
        return self._remote.call(self._ref, args, kwargs)

    def __repr__(self):
        return "<program object %d>" % self._ref


def rebuilt(info):
    """The program's exception as a built-in exception type (never a BaseException that
    would stop the test harness itself)."""
    info = info if isinstance(info, dict) else {}
    name, message = info.get("type"), info.get("message")
    cls = getattr(builtins, name, None) if isinstance(name, str) else None
    if not (isinstance(cls, type) and issubclass(cls, Exception)) or \
            issubclass(cls, CONTROL_FLOW):
        cls = RuntimeError
    exc = cls(message if isinstance(message, str) else "")
    tb = info.get("traceback")
    exc.program_traceback = tb if isinstance(tb, str) else ""  # type: ignore[attr-defined]
    return exc


def proxy(remote, name):
    def call(*args, **kwargs):
        return remote.call(name, args, kwargs)
    call.__name__ = call.__qualname__ = name
    return call


def bind(namespace, remote, exports, entry_point):
    """The program's names the test may use: never over a builtin or a name the setup
    defined (the function under test excepted); module attributes are imported here."""
    for name, info in exports.items():
        if not isinstance(name, str) or not isinstance(info, dict):
            continue
        if name != entry_point and (name in BUILTIN_NAMES or name in namespace):
            continue
        if info.get("function") or name == entry_point:
            namespace[name] = proxy(remote, name)
        elif info.get("module") in SAFE_MODULES:
            try:
                module = importlib.import_module(info["module"])
                namespace[name] = getattr(module, info["attr"]) if "attr" in info else module
            except Exception:
                continue  # not importable here: the test cannot use it, as with any typo


def failing_line(exc, source):
    """The test line that raised, quoted from the trusted copy of the test."""
    lines = source.splitlines()
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        lineno = frame.lineno or 0
        if frame.filename == "test.py" and 0 < lineno <= len(lines):
            return lines[lineno - 1].strip()
    return ""


def run_test(spec, remote, exports):
    namespace = {"__name__": "__main__", "__builtins__": builtins}
    if spec.get("setup"):
        exec(compile(spec["setup"], "setup.py", "exec"), namespace)
    bind(namespace, remote, exports, spec.get("entry_point"))
    exec(compile(spec["code"], "test.py", "exec"), namespace)


def outcome(spec, remote, exports):
    """(status, message) of the test: passed, failed (an assert) or error."""
    try:
        run_test(spec, remote, exports)
        return "passed", ""
    except AssertionError as e:
        line = failing_line(e, spec["code"])
        detail = str(e)[:500]
        return "failed", (line or "assertion failed")[:1000] + (" (%s)" % detail if detail else "")
    except ProgramGone as e:
        return "error", str(e)
    except Exception as e:
        text = getattr(e, "program_traceback", "") or \
            "".join(traceback.format_exception_only(type(e), e))
        line = failing_line(e, spec["code"])
        return "error", (("while running: %s\n" % line) if line else "") + text[-3000:]


def mirror_program_death(pid):
    """A program killed by a signal (CPU limit, OOM) ends this run the same way, so the
    limit is judged as the program's; returns only if it was not."""
    try:
        got, status = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return
    if got and os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        signal.signal(sig, signal.SIG_DFL)
        os.kill(os.getpid(), sig)


def end_program(pid):
    """The program's process ends with the test (reaped here, so its CPU time and peak
    memory count in this run's); its own children are the runner's to kill."""
    try:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    except (ProcessLookupError, ChildProcessError):
        pass


def main(sock, data_fd, result_fd, program_pid):
    with os.fdopen(data_fd, "rb") as f:
        spec = framing.expect(framing.decode(f.read()), code=str, setup=str, nonce=str)
    remote = Remote(sock)
    status, message = "error", "the program exited before its tests finished"
    try:
        framing.send(sock, {"setup": spec["setup"]})
        hello = remote.reader.recv()
        if isinstance(hello.get("ready"), dict):
            status, message = outcome(spec, remote, hello["ready"])
    except (OSError, EOFError, framing.FrameError):
        pass
    if status != "passed":
        mirror_program_death(program_pid)
    with os.fdopen(result_fd, "w") as out:
        out.write(json.dumps({"nonce": spec["nonce"], "status": status, "message": message}))
    end_program(program_pid)
    if status == "error":
        sys.stderr.write(message.rstrip("\n") + "\n")
        return 1
    return 0
