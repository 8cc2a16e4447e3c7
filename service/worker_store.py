"""Redis Streams queue, worker side (sync): claim, reclaim, store-and-ack, requeue."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import redis
from redis.exceptions import ResponseError

from service import keys
from service.keys import Job
from service.schema import ExecuteResult

# Store a result once, count it, wake waiters, and ack + delete the job: all or nothing.
STORE = """
local new = redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2])
if new == 1 then
  redis.call('HINCRBY', KEYS[2], 'done', 1)
  redis.call('RPUSH', KEYS[3], ARGV[1])
  redis.call('HINCRBY', KEYS[5], ARGV[6], 1)
  if ARGV[7] ~= '' then redis.call('HINCRBY', KEYS[5], ARGV[7], 1) end
  redis.call('HINCRBYFLOAT', KEYS[5], 'latency_sum', ARGV[8])
end
for i = 1, 3 do redis.call('EXPIRE', KEYS[i], ARGV[5]) end
redis.call('XACK', KEYS[4], ARGV[3], ARGV[4])
redis.call('XDEL', KEYS[4], ARGV[4])
return new
"""

# Put a job back for another attempt: a new entry (fields ARGV[3..], from Job.fields), the
# old one acked and deleted.
REQUEUE = """
redis.call('XADD', KEYS[1], '*', unpack(ARGV, 3))
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
return 1
"""

log = logging.getLogger(__name__)

LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


def latency_bucket(seconds: float) -> str:
    for le in LATENCY_BUCKETS:
        if seconds <= le:
            return f"latency_le_{le}"
    return "latency_le_inf"


class WorkerStore:
    def __init__(self, url: str, consumer: str, ttl_s: int = 3600) -> None:
        self.r: Any = redis.Redis.from_url(url, decode_responses=True, socket_connect_timeout=5,
                                      socket_timeout=30, health_check_interval=10)
        self.consumer = consumer
        self.ttl_s = ttl_s
        self._store = self.r.register_script(STORE)
        self._requeue = self.r.register_script(REQUEUE)

    def ensure_group(self) -> None:
        try:
            self.r.xgroup_create(keys.JOBS, keys.GROUP, id="0", mkstream=True)
        except ResponseError as e:
            if "BUSYGROUP" not in str(e):
                raise

    def claim(self, count: int, block_ms: int) -> list[Job]:
        try:
            reply = self.r.xreadgroup(keys.GROUP, self.consumer, {keys.JOBS: ">"},
                                      count=count, block=block_ms)
        except ResponseError as e:
            if "NOGROUP" not in str(e):  # Redis lost its data (restart): make the group again
                raise
            self.ensure_group()
            return []
        return [Job.parse(sid, fields) for _, entries in reply or [] for sid, fields in entries]

    def reclaim(self, min_idle_ms: int, count: int) -> list[Job]:
        """Jobs whose worker went silent for min_idle_ms: take them over."""
        try:
            pending = self.r.xpending_range(keys.JOBS, keys.GROUP, min="-", max="+",
                                            count=count, idle=min_idle_ms)
        except ResponseError:
            return []
        if not pending:
            return []
        deliveries = {p["message_id"]: int(p["times_delivered"]) for p in pending}
        claimed = self.r.xclaim(keys.JOBS, keys.GROUP, self.consumer, min_idle_ms,
                                list(deliveries))
        jobs = [Job.parse(sid, fields, deliveries.get(sid, 1) + 1)
                for sid, fields in claimed if fields]
        if jobs:
            self.r.hincrby(keys.STATS, "reclaims", len(jobs))
        return jobs

    def drop_malformed(self) -> int:
        """Ack and delete entries pending here that are not jobs (a foreign producer's):
        left pending, they would fail every claim and reclaim that meets them."""
        pending = self.r.xpending_range(keys.JOBS, keys.GROUP, min="-", max="+", count=100,
                                        consumername=self.consumer)
        dropped = 0
        for entry in pending:
            sid = entry["message_id"]
            for _, fields in self.r.xrange(keys.JOBS, sid, sid):
                try:
                    Job.parse(sid, fields)
                except (KeyError, ValueError, TypeError):
                    log.error("dropping malformed job entry %s: %r", sid, fields)
                    self.r.xack(keys.JOBS, keys.GROUP, sid)
                    self.r.xdel(keys.JOBS, sid)
                    dropped += 1
        return dropped

    def touch(self, stream_ids: list[str]) -> None:
        """Reset the idle time of jobs still running here, so nobody reclaims them."""
        if stream_ids:
            self.r.xclaim(keys.JOBS, keys.GROUP, self.consumer, 0, stream_ids, justid=True)

    def store(self, job: Job, result: ExecuteResult) -> bool:
        result = result.model_copy(update={"index": job.index})
        verdict = f"verdict:{result.verdict.value}" if result.verdict else "verdict:none"
        extra = "sandbox_errors" if result.status == "sandbox_error" else ""
        latency = time.time() - job.enqueued
        keys_ = [keys.batch_results(job.batch_id), keys.batch_meta(job.batch_id),
                 keys.batch_notify(job.batch_id), keys.JOBS, keys.STATS]
        args: list[Any] = [job.index, result.model_dump_json(), keys.GROUP, job.stream_id,
                           self.ttl_s, verdict, extra, latency]
        new = bool(self._store(keys=keys_, args=args))
        if new:
            self.r.hincrby(keys.STATS, latency_bucket(latency), 1)
        return new

    def requeue(self, job: Job) -> None:
        fields = [x for pair in job.fields().items() for x in pair]
        self._requeue(keys=[keys.JOBS], args=[keys.GROUP, job.stream_id, *fields])
        self.r.hincrby(keys.STATS, "retries", 1)

    def heartbeat(self, info: dict[str, Any], ttl_s: int) -> None:
        self.r.set(keys.worker(self.consumer), json.dumps(info), ex=ttl_s)

    def goodbye(self) -> None:
        self.r.delete(keys.worker(self.consumer))
