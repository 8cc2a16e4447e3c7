"""Local backend: each runner lives in its own bubblewrap namespaces, no Docker needed.

Isolation: new user, pid, net (loopback only), ipc, uts and cgroup namespaces; a
read-only view of the toolchains under /usr (not /usr/local) and a few /etc files;
private size-capped tmpfs for /work, /tmp and /dev/shm; no capabilities; nested user
namespaces disabled. When the service runs as root, bwrap itself is started as
`nobody`, so nothing in the sandbox maps to root, inside a memory cgroup of its own
whose limit the host sets per job (see cgroup.py); CPU, processes and output are bounded
by rlimits set by the runner.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from typing import Any

from service.sandbox.base import SandboxError
from service.sandbox.cgroup import MemoryCgroup
from service.sandbox.pool import WarmPool
from service.sandbox.protocol import BOOTSTRAP, PipeTransport, RunnerClient, start_runner

NOBODY = 65534
# Just what toolchains need from /etc; the service's own config stays invisible.
ETC_FILES = ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "alternatives", "java-17-openjdk",
             "ssl/certs", "localtime")


MEMCG_MOUNT = "/run/rlef-memcg"
USR_SKIPPED = ("local", "src")  # the host's own installs are not the sandbox's business


def bwrap_argv(work_mb: int, memcg: str | None = None) -> list[str]:
    argv = ["bwrap", "--unshare-all", "--unshare-user", "--disable-userns", "--as-pid-1",
            "--die-with-parent", "--new-session", "--uid", str(NOBODY), "--gid", str(NOBODY),
            "--hostname", "sandbox", "--cap-drop", "ALL"]
    for name in sorted(os.listdir("/usr")):
        if name not in USR_SKIPPED:
            argv += ["--ro-bind", f"/usr/{name}", f"/usr/{name}"]
    if memcg:
        argv += ["--ro-bind", memcg, MEMCG_MOUNT]
    for name in ("bin", "lib", "lib64", "sbin"):
        target = os.path.join("/", name)
        if os.path.islink(target):
            argv += ["--symlink", os.readlink(target), target]
        elif os.path.isdir(target):
            argv += ["--ro-bind", target, target]
    for name in ETC_FILES:
        argv += ["--ro-bind-try", f"/etc/{name}", f"/etc/{name}"]
    argv += ["--proc", "/proc", "--dev", "/dev",
             "--size", str(work_mb * 1024 * 1024), "--perms", "1777", "--tmpfs", "/work",
             "--size", str(64 * 1024 * 1024), "--perms", "1777", "--tmpfs", "/tmp",
             "--size", str(64 * 1024 * 1024), "--perms", "1777", "--tmpfs", "/dev/shm",
             "--remount-ro", "/", "--chdir", "/work",
             "--clearenv", "--setenv", "PATH", "/usr/bin:/bin",
             "/usr/bin/python3", "-c", BOOTSTRAP]
    return argv


class LocalRunner:
    def __init__(self, proc: subprocess.Popen[bytes], client: RunnerClient,
                 memory: MemoryCgroup | None) -> None:
        self.proc = proc
        self.client = client
        self.memory = memory

    def kill(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass  # already gone
        self.proc.wait()
        self.client.transport.close()
        if self.memory is not None:
            self.memory.remove()


def in_cgroup(argv: list[str], memory: MemoryCgroup | None) -> list[str]:
    """Join the cgroup before bwrap starts (so every process of the sandbox is in it),
    then drop to nobody."""
    if memory is None:
        return argv
    return ["sh", "-c", 'echo $$ > "$0" && exec setpriv --reuid=%d --regid=%d '
            '--clear-groups -- "$@"' % (NOBODY, NOBODY), memory.procs_file, *argv]


def start_local(work_mb: int) -> LocalRunner:
    if shutil.which("bwrap") is None:
        raise SandboxError("bubblewrap (bwrap) is not installed")
    memory = MemoryCgroup.create()
    drop: dict[str, Any] = {}
    if os.geteuid() == 0 and memory is None:
        drop = {"user": NOBODY, "group": NOBODY, "extra_groups": []}
    argv = in_cgroup(bwrap_argv(work_mb, str(memory.path) if memory else None), memory)
    proc = subprocess.Popen(
        argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=None,
        start_new_session=True, env={"PATH": "/usr/bin:/bin"}, **drop,
    )
    assert proc.stdin is not None and proc.stdout is not None
    transport = PipeTransport(os.dup(proc.stdin.fileno()), os.dup(proc.stdout.fileno()))
    proc.stdin.close()
    proc.stdout.close()
    runner = LocalRunner(proc, RunnerClient(transport, memory=memory), memory)
    return start_runner(runner, timeout_s=30, memcg=MEMCG_MOUNT if memory else None)


class LocalSandbox:
    name = "local"

    def __init__(self, pool_size: int = 2, max_jobs: int = 500, work_mb: int = 512) -> None:
        self.pool = WarmPool(lambda: start_local(work_mb), size=pool_size, max_jobs=max_jobs)
        self.pool.start()

    def session(self):  # type: ignore[no-untyped-def]
        return self.pool.session()

    def close(self) -> None:
        self.pool.close()
