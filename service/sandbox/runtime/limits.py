"""The one table of per-run limits.

`table` turns a run's limits into (resource, soft, hard) triples; the fork server applies
them with setrlimit, the C launcher receives them on its command line and applies them
as given, and the fallback (no C compiler) applies them in a preexec function.
"""

import math
import os
import resource
import signal

MB = 1 << 20
NOFILE = 256


def table(limits, nproc):
    """[(resource, soft, hard)] for one run."""
    cpu = max(1, math.ceil(limits["cpu_time_s"]))
    fsize = max(64 * MB, 2 * limits["output_kb"] * 1024)
    rows = [(resource.RLIMIT_CPU, cpu, cpu + 1), (resource.RLIMIT_CORE, 0, 0),
            (resource.RLIMIT_NOFILE, NOFILE, NOFILE), (resource.RLIMIT_FSIZE, fsize, fsize)]
    if limits.get("address_space", True):
        # Unlimited stack: the address-space limit bounds it, and glibc then gives each
        # thread a small default stack instead of one the size of RLIMIT_STACK.
        mem = limits["memory_mb"] * MB
        rows += [(resource.RLIMIT_STACK, resource.RLIM_INFINITY, resource.RLIM_INFINITY),
                 (resource.RLIMIT_AS, mem, mem)]
    else:
        rows.append((resource.RLIMIT_STACK, 256 * MB, 256 * MB))
    if nproc:
        rows.append((resource.RLIMIT_NPROC, limits["pids"], limits["pids"]))
    return rows


def as_argv(rows):
    """The table as the C launcher's arguments: COUNT then RES SOFT HARD triples."""
    out = [str(len(rows))]
    for res, soft, hard in rows:
        out += [str(res), str(soft & 0xFFFFFFFFFFFFFFFF), str(hard & 0xFFFFFFFFFFFFFFFF)]
    return out


def first_to_die():
    """Programs are the first the OOM killer takes, never the runner or the fork server."""
    try:
        with open("/proc/self/oom_score_adj", "w") as f:
            f.write("1000")
    except OSError:
        pass  # not every kernel (gVisor) exposes it: the cgroup still bounds the sandbox


def apply(rows):
    """In a child, before it runs anything of the program's."""
    for res, soft, hard in rows:
        resource.setrlimit(res, (soft, hard))
    for sig in (signal.SIGPIPE, signal.SIGINT, signal.SIGTERM, signal.SIGCHLD):
        signal.signal(sig, signal.SIG_DFL)
    first_to_die()


def close_fds_above(keep):
    """Close every fd above `keep` (listing /proc is cheaper than closerange on 1M fds)."""
    for fd in [int(n) for n in os.listdir("/proc/self/fd")]:
        if fd > keep:
            try:
                os.close(fd)
            except OSError:
                pass
