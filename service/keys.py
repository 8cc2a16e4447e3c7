"""Every Redis key rlef uses, named in one place."""

PREFIX = "rlef"
JOBS = f"{PREFIX}:jobs"  # stream of jobs; consumer group GROUP
GROUP = f"{PREFIX}:workers"
STATS = f"{PREFIX}:stats"  # hash of counters: verdict:*, reclaims, sandbox_errors, ...
WORKER_GLOB = f"{PREFIX}:worker:*"


def worker(name: str) -> str:
    """Heartbeat of one worker (expires when it stops beating)."""
    return f"{PREFIX}:worker:{name}"


def batch_meta(batch_id: str) -> str:
    """Hash: total, done, created."""
    return f"{PREFIX}:batch:{batch_id}:meta"


def batch_results(batch_id: str) -> str:
    """Hash: request index -> ExecuteResult JSON (written once per index)."""
    return f"{PREFIX}:batch:{batch_id}:results"


def batch_notify(batch_id: str) -> str:
    """List pushed on each new result, so waiters block instead of polling."""
    return f"{PREFIX}:batch:{batch_id}:notify"
