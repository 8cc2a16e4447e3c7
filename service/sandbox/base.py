"""The sandbox interface every backend implements, and what a run returns."""

from __future__ import annotations

import base64
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol


class SandboxError(Exception):
    """Infrastructure failure: never the program's fault, never scored as a verdict."""


class PutRejected(Exception):
    """Files could not be written into the build dir (a bad path, a name too long): the
    submission's fault, judged as a compile error."""


@dataclass(frozen=True)
class RunLimits:
    cpu_time_s: float
    wall_time_s: float
    memory_mb: int
    output_kb: int
    pids: int
    address_space: bool = True

    def to_wire(self) -> dict[str, Any]:
        return {
            "cpu_time_s": self.cpu_time_s,
            "wall_time_s": self.wall_time_s,
            "memory_mb": self.memory_mb,
            "output_kb": self.output_kb,
            "pids": self.pids,
            "address_space": self.address_space,
        }


RunKind = Literal["exec", "script", "call", "sql", "assert"]


@dataclass(frozen=True)
class RunSpec:
    """One run. `kind`: exec (argv as is, through the rlimit launcher), script (a Python
    file, forked from the warm interpreter), call / sql / assert (the Python harness:
    argv[0] is the program's file, `spec` what the harness needs)."""

    argv: list[str]
    limits: RunLimits
    env: dict[str, str]
    stdin: str = ""
    files: dict[str, bytes] = field(default_factory=dict)
    in_build_dir: bool = False
    kind: RunKind = "exec"
    spec: dict[str, Any] | None = None
    fetch: tuple[str, ...] = ()


@dataclass(frozen=True)
class RunOutcome:
    exit_code: int | None
    signal: int | None
    cpu_time_s: float
    wall_time_s: float
    max_rss_kb: int
    timed_out: bool
    output_exceeded: bool
    stdout: bytes
    stderr: bytes
    channel: bytes
    spawn_error: str = ""
    oom_killed: bool | None = None  # None: no memory cgroup could tell
    files: dict[str, bytes] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return (self.exit_code == 0 and not self.timed_out and not self.output_exceeded
                and not self.spawn_error)

    @classmethod
    def from_wire(cls, d: dict[str, Any]) -> RunOutcome:
        try:
            return cls._from_wire(d)
        except (KeyError, TypeError, ValueError) as e:
            raise SandboxError(f"runner sent a malformed outcome: {e!r}") from None

    @classmethod
    def _from_wire(cls, d: dict[str, Any]) -> RunOutcome:
        oom = d.get("oom_killed")
        return cls(
            exit_code=d["exit_code"],
            signal=d["signal"],
            cpu_time_s=float(d["cpu_time_s"]),
            wall_time_s=float(d["wall_time_s"]),
            max_rss_kb=int(d["max_rss_kb"]),
            timed_out=bool(d["timed_out"]),
            output_exceeded=bool(d["output_exceeded"]),
            stdout=base64.b64decode(d["stdout"]),
            stderr=base64.b64decode(d["stderr"]),
            channel=base64.b64decode(d["channel"]),
            spawn_error=str(d.get("spawn_error", "")),
            oom_killed=None if oom is None else bool(oom),
            files={str(k): base64.b64decode(v) for k, v in d.get("files", {}).items()},
        )


class MemoryControl(Protocol):
    def limit(self, memory_mb: int) -> None: ...

    def exhausted(self) -> bool:
        """The OOM killer struck since the last limit (the program used it all up)."""
        ...


class Session(Protocol):
    """One warm runner, held by one job at a time."""

    def limit_memory(self, memory_mb: int) -> None: ...

    def memory_exhausted(self) -> bool: ...

    def put(self, files: dict[str, bytes]) -> None:
        """Write files into the build dir; PutRejected for a path that cannot be."""
        ...

    def run(self, spec: RunSpec) -> RunOutcome: ...

    def run_many(self, specs: list[RunSpec]) -> list[RunOutcome]: ...


class Sandbox(Protocol):
    name: str

    def session(self) -> AbstractContextManager[Session]: ...

    def close(self) -> None: ...


