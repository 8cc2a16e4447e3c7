"""Every Redis key rlef uses, and the fields of a job on the stream, named in one place."""

from __future__ import annotations

import time
from dataclasses import dataclass

PREFIX = "rlef"
JOBS = f"{PREFIX}:jobs"  # stream of jobs; consumer group GROUP
GROUP = f"{PREFIX}:workers"
STATS = f"{PREFIX}:stats"  # hash of counters: verdict:*, reclaims, sandbox_errors, ...
WORKER_GLOB = f"{PREFIX}:worker:*"


def worker(name: str) -> str:
    """Heartbeat of one worker (expires when it stops beating); its value, JSON with the
    worker's pid and host, is for people looking with redis-cli."""
    return f"{PREFIX}:worker:{name}"


def batch_meta(batch_id: str) -> str:
    """Hash: total, done."""
    return f"{PREFIX}:batch:{batch_id}:meta"


def batch_results(batch_id: str) -> str:
    """Hash: request index -> ExecuteResult JSON (written once per index)."""
    return f"{PREFIX}:batch:{batch_id}:results"


def batch_notify(batch_id: str) -> str:
    """List pushed on each new result, so waiters block instead of polling."""
    return f"{PREFIX}:batch:{batch_id}:notify"


@dataclass
class Job:
    """One job on the JOBS stream. Its entry's fields are written and read only here
    (submit, requeue and claim all go through `fields` and `parse`)."""

    batch_id: str
    index: int  # of the request in its batch
    attempts: int  # runs so far: 0 when submitted, counting this delivery once claimed
    request_json: str  # the ExecuteRequest, as the client sent it
    enqueued: float  # time.time() when first submitted; kept across requeues
    stream_id: str = ""  # the entry's id, once read back from the stream

    def fields(self) -> dict[str, str | int | float]:
        return {"b": self.batch_id, "i": self.index, "a": self.attempts, "r": self.request_json,
                "t": self.enqueued}

    @classmethod
    def parse(cls, stream_id: str, fields: dict[str, str], deliveries: int = 1) -> Job:
        """`deliveries`: how often the stream has handed this entry out, this time included."""
        return cls(batch_id=fields["b"], index=int(fields["i"]),
                   attempts=int(fields.get("a", 0)) + deliveries, request_json=fields["r"],
                   enqueued=float(fields.get("t", time.time())), stream_id=stream_id)
