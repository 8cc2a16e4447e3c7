"""`rlef worker`: claim job -> run -> judge -> publish result, N at a time.

Each of N threads claims one job, runs it on the warm sandbox pool and stores the result
(which acks it). A background thread beats the heartbeat, keeps the jobs running here
from being reclaimed, and reclaims jobs of workers that died. On SIGTERM the worker stops
claiming, finishes the jobs in hand and leaves.
"""

from __future__ import annotations

import logging
import os
import queue
import signal
import socket
import threading
import time
import uuid
from types import FrameType

from redis.exceptions import RedisError

from service.executor import Policy, execute
from service.sandbox.base import Sandbox
from service.schema import ExecuteRequest, ExecuteResult
from service.worker_store import Job, WorkerStore

log = logging.getLogger(__name__)


class Worker:
    def __init__(self, store: WorkerStore, sandbox: Sandbox, policy: Policy, concurrency: int,
                 visibility_s: float = 60.0, max_attempts: int = 3,
                 heartbeat_s: float = 2.0) -> None:
        self.store, self.sandbox, self.policy = store, sandbox, policy
        self.concurrency = concurrency
        self.visibility_ms = int(visibility_s * 1000)
        self.max_attempts = max_attempts
        self.heartbeat_s = heartbeat_s
        self.stop = threading.Event()
        self._in_hand: dict[str, Job] = {}
        self._reclaimed: queue.Queue[Job] = queue.Queue()
        self._lock = threading.Lock()
        self.done = 0

    def run(self) -> None:
        self._retrying(self.store.ensure_group)
        threads = [threading.Thread(target=self._loop, name=f"job-{i}", daemon=True)
                   for i in range(self.concurrency)]
        for t in threads:
            t.start()
        try:
            while not self.stop.is_set():
                self._retrying(self._maintain)
                self.stop.wait(self.heartbeat_s)
        finally:
            for t in threads:
                t.join()
            self._retrying(self.store.goodbye, attempts=3)
            log.info("worker %s stopped after %d jobs", self.store.consumer, self.done)

    def _retrying(self, fn, attempts: int | None = None) -> None:  # type: ignore[no-untyped-def]
        delay, tries = 0.2, 0
        while True:
            try:
                fn()
                return
            except RedisError as e:
                tries += 1
                if self.stop.is_set() and attempts is None or (attempts and tries >= attempts):
                    log.warning("giving up on Redis: %s", e)
                    return
                log.warning("Redis unavailable (%s); retrying in %.1fs", e, delay)
                time.sleep(delay)
                delay = min(delay * 2, 5.0)

    def _maintain(self) -> None:
        self.store.heartbeat({"pid": os.getpid(), "host": socket.gethostname(),
                              "concurrency": self.concurrency, "done": self.done},
                             ttl_s=max(5, int(self.heartbeat_s * 3)))
        with self._lock:
            running = list(self._in_hand)
        self.store.touch(running)
        if self._reclaimed.empty():
            for job in self.store.reclaim(self.visibility_ms, count=self.concurrency):
                self._reclaimed.put(job)

    def _next(self) -> Job | None:
        try:
            return self._reclaimed.get_nowait()
        except queue.Empty:
            return next(iter(self.store.claim(count=1, block_ms=500)), None)

    def _loop(self) -> None:
        while not self.stop.is_set():
            try:
                job = self._next()
            except RedisError as e:
                log.warning("claim failed (%s); retrying", e)
                self.stop.wait(1.0)
                continue
            if job is not None:
                self._handle(job)

    def _handle(self, job: Job) -> None:
        with self._lock:
            self._in_hand[job.stream_id] = job
        try:
            result = self._run(job)
            if result.status == "sandbox_error" and job.attempts < self.max_attempts:
                log.warning("job %s attempt %d: %s; requeued", job.stream_id, job.attempts,
                            result.error)
                self._retrying(lambda: self.store.requeue(job), attempts=20)
                return
            if result.status == "sandbox_error":
                result.error = f"failed after {job.attempts} attempts: {result.error}"
            self._retrying(lambda: self.store.store(job, result), attempts=20)
            self.done += 1
        finally:
            with self._lock:
                self._in_hand.pop(job.stream_id, None)

    def _run(self, job: Job) -> ExecuteResult:
        try:
            req = ExecuteRequest.model_validate_json(job.request_json)
        except ValueError as e:  # validated by the API; only a foreign producer gets here
            return ExecuteResult(status="sandbox_error", error=f"malformed job: {e}")
        return execute(req, self.sandbox, self.policy)


def consumer_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


def install_signal_handlers(worker: Worker) -> None:
    def handle(signum: int, frame: FrameType | None) -> None:
        log.info("signal %d: finishing jobs in hand, then stopping", signum)
        worker.stop.set()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)
