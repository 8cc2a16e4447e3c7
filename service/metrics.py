"""Prometheus metrics: this process's own, plus the queue's and the workers' (from Redis)."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest

from service.schema import ExecuteResult

JOBS = Counter("rlef_jobs_total", "Jobs answered by this API process", ["verdict"])
SANDBOX_ERRORS = Counter("rlef_sandbox_errors_total", "Infrastructure failures seen here")
LATENCY = Histogram("rlef_execute_seconds", "Wall time of one job, compile and tests",
                    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60))
DEPTH = Gauge("rlef_queue_depth", "Jobs waiting or running")
IN_FLIGHT = Gauge("rlef_jobs_in_flight", "Jobs claimed by a worker, not yet acked")
WORKERS = Gauge("rlef_workers", "Workers with a live heartbeat")
WORKER_STATS = Gauge("rlef_worker_stat", "Counters kept by the workers in Redis", ["name"])


def observe(result: ExecuteResult) -> None:
    JOBS.labels(verdict=result.verdict.value if result.verdict else "none").inc()
    if result.status == "sandbox_error":
        SANDBOX_ERRORS.inc()
    LATENCY.observe(sum(t.wall_time_s for t in result.tests) + result.compile.time_s)


async def render(queue: object) -> tuple[bytes, str]:
    depth = getattr(queue, "depth", None)
    if depth is not None:
        DEPTH.set(await depth())
    WORKERS.set(await queue.workers())  # type: ignore[attr-defined]
    if hasattr(queue, "in_flight"):
        IN_FLIGHT.set(await queue.in_flight())
    if hasattr(queue, "stats"):
        for name, value in (await queue.stats()).items():
            WORKER_STATS.labels(name=name).set(float(value))
    return generate_latest(), CONTENT_TYPE_LATEST
