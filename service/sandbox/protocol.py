"""Host side of the runner protocol: length-prefixed JSON frames over a byte transport."""

from __future__ import annotations

import base64
import json
import os
import select
import struct
import time
from importlib import resources
from typing import Any, Protocol, TypeVar

from service.sandbox.base import MemoryControl, PutRejected, RunOutcome, RunSpec, SandboxError
from service.sandbox.runtime import MODULES

# The runtime's loader: reads one frame {"modules": [[name, source], ...]} from an fd and
# builds the package `rlefrt` in memory. The runner runs it on stdin (`python3 -c
# BOOTSTRAP`); the runner hands the same text to the fork server it starts.
LOADER = """\
import json, os, struct, sys, types
def _read(fd, n):
    b = b""
    while len(b) < n:
        c = os.read(fd, n - len(b))
        if not c:
            raise SystemExit(3)
        b += c
    return b
def _load(fd):
    mods = json.loads(_read(fd, struct.unpack(">I", _read(fd, 4))[0]))["modules"]
    pkg = types.ModuleType("rlefrt")
    pkg.__path__ = []
    sys.modules["rlefrt"] = pkg
    for name, src in mods:
        m = types.ModuleType("rlefrt." + name)
        m.__package__ = "rlefrt"
        sys.modules[m.__name__] = m
        exec(compile(src, "rlefrt/%s.py" % name, "exec"), m.__dict__)
        setattr(pkg, name, m)
    return mods
"""
BOOTSTRAP = LOADER + "_mods = _load(0)\nsys.modules['rlefrt.runner'].main(_mods)\n"

_HEADER = struct.Struct(">I")
MAX_REPLY = 1 << 30  # a batch's outputs and result channels, each capped in the runner


def runtime_modules() -> list[list[str]]:
    """The in-sandbox runtime's sources, in load order."""
    pkg = resources.files("service.sandbox.runtime")
    return [[name, pkg.joinpath(f"{name}.py").read_text()] for name in MODULES]


def runner_config(nproc_rlimit: bool, memcg: str | None = None,
                  memory_bound: bool = False) -> dict[str, Any]:
    """The runner's start frame: the launcher's C source travels with it, so the sandbox
    image needs none of the service's files. `memory_bound`: the host bounds each job's
    memory with a cgroup, so no address-space limit is needed (it counts reservations,
    not memory: thread stacks, malloc arenas, the JVM's and V8's heaps)."""
    return {"nproc_rlimit": nproc_rlimit, "loader": LOADER, "memcg": memcg,
            "memory_bound": memory_bound,
            "launcher_c": resources.files("service.sandbox.runtime")
            .joinpath("launcher.c").read_text()}


def encode_frame(obj: Any) -> bytes:
    data = json.dumps(obj).encode()
    return _HEADER.pack(len(data)) + data


class Transport(Protocol):
    def send(self, data: bytes) -> None: ...

    def recv(self, n: int, deadline: float) -> bytes:
        """Up to n bytes (at least 1); SandboxError on EOF or past the deadline."""
        ...

    def close(self) -> None: ...

    def fileno(self) -> int: ...


class PipeTransport:
    """A child process's stdin/stdout (the local backend's bwrap)."""

    def __init__(self, write_fd: int, read_fd: int) -> None:
        self.write_fd, self.read_fd = write_fd, read_fd

    def send(self, data: bytes) -> None:
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(self.write_fd, view):]
        except OSError as e:
            raise SandboxError(f"runner pipe closed: {e}") from e

    def recv(self, n: int, deadline: float) -> bytes:
        timeout = deadline - time.monotonic()
        if timeout <= 0 or not select.select([self.read_fd], [], [], timeout)[0]:
            raise SandboxError("runner did not answer in time")
        chunk = os.read(self.read_fd, n)
        if not chunk:
            raise SandboxError("runner exited")
        return chunk

    def fileno(self) -> int:
        return self.read_fd

    def close(self) -> None:
        for fd in (self.write_fd, self.read_fd):
            try:
                os.close(fd)
            except OSError:
                continue  # already closed: nothing to release


def run_frame(spec: RunSpec) -> dict[str, Any]:
    return {"kind": spec.kind, "argv": spec.argv,
            "dir": "build" if spec.in_build_dir else "fresh",
            "files": {k: base64.b64encode(v).decode() for k, v in spec.files.items()},
            "stdin": spec.stdin, "env": spec.env, "limits": spec.limits.to_wire(),
            "spec": spec.spec, "fetch": list(spec.fetch)}


class RunnerClient:
    """Drives one runner: handshake, then one request frame, one answer frame."""

    def __init__(self, transport: Transport, reply_margin_s: float = 5.0,
                 memory: MemoryControl | None = None) -> None:
        self.transport = transport
        self.memory = memory
        self.margin = reply_margin_s
        self.jobs = 0
        self._buf = bytearray()

    def start(self, config: dict[str, Any], timeout_s: float = 60.0) -> dict[str, Any]:
        self.transport.send(encode_frame({"modules": runtime_modules()}) + encode_frame(config))
        hello = self._read_frame(time.monotonic() + timeout_s)
        if not hello.get("ready"):
            raise SandboxError(f"runner failed to start: {hello}")
        return hello

    def call(self, frame: dict[str, Any], timeout_s: float) -> dict[str, Any]:
        self.transport.send(encode_frame(frame))
        reply = self._read_frame(time.monotonic() + timeout_s + self.margin)
        if "error" in reply:
            raise SandboxError(f"runner error: {reply['error']}")
        return reply

    def gone(self) -> bool:
        """An idle runner never writes: anything readable now is its EOF (it died)."""
        if self._buf:
            return True
        try:
            return bool(select.select([self.transport.fileno()], [], [], 0)[0])
        except (OSError, ValueError):
            return True

    def limit_memory(self, memory_mb: int) -> None:
        """What runs next may hold memory_mb (where the sandbox has a memory cgroup)."""
        if self.memory is not None:
            self.memory.limit(memory_mb)

    def memory_exhausted(self) -> bool:
        return self.memory is not None and self.memory.exhausted()

    def put(self, files: dict[str, bytes]) -> None:
        reply = self.call({"op": "put", "files": {
            k: base64.b64encode(v).decode() for k, v in files.items()}}, timeout_s=10)
        if not reply.get("ok"):
            raise PutRejected(str(reply.get("message", "cannot write the files")))

    def run(self, spec: RunSpec) -> RunOutcome:
        frame = {"op": "run", **run_frame(spec)}
        return RunOutcome.from_wire(self.call(frame, timeout_s=spec.limits.wall_time_s + 5))

    def run_many(self, specs: list[RunSpec]) -> list[RunOutcome]:
        """Several runs, one after another, in one round trip (each in a fresh run dir)."""
        if not specs:
            return []
        frame = {"op": "runs", "runs": [run_frame(s) for s in specs]}
        timeout = sum(s.limits.wall_time_s + 2 for s in specs) + 3
        reply = self.call(frame, timeout_s=timeout)
        return [RunOutcome.from_wire(r) for r in reply["results"]]

    def reset(self) -> dict[str, Any]:
        return self.call({"op": "reset"}, timeout_s=10)

    def _read_exact(self, n: int, deadline: float) -> bytes:
        while len(self._buf) < n:  # a bytearray: growing it is linear, not quadratic
            self._buf += self.transport.recv(max(65536, n - len(self._buf)), deadline)
        out = bytes(self._buf[:n])
        del self._buf[:n]
        return out

    def _read_frame(self, deadline: float) -> dict[str, Any]:
        (size,) = _HEADER.unpack(self._read_exact(4, deadline))
        if size > MAX_REPLY:
            raise SandboxError(f"runner sent a {size}-byte frame")
        reply = json.loads(self._read_exact(size, deadline))
        if not isinstance(reply, dict):
            raise SandboxError("runner sent a malformed frame")
        return reply


class Started(Protocol):
    """A launched sandbox: its runner client, and a way to tear it down."""

    client: RunnerClient

    def kill(self) -> None: ...


S = TypeVar("S", bound=Started)


def start_runner(runner: S, timeout_s: float, memcg: str | None = None) -> S:
    """Hand the runner its start frame; a runner that does not come up is killed."""
    try:
        config = runner_config(nproc_rlimit=True, memcg=memcg,
                               memory_bound=runner.client.memory is not None)
        runner.client.start(config, timeout_s=timeout_s)
    except SandboxError:
        runner.kill()
        raise
    return runner
