"""Host side of the runner protocol: length-prefixed JSON frames over a byte transport."""

from __future__ import annotations

import json
import os
import select
import struct
import time
from importlib import resources
from typing import Any, Protocol, TypeVar

from service.sandbox.base import RunOutcome, RunSpec, SandboxError

# `python3 -c BOOTSTRAP` inside the sandbox: read one frame (the runner's source) and run
# it. os.read, not sys.stdin, so that no later frame is swallowed by a buffer.
BOOTSTRAP = (
    "import os,struct\n"
    "def _r(n):\n"
    "    b=b''\n"
    "    while len(b)<n:\n"
    "        c=os.read(0,n-len(b))\n"
    "        if not c: raise SystemExit(3)\n"
    "        b+=c\n"
    "    return b\n"
    "exec(compile(_r(struct.unpack('>I',_r(4))[0]),'rlef-runner','exec'))\n"
)

_HEADER = struct.Struct(">I")


def runner_source() -> bytes:
    return resources.files("service.sandbox").joinpath("runner.py").read_bytes()


def runner_config(nproc_rlimit: bool) -> dict[str, Any]:
    """The runner's start frame: the launcher's C source and the zygote's Python source
    travel with it, so the sandbox image needs none of the service's files."""
    files = resources.files("service.sandbox")
    return {"nproc_rlimit": nproc_rlimit,
            "launcher_c": files.joinpath("launcher.c").read_text(),
            "zygote_src": files.joinpath("zygote.py").read_text()}


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
    return {"argv": spec.argv, "dir": "build" if spec.in_build_dir else "fresh",
            "files": spec.files, "stdin": spec.stdin, "env": spec.env,
            "limits": spec.limits.to_wire()}


class RunnerClient:
    """Drives one runner: handshake, then one request frame, one answer frame."""

    def __init__(self, transport: Transport, reply_margin_s: float = 5.0) -> None:
        self.transport = transport
        self.margin = reply_margin_s
        self.jobs = 0
        self._buf = b""

    def start(self, config: dict[str, Any], timeout_s: float = 60.0) -> dict[str, Any]:
        src = runner_source()
        self.transport.send(_HEADER.pack(len(src)) + src + encode_frame(config))
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

    def put(self, files: dict[str, str]) -> None:
        self.call({"op": "put", "files": files}, timeout_s=10)

    def run(self, spec: RunSpec) -> RunOutcome:
        frame = {"op": "run", **run_frame(spec)}
        return RunOutcome.from_wire(self.call(frame, timeout_s=spec.limits.wall_time_s + 2))

    def run_many(self, specs: list[RunSpec]) -> list[RunOutcome]:
        """Several runs, one after another, in one round trip (each in a fresh run dir)."""
        if not specs:
            return []
        frame = {"op": "runs", "runs": [run_frame(s) for s in specs]}
        timeout = sum(s.limits.wall_time_s + 1 for s in specs) + 1
        reply = self.call(frame, timeout_s=timeout)
        return [RunOutcome.from_wire(r) for r in reply["results"]]

    def reset(self) -> dict[str, Any]:
        return self.call({"op": "reset"}, timeout_s=10)

    def _read_exact(self, n: int, deadline: float) -> bytes:
        while len(self._buf) < n:
            self._buf += self.transport.recv(max(65536, n - len(self._buf)), deadline)
        out, self._buf = self._buf[:n], self._buf[n:]
        return out

    def _read_frame(self, deadline: float) -> dict[str, Any]:
        (size,) = _HEADER.unpack(self._read_exact(4, deadline))
        reply = json.loads(self._read_exact(size, deadline))
        if not isinstance(reply, dict):
            raise SandboxError("runner sent a malformed frame")
        return reply


class Started(Protocol):
    """A launched sandbox: its runner client, and a way to tear it down."""

    client: RunnerClient

    def kill(self) -> None: ...


S = TypeVar("S", bound=Started)


def start_runner(runner: S, timeout_s: float) -> S:
    """Hand the runner its start frame; a runner that does not come up is killed."""
    try:
        runner.client.start(runner_config(nproc_rlimit=True), timeout_s=timeout_s)
    except SandboxError:
        runner.kill()
        raise
    return runner
