"""Process control inside the sandbox: nothing a run started outlives it.

The runner is PID 1 of the sandbox's pid namespace, so every orphan is reparented to
it. After each run it SIGKILLs every process but itself and the fork server, zombies
included (a zombie thread-group leader whose other threads still run is alive in all but
name, and killing its pid kills the group), reaps them, and checks that no task is left.
The CPU time of everything it reaps counts in the run (the fork server's own excepted:
it holds every earlier run's).
"""

import os
import resource
import signal
import time


def starttime(pid):
    """The process's start time in clock ticks: tells a pid from a later reuse of it."""
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            return int(f.read().rsplit(b")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def state(pid):
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0].decode()
    except (OSError, IndexError):
        return None


def all_pids():
    return [int(n) for n in os.listdir("/proc") if n.isdigit()]


def reap(on_reaped=None):
    """Reap every child that has exited; on_reaped(pid, status, cpu seconds) for each."""
    while True:
        try:
            pid, status, ru = os.wait4(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        if on_reaped is not None:
            on_reaped(pid, status, ru.ru_utime + ru.ru_stime)


def kill_all(keep, deadline_s=3.0, on_reaped=None):
    """SIGKILL every process but ourselves and `keep`, reap, and verify: True when no
    other task is left (`keep` re-checked by the caller)."""
    me = os.getpid()
    spare = set(keep) | {me}
    end = time.monotonic() + deadline_s
    while True:
        left = [p for p in all_pids() if p not in spare]
        for pid in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        reap(on_reaped)
        if not left:
            return True
        if time.monotonic() > end:
            return False
        time.sleep(0.0001)  # SIGKILLed processes take a moment to become reapable


def own_peak_kb():
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


RLIMITS = tuple(getattr(resource, n) for n in dir(resource) if n.startswith("RLIMIT_"))


def fingerprint(pid):
    """A process's rlimits and scheduling, to tell whether someone changed them."""
    try:
        return (tuple(resource.prlimit(pid, r) for r in RLIMITS),
                os.getpriority(os.PRIO_PROCESS, pid), tuple(sorted(os.sched_getaffinity(pid))),
                os.sched_getscheduler(pid))
    except OSError:
        return None


def open_pidfd(pid):
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):  # gVisor and old kernels: the caller polls instead
        return None
