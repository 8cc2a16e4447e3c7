"""The program's side of Python runs, in a child of the fork server.

`script` runs a file as `python3 FILE` would. `call` and `sql` run the program and write
its answer to the result channel (the host compares it; the expected value never enters
the sandbox). `serve` is the program's half of an `assert` test: it runs the problem's
setup and the program, then answers calls from the trusted test process over a socket.
Everything here runs in the program's own process: the program can rewrite any of it,
and nothing on the trusted side or the host relies on it behaving.
"""

import builtins
import json
import os
import sys
import traceback
import types

from . import framing, values

CHANNEL_FD = 3


def run_script(path, argv):
    """What `python3 path` does, without runpy's importer probing (~2 ms)."""
    with open(path, "rb") as f:
        code = compile(f.read(), path, "exec")
    main = types.ModuleType("__main__")
    main.__file__ = path
    main.__dict__["__builtins__"] = builtins
    sys.modules["__main__"] = main
    sys.argv = list(argv)
    sys.path[0] = os.path.dirname(path)
    exec(code, main.__dict__)


def load_program(path, setup=""):
    """The program's namespace: the problem's setup first, then the program (as a
    HumanEval prompt followed by its completion)."""
    namespace = {"__name__": "__main__", "__builtins__": builtins}
    sys.path[0] = os.path.dirname(path)
    if setup:
        exec(compile(setup, "setup.py", "exec"), namespace)
    with open(path, "rb") as f:
        exec(compile(f.read(), path, "exec"), namespace)
    return namespace


def read_spec(fd):
    with os.fdopen(fd, "rb") as f:
        return json.loads(f.read())


def resolve(namespace, entry_point):
    if entry_point in namespace:
        return namespace[entry_point]
    cls = namespace.get("Solution")  # LeetCode style: class Solution: def entry(self, ...)
    if isinstance(cls, type) and hasattr(cls, entry_point):
        return getattr(cls(), entry_point)
    raise NameError("function %r is not defined" % entry_point)


def answer(payload):
    with os.fdopen(CHANNEL_FD, "w") as channel:
        channel.write(json.dumps(payload, default=_jsonable))


def _jsonable(value):
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=repr)
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8", "replace")
    raise TypeError("a value of type %s cannot be compared as JSON" % type(value).__name__)


def run_call(path, spec):
    fn = resolve(load_program(path), spec["entry_point"])
    result = fn(*spec["args"], **spec["kwargs"])
    answer({"nonce": spec["nonce"], "result": result})


def run_sql(path, spec):
    import sqlite3

    with open(path, encoding="utf-8") as f:
        query = f.read()
    db = sqlite3.connect(":memory:")
    db.executescript(spec["setup_sql"])
    rows = [list(r) for r in db.execute(query).fetchall()]
    answer({"nonce": spec["nonce"], "rows": rows})


def exported(namespace):
    """What the trusted side may bind: the program's callables, and which of them (or of
    its modules) are plainly a module's own, so that side imports those itself."""
    names: dict = {}
    for name, value in list(namespace.items()):
        if name.startswith("__"):
            continue
        if isinstance(value, types.ModuleType):
            names[name] = {"module": value.__name__}
        elif callable(value):
            module = getattr(value, "__module__", None)
            attr = getattr(value, "__name__", None)
            home = sys.modules.get(module) if isinstance(module, str) else None
            if module not in (None, "__main__", "builtins") and home is not None \
                    and getattr(home, str(attr), None) is value:
                names[name] = {"module": module, "attr": attr}
            else:
                names[name] = {"function": True}
    return names


def own_traceback(exc):
    """The program's traceback without the runtime's frames."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__)
              if not f.filename.startswith("rlefrt/")]
    text = "Traceback (most recent call last):\n" + "".join(traceback.format_list(frames))
    return (text + "".join(traceback.format_exception_only(type(exc), exc)))[-4000:]


class Server:
    """Answers the trusted side's calls with built-in values; other objects stay here
    and travel as handles."""

    def __init__(self, sock, namespace):
        self.sock = sock
        self.reader = framing.SocketReader(sock)
        self.namespace = namespace
        self.objects: list = []
        self.decoder = values.Decoder(handle=self.objects.__getitem__)

    def handle(self, obj):
        self.objects.append(obj)
        return len(self.objects) - 1

    def target(self, ref):
        if isinstance(ref, str):
            return self.namespace[ref]
        return self.objects[ref]

    def serve(self):
        while True:
            try:
                msg = self.reader.recv()
            except EOFError:
                return
            try:
                reply = {"value": values.encode(self.dispatch(msg), self.handle)}
            except Exception as e:  # the program's own exception, for the test to see
                reply = {"raise": {"type": type(e).__name__, "message": str(e)[:2000],
                                   "traceback": own_traceback(e)}}
            framing.send(self.sock, reply)

    def dispatch(self, msg):
        op, target = msg.get("op"), self.target(msg.get("target"))
        if op == "call":
            args = self.decoder.loads(msg["args"])
            kwargs = self.decoder.loads(msg["kwargs"])
            return target(*args, **kwargs)
        if op == "getattr":
            return getattr(target, msg["name"])
        if op == "setattr":
            setattr(target, msg["name"], self.decoder.loads(msg["value"]))
            return None
        raise ValueError("unknown op")


def serve(sock, path):
    """The program half of an assert test: setup + program, then calls until EOF."""
    reader = framing.SocketReader(sock)
    hello = reader.recv()
    try:
        namespace = load_program(path, hello.get("setup", ""))
    except BaseException as e:
        framing.send(sock, {"failed": "".join(traceback.format_exception(e))[-4000:]})
        raise
    framing.send(sock, {"ready": exported(namespace)})
    server = Server(sock, namespace)
    server.reader = reader
    server.serve()
