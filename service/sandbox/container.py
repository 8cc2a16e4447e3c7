"""Docker backend: a warm pool of containers, each running the runner as its PID 1.

Per container: no network, read-only root, exec-able tmpfs work dir, memory (no swap),
pids and CPU cgroup limits, every capability dropped, no-new-privileges, a random
non-root uid of its own (so RLIMIT_NPROC counts only its own processes). The runner is
sent in over the attach stream, so the image holds toolchains only. No `docker run`
per test or per job: containers are reused until dirty or `max_jobs`.
"""

from __future__ import annotations

import logging
import secrets
import socket
import struct
import time
import uuid
from typing import Any

import docker.errors
from docker.types import Ulimit

import docker
from service.sandbox.base import MemoryControl, SandboxError
from service.sandbox.cgroup import MemoryCgroup, docker_cgroup
from service.sandbox.pool import WarmPool
from service.sandbox.protocol import BOOTSTRAP, RunnerClient, start_runner

log = logging.getLogger(__name__)
LABEL = "rlef.sandbox"
_MUX = struct.Struct(">BxxxI")


class AttachTransport:
    """The container's stdin/stdout over Docker's attach socket (multiplexed frames)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._raw = b""
        self._pending = 0  # bytes of the current stdout frame still to hand out
        self.stderr_tail = b""

    def fileno(self) -> int:
        return self.sock.fileno()

    def send(self, data: bytes) -> None:
        try:
            self.sock.sendall(data)
        except OSError as e:
            raise SandboxError(f"container attach closed: {e}") from e

    def _fill(self, deadline: float) -> None:
        timeout = deadline - time.monotonic()
        if timeout <= 0:
            raise SandboxError("runner did not answer in time")
        self.sock.settimeout(timeout)
        try:
            chunk = self.sock.recv(262144)
        except TimeoutError:
            raise SandboxError("runner did not answer in time") from None
        except OSError as e:
            raise SandboxError(f"container attach failed: {e}") from e
        if not chunk:
            raise SandboxError(f"container exited: {self.stderr_tail[-500:]!r}")
        self._raw += chunk

    def recv(self, n: int, deadline: float) -> bytes:
        while True:
            if self._pending and self._raw:
                take = min(n, self._pending, len(self._raw))
                out, self._raw = self._raw[:take], self._raw[take:]
                self._pending -= take
                return out
            if not self._pending and len(self._raw) >= _MUX.size:
                stream, size = _MUX.unpack(self._raw[: _MUX.size])
                if stream == 1:
                    self._raw = self._raw[_MUX.size:]
                    self._pending = size
                    continue
                if len(self._raw) >= _MUX.size + size:  # stderr: keep its tail for errors
                    body = self._raw[_MUX.size: _MUX.size + size]
                    self.stderr_tail = (self.stderr_tail + body)[-4096:]
                    self._raw = self._raw[_MUX.size + size:]
                    continue
            self._fill(deadline)

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            log.debug("attach socket already closed")


class ContainerMemory:
    """The container's memory cgroup, written directly where this host can reach it,
    else through the engine (the worker runs in a container of its own), only when the
    limit changes."""

    SLACK_MB = 64  # the runner and the fork server, where the engine sets the limit

    def __init__(self, container: Any, cgroup: MemoryCgroup | None) -> None:
        self.container = container
        self.cgroup = cgroup
        self.current: int | None = None

    def limit(self, memory_mb: int) -> None:
        if self.cgroup is not None:
            self.cgroup.limit(memory_mb)
            return
        if memory_mb == self.current:
            return
        value = f"{memory_mb + self.SLACK_MB}m"
        try:
            self.container.update(mem_limit=value, memswap_limit=value)
        except docker.errors.DockerException as e:
            raise SandboxError(f"cannot set the sandbox's memory limit: {e}") from e
        self.current = memory_mb

    def exhausted(self) -> bool:
        """The cgroup saw OOM kills, or (it is gone with its container) the engine says
        the container's init was OOM-killed."""
        if self.cgroup is not None and self.cgroup.exhausted():
            return True
        try:
            self.container.wait(timeout=5)  # its runner is gone: let the engine catch up
            self.container.reload()
            return bool(self.container.attrs["State"].get("OOMKilled"))
        except (docker.errors.DockerException, OSError):
            return False  # still running (or unreachable): not an OOM the engine saw


def memory_control(container: Any, runtime: str) -> MemoryControl | None:
    """The per-job limit on the container's cgroup. Under gVisor the cgroup holds its
    user-space kernel too: a program over the limit may take the whole sandbox down,
    which the engine reports as an OOM kill, judged memory_limit_exceeded."""
    container.reload()
    return ContainerMemory(container, docker_cgroup(int(container.attrs["State"]["Pid"])))


class DockerRunner:
    def __init__(self, container: Any, client: RunnerClient) -> None:
        self.container = container
        self.client = client

    def kill(self) -> None:
        self.client.transport.close()
        try:
            self.container.remove(force=True)
        except docker.errors.DockerException:
            log.exception("could not remove container %s", self.container.short_id)


def pids_limit(pids: int, runtime: str) -> int:
    """gVisor's processes are not host tasks, but its sentry's host threads are counted by
    the pids cgroup and multiply under a fork bomb: a tight cap kills the whole sandbox.
    There the runner's RLIMIT_NPROC (enforced by gVisor) bounds the program; the cgroup
    cap only guards the host."""
    return max(pids, 8192) if runtime == "runsc" else pids


def container_config(image: str, settings: dict[str, Any]) -> dict[str, Any]:
    uid = 100000 + secrets.randbelow(1 << 30)
    return {
        "image": image,
        "command": ["python3", "-c", BOOTSTRAP],
        "stdin_open": True,
        "network_mode": "none",
        "read_only": True,
        "tmpfs": {
            "/work": f"rw,exec,nosuid,nodev,size={settings['work_mb']}m,mode=1777",
            "/tmp": "rw,nosuid,nodev,size=64m,mode=1777",
        },
        "shm_size": "64m",
        "mem_limit": f"{settings['memory_mb']}m",
        "memswap_limit": f"{settings['memory_mb']}m",
        "pids_limit": pids_limit(settings["pids"], settings["runtime"]),
        "nano_cpus": int(settings["cpus"] * 1e9),
        "cap_drop": ["ALL"],
        "security_opt": ["no-new-privileges"],
        "user": f"{uid}:{uid}",
        "ulimits": [Ulimit(name="nofile", soft=1024, hard=1024)],
        "hostname": "sandbox",
        "working_dir": "/work",
        "environment": {"PATH": "/usr/local/bin:/usr/bin:/bin"},
        "labels": {LABEL: settings["pool_id"]},
        "runtime": settings["runtime"],
        "init": False,
    }


def start_docker(api: docker.DockerClient, image: str, settings: dict[str, Any]) -> DockerRunner:
    try:
        container = api.containers.create(**container_config(image, settings))
        sock = container.attach_socket(
            params={"stdin": 1, "stdout": 1, "stderr": 1, "stream": 1})
        container.start()
    except docker.errors.DockerException as e:
        raise SandboxError(f"could not start a sandbox container: {e}") from e
    raw = sock._sock if hasattr(sock, "_sock") else sock
    try:
        memory = memory_control(container, settings["runtime"])
    except docker.errors.DockerException as e:
        container.remove(force=True)
        raise SandboxError(f"could not inspect a sandbox container: {e}") from e
    runner = DockerRunner(container, RunnerClient(AttachTransport(raw), memory=memory))
    # the container sees its own cgroup (read-only) at the cgroupfs root
    inside = None if memory is None else "/sys/fs/cgroup/memory:/sys/fs/cgroup"
    return start_runner(runner, timeout_s=60, memcg=inside)


class DockerSandbox:
    name = "docker"

    def __init__(self, image: str = "rlef-sandbox:latest", pool_size: int = 2,
                 max_jobs: int = 500, memory_mb: int = 2560, pids: int = 256,
                 cpus: float = 1.0, work_mb: int = 512, runtime: str = "runc") -> None:
        try:
            self.api = docker.from_env(timeout=60)
            self.api.ping()
            self.api.images.get(image)
        except docker.errors.ImageNotFound:
            raise SandboxError(f"sandbox image {image!r} not found: run `make images`") from None
        except docker.errors.DockerException as e:
            raise SandboxError(f"Docker engine unavailable: {e}") from e
        self.pool_id = uuid.uuid4().hex[:12]
        self.runtime = runtime
        settings = {"work_mb": work_mb, "memory_mb": memory_mb, "pids": pids, "cpus": cpus,
                    "runtime": runtime, "pool_id": self.pool_id}
        self.pool = WarmPool(lambda: start_docker(self.api, image, settings),
                             size=pool_size, max_jobs=max_jobs)
        self.pool.start()

    def session(self):  # type: ignore[no-untyped-def]
        return self.pool.session()

    def close(self) -> None:
        self.pool.close()
        for c in self.api.containers.list(all=True, filters={"label": f"{LABEL}={self.pool_id}"}):
            try:
                c.remove(force=True)
            except docker.errors.NotFound:
                continue  # removed by the pool already
