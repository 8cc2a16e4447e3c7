"""A sandbox's memory cgroup, from the host: the request's memory_mb made a real bound.

Each sandbox sits in a memory cgroup of its own (v1 or v2). Before each phase of a job
(compiling, running the tests) the host sets the cgroup's limit to that phase's memory
plus what the runner and the fork server hold right then, so a program's heap, mmaps,
shared memory, memfds and tmpfs files together cannot pass `memory_mb` without the
OOM killer taking it; the runner reads the kill count (read-only) to judge the run.
Only the host writes here, on cgroupfs, which the sandbox never sees writable.
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from pathlib import Path

from service.sandbox.base import SandboxError

log = logging.getLogger(__name__)
MB = 1 << 20
V2_ROOT = Path("/sys/fs/cgroup")
V1_ROOT = Path("/sys/fs/cgroup/memory")


def _v2_has_memory() -> bool:
    try:
        return "memory" in (V2_ROOT / "cgroup.controllers").read_text().split()
    except OSError:
        return False


class MemoryCgroup:
    """One sandbox's memory cgroup, or an existing one (a container's) to steer."""

    def __init__(self, path: Path, v2: bool) -> None:
        self.path, self.v2 = path, v2
        self.kills_at_limit = 0

    @classmethod
    def create(cls) -> MemoryCgroup | None:
        """A new cgroup under rlef/, or None where this host gives none (not root)."""
        if os.geteuid() != 0:
            return None
        v2 = _v2_has_memory()
        root = V2_ROOT if v2 else V1_ROOT
        if not (root / "cgroup.procs").exists():
            return None
        path = root / "rlef" / uuid.uuid4().hex[:12]
        try:
            path.mkdir(parents=True)
            if v2:
                for parent in (root, root / "rlef"):
                    (parent / "cgroup.subtree_control").write_text("+memory")
        except OSError as e:
            log.warning("no memory cgroup for sandboxes (%s): rlimits only", e)
            return None
        return cls(path, v2)

    @property
    def procs_file(self) -> str:
        return str(self.path / "cgroup.procs")

    def _stat(self) -> dict[str, int]:
        out = {}
        for line in (self.path / "memory.stat").read_text().splitlines():
            key, _, value = line.partition(" ")
            if value.isdigit():
                out[key] = int(value)
        return out

    def held(self) -> int:
        """Memory that reclaim cannot take back (anonymous and shared/tmpfs pages)."""
        stat = self._stat()
        if self.v2:
            return stat.get("anon", 0) + stat.get("shmem", 0)
        return stat.get("total_rss", 0) + stat.get("total_shmem", 0)

    def oom_kills(self) -> int:
        name = "memory.events" if self.v2 else "memory.oom_control"
        try:
            for line in (self.path / name).read_text().splitlines():
                key, _, value = line.partition(" ")
                if key == "oom_kill":
                    return int(value)
        except (OSError, ValueError):
            pass
        return 0

    def exhausted(self) -> bool:
        """The OOM killer struck since the last limit was set (the program's memory)."""
        return self.oom_kills() > self.kills_at_limit

    def limit(self, memory_mb: int) -> None:
        """Bound what runs next to memory_mb on top of what the sandbox holds now."""
        self.kills_at_limit = self.oom_kills()
        value = memory_mb * MB + self.held()
        try:
            if self.v2:
                (self.path / "memory.max").write_text(str(value))
                (self.path / "memory.swap.max").write_text("0")
            else:
                self._v1_limit(value)
        except OSError as e:
            raise SandboxError(f"cannot set the sandbox's memory limit: {e}") from e

    def _v1_limit(self, value: int) -> None:
        mem = self.path / "memory.limit_in_bytes"
        memsw = self.path / "memory.memsw.limit_in_bytes"
        # memsw must stay >= mem: raise it first when growing, lower it last when shrinking
        order = [mem, memsw] if value < int(mem.read_text()) else [memsw, mem]
        for f in order:
            if f.exists():
                f.write_text(str(value))

    def remove(self, wait_s: float = 5.0) -> None:
        """rmdir once the sandbox's last process is gone (they die asynchronously)."""
        end = time.monotonic() + wait_s
        while True:
            try:
                self.path.rmdir()
                return
            except FileNotFoundError:
                return
            except OSError:
                if time.monotonic() > end:
                    log.warning("cgroup %s still busy; left behind", self.path)
                    return
                time.sleep(0.01)


def docker_cgroup(pid: int) -> MemoryCgroup | None:
    """A container's memory cgroup as this host sees it (via its init's pid), or None
    (the worker runs in a container of its own, or not as root)."""
    if os.geteuid() != 0 or pid <= 0:
        return None
    v2 = _v2_has_memory()
    try:
        lines = Path(f"/proc/{pid}/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        _, controllers, rel = line.split(":", 2)
        if (v2 and controllers == "") or (not v2 and "memory" in controllers.split(",")):
            path = (V2_ROOT if v2 else V1_ROOT) / rel.lstrip("/")
            if (path / ("memory.max" if v2 else "memory.limit_in_bytes")).exists():
                return MemoryCgroup(path, v2)
    return None
