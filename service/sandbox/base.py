"""The sandbox interface every backend implements, and what a run returns."""

from __future__ import annotations

import base64
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol


class SandboxError(Exception):
    """Infrastructure failure: never the program's fault, never scored as a verdict."""


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


@dataclass(frozen=True)
class RunSpec:
    argv: list[str]
    limits: RunLimits
    env: dict[str, str]
    stdin: str = ""
    files: dict[str, str] = field(default_factory=dict)
    in_build_dir: bool = False


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

    @property
    def ok(self) -> bool:
        return (self.exit_code == 0 and not self.timed_out and not self.output_exceeded
                and not self.spawn_error)

    @classmethod
    def from_wire(cls, d: dict[str, Any]) -> RunOutcome:
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
            spawn_error=d.get("spawn_error", ""),
        )


class Session(Protocol):
    """One warm runner, held by one job at a time."""

    def put(self, files: dict[str, str]) -> None: ...

    def run(self, spec: RunSpec) -> RunOutcome: ...

    def run_many(self, specs: list[RunSpec]) -> list[RunOutcome]: ...


class Sandbox(Protocol):
    name: str

    def session(self) -> AbstractContextManager[Session]: ...

    def close(self) -> None: ...


