"""The sandbox's memory cgroup, read from inside: how many processes the OOM killer took.

The host sets the cgroup's limit for each job (the request's memory_mb plus what the
runner itself holds) and mounts the cgroup read-only where the runner can read it; a run
during which the count went up went over its memory limit, whatever its exit code.
Without a readable cgroup (gVisor, an unprivileged host), `oom_kills` is None and the
rlimits are the bound.
"""

import os


def events_file(roots):
    """The first of the candidate cgroup dirs (':'-separated) that shows OOM kills."""
    for root in (roots or "").split(":"):
        for name in ("memory.events", "memory.oom_control"):  # cgroup v2, v1
            path = os.path.join(root, name)
            if root and oom_kills(path) is not None:
                return path
    return None


def oom_kills(path):
    if path is None:
        return None
    try:
        with open(path) as f:
            for line in f:
                key, _, value = line.partition(" ")
                if key == "oom_kill":
                    return int(value)
    except (OSError, ValueError):
        return None
    return None
