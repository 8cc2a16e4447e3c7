"""Batched execution through a real Redis and real worker processes: nothing lost, no dupes."""

from __future__ import annotations

import os
import signal
import threading
import time

import httpx
import pytest
import redis

from service import keys
from service.client import ExecutionClient, ServiceError, free_port
from service.schema import ExecuteRequest, Verdict
from service.worker_store import WorkerStore
from tests.integration.queue_helpers import fresh_db, workers_alive


def job(i: int, sleep_s: float = 0.0, right: bool = True) -> ExecuteRequest:
    code = f"import time\ntime.sleep({sleep_s})\nprint({i})\n" if sleep_s else f"print({i})\n"
    expected = str(i) if right else str(i + 1)
    tests = [{"type": "stdio", "expected_stdout": expected}]
    return ExecuteRequest.model_validate({"id": f"job-{i}", "language": "python", "code": code,
                                          "tests": tests})


def assert_exactly_once(results, requests, url: str) -> None:
    assert [r.id for r in results] == [q.id for q in requests]
    r = redis.Redis.from_url(url, decode_responses=True)
    assert r.xlen(keys.JOBS) == 0  # every job acked and gone
    for meta in r.scan_iter("rlef:batch:*:meta"):
        total, done = r.hmget(meta, ["total", "done"])
        assert int(done) == int(total)  # counted once each
        assert r.hlen(meta.replace(":meta", ":results")) == int(total)


def test_thousand_jobs_three_workers(procs):
    url = fresh_db(1)
    for _ in range(3):
        procs.worker(url)
    api = procs.api(url)
    workers_alive(url, 3)
    reqs = [job(i, right=i % 3 != 0) for i in range(1000)]
    results = ExecutionClient(api, batch_size=250).execute_many(reqs)
    assert_exactly_once(results, reqs, url)
    for i, res in enumerate(results):
        assert res.status == "ok", res.error
        assert res.verdict == (Verdict.wrong_answer if i % 3 == 0 else Verdict.accepted)
    stats = redis.Redis.from_url(url, decode_responses=True).hgetall(keys.STATS)
    assert int(stats["verdict:accepted"]) + int(stats["verdict:wrong_answer"]) == 1000
    metrics = httpx.get(f"{api}/metrics").text
    assert "rlef_workers 3.0" in metrics and "rlef_queue_depth 0.0" in metrics


def test_killed_worker_jobs_are_reclaimed(procs):
    url = fresh_db(2)
    env = {"RLEF_VISIBILITY_TIMEOUT_S": "3"}
    victim = procs.worker(url, **env)
    for _ in range(2):
        procs.worker(url, **env)
    workers_alive(url, 3)
    reqs = [job(i, sleep_s=0.2) for i in range(150)]
    out: dict = {}
    t = threading.Thread(target=lambda: out.update(r=ExecutionClient(url).execute_many(reqs)))
    t.start()
    r = redis.Redis.from_url(url, decode_responses=True)

    def victim_holds_a_job() -> bool:  # consumer names carry the worker's pid
        pending = r.xpending(keys.JOBS, keys.GROUP)
        return any(f"-{victim.pid}-" in c["name"] and int(c["pending"]) > 0
                   for c in pending.get("consumers") or [])

    deadline = time.monotonic() + 30
    while int(r.hget(keys.STATS, "verdict:accepted") or 0) < 20 and time.monotonic() < deadline:
        time.sleep(0.05)
    while not victim_holds_a_job() and time.monotonic() < deadline:
        time.sleep(0.005)
    os.killpg(victim.pid, signal.SIGKILL)  # mid-job: it holds a claimed, unacked job
    t.join(timeout=120)
    assert not t.is_alive()
    assert_exactly_once(out["r"], reqs, url)
    assert all(res.verdict == Verdict.accepted for res in out["r"])
    assert int(r.hget(keys.STATS, "reclaims") or 0) >= 1


def test_backpressure_429_then_client_retries(procs):
    url = fresh_db(3)
    procs.worker(url)
    api = procs.api(url, RLEF_MAX_QUEUE_DEPTH="20")
    workers_alive(url, 1)
    body = {"requests": [job(i).model_dump() for i in range(25)]}
    resp = httpx.post(f"{api}/batches", json=body)
    assert resp.status_code == 429 and "queue is full" in resp.json()["detail"]
    assert int(resp.headers["retry-after"]) >= 1
    reqs = [job(i, sleep_s=0.02) for i in range(100)]
    results = ExecutionClient(api, batch_size=10, retry_s=120).execute_many(reqs)
    assert [r.id for r in results] == [q.id for q in reqs]
    assert all(r.verdict == Verdict.accepted for r in results)


def test_no_workers_is_503_with_reason(procs):
    url = fresh_db(4)
    api = procs.api(url)
    start = time.monotonic()
    resp = httpx.post(f"{api}/execute", json=job(1).model_dump(), timeout=30)
    assert resp.status_code == 503
    assert "no live workers" in resp.json()["detail"]
    assert time.monotonic() - start < 5
    with pytest.raises(ServiceError, match="no live workers"):
        ExecutionClient(api, retry_s=2).execute_many([job(1)])


def test_redis_restart_mid_run(procs, tmp_path):
    port = free_port()
    data = tmp_path / "redis"
    data.mkdir()
    server = procs.redis_server(port, data)
    url = f"redis://127.0.0.1:{port}/0"
    procs.worker(url)
    api = procs.api(url)
    workers_alive(url, 1)
    reqs = [job(i, sleep_s=0.02) for i in range(60)]
    out: dict = {}

    def call() -> None:
        try:
            out["r"] = ExecutionClient(api, retry_s=60).execute_many(reqs)
        except ServiceError as e:
            out["e"] = e

    t = threading.Thread(target=call)
    t.start()
    time.sleep(1.0)
    server.send_signal(signal.SIGKILL)
    server.wait()
    time.sleep(1.0)
    procs.redis_server(port, data)  # same data dir: the append-only file brings the jobs back
    t.join(timeout=120)
    assert not t.is_alive(), "client hung"
    assert "r" in out or "e" in out
    if "r" in out:
        assert [r.id for r in out["r"]] == [q.id for q in reqs]
    else:
        assert "batch" in str(out["e"]) or "Redis" in str(out["e"])
    # the service and the worker are back: a new job completes
    res = ExecutionClient(api, retry_s=60).execute(job(7))
    assert res.verdict == Verdict.accepted


def test_requeue_keeps_the_job_record_and_counts_the_attempt():
    store = WorkerStore(fresh_db(7), "t", ttl_s=60)
    store.ensure_group()
    store.r.xadd(keys.JOBS, keys.Job("b1", 3, 0, '{"x": 1}', 123.5).fields())
    [first] = store.claim(1, block_ms=100)
    assert (first.batch_id, first.index, first.attempts, first.request_json, first.enqueued) \
        == ("b1", 3, 1, '{"x": 1}', 123.5)
    store.requeue(first)
    [second] = store.claim(1, block_ms=100)
    assert second.stream_id != first.stream_id and store.r.xlen(keys.JOBS) == 1
    assert (second.batch_id, second.index, second.attempts, second.request_json,
            second.enqueued) == ("b1", 3, 2, '{"x": 1}', 123.5)
