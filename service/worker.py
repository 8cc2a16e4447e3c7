"""`rlef worker`: claim job -> run -> judge -> publish result, N at a time.

Each of N threads claims one job, runs it on the warm sandbox pool and stores the result
(which acks it). A background thread beats the heartbeat, keeps the jobs running here
from being reclaimed, and reclaims jobs of workers that died. On SIGTERM the worker stops
claiming, finishes the jobs in hand and leaves.

No exception while handling a job stops consumption: it becomes a `sandbox_error` result
(retried up to max_attempts) logged with its traceback, and a job thread that dies anyway
is restarted. The heartbeat counts the job threads alive; with none, it stops beating.
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

from service.executor import ExecutorConfig
from service.jobs import run_job
from service.sandbox.base import Sandbox
from service.schema import ExecuteRequest, ExecuteResult
from service.settings import Settings
from service.validation import request_problems
from service.worker_store import Job, WorkerStore

log = logging.getLogger(__name__)


class Worker:
    def __init__(self, store: WorkerStore, sandbox: Sandbox, exec_config: ExecutorConfig,
                 concurrency: int, visibility_s: float = 60.0, max_attempts: int = 3,
                 heartbeat_s: float = 2.0, settings: Settings | None = None) -> None:
        self.store, self.sandbox, self.exec_config = store, sandbox, exec_config
        # With settings, each job is held to this server's maxima again: a producer that
        # writes to Redis directly (the client's redis:// mode) never passed the API's check.
        self.settings = settings
        self.concurrency = concurrency
        self.visibility_ms = int(visibility_s * 1000)
        self.max_attempts = max_attempts
        self.heartbeat_s = heartbeat_s
        self.stop = threading.Event()
        self._in_hand: dict[str, Job] = {}
        self._reclaimed: queue.Queue[Job] = queue.Queue()
        self._lock = threading.Lock()
        self.done = 0
        self.alive = 0  # job threads alive at the last heartbeat
        self.restarts = 0

    def run(self) -> None:
        self._retrying(self.store.ensure_group)
        threads = [self._start(i) for i in range(self.concurrency)]
        try:
            while not self.stop.is_set():
                threads = [t if t.is_alive() else self._restart(t) for t in threads]
                self.alive = sum(t.is_alive() for t in threads)
                try:
                    self._retrying(self._maintain)
                except Exception:  # e.g. a malformed job entry met while reclaiming
                    log.exception("heartbeat/reclaim failed; going on")
                    self._drop_malformed()
                self.stop.wait(self.heartbeat_s)
        finally:
            for t in threads:
                t.join()
            self._retrying(self.store.goodbye, attempts=3)
            log.info("worker %s stopped after %d jobs", self.store.consumer, self.done)

    def _start(self, i: int) -> threading.Thread:
        t = threading.Thread(target=self._loop, name=f"job-{i}", daemon=True)
        t.start()
        return t

    def _restart(self, dead: threading.Thread) -> threading.Thread:
        log.error("job thread %s died; starting another", dead.name)
        self.restarts += 1
        return self._start(int(dead.name.rsplit("-", 1)[1]))

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
        if self.alive == 0:  # nothing here would take a job: let the heartbeat expire
            log.error("no job thread alive; not beating")
            return
        with self._lock:
            running = list(self._in_hand)
        self.store.heartbeat({"pid": os.getpid(), "host": socket.gethostname(),
                              "concurrency": self.concurrency, "threads": self.alive,
                              "busy": len(running), "restarts": self.restarts,
                              "done": self.done}, ttl_s=max(5, int(self.heartbeat_s * 3)))
        self.store.touch(running)
        if self._reclaimed.empty():
            for job in self.store.reclaim(self.visibility_ms, count=self.concurrency):
                self._reclaimed.put(job)

    def _drop_malformed(self) -> None:
        """Ack and delete entries pending here that are not jobs (a foreign producer's):
        left pending, they would fail every claim and reclaim that meets them."""
        try:
            self.store.drop_malformed()
        except Exception:
            log.exception("could not drop malformed job entries")

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
            except Exception:  # a stream entry that is not a job
                log.exception("claim failed")
                self._drop_malformed()
                continue
            if job is not None:
                self._handle(job)

    def _handle(self, job: Job) -> None:
        with self._lock:
            self._in_hand[job.stream_id] = job
        try:
            self._finish(job, *self._run(job))
        except Exception:  # not stored: the job stays pending and is reclaimed later
            log.exception("job %s: could not store its result", job.stream_id)
        finally:
            with self._lock:
                self._in_hand.pop(job.stream_id, None)

    def _finish(self, job: Job, result: ExecuteResult, retryable: bool) -> None:
        if result.status == "sandbox_error" and retryable and job.attempts < self.max_attempts:
            log.warning("job %s attempt %d: %s; requeued", job.stream_id, job.attempts,
                        result.error)
            self._retrying(lambda: self.store.requeue(job), attempts=20)
            return
        if result.status == "sandbox_error" and retryable:
            result.error = f"failed after {job.attempts} attempts: {result.error}"
        self._retrying(lambda: self.store.store(job, result), attempts=20)
        self.done += 1

    def _run(self, job: Job) -> tuple[ExecuteResult, bool]:
        """The job's result, and whether another attempt could give a different one."""
        try:
            req = ExecuteRequest.model_validate_json(job.request_json)
        except ValueError as e:  # validated by the API; only a foreign producer gets here
            return ExecuteResult(status="sandbox_error", error=f"malformed job: {e}"), False
        problems = request_problems(req, self.settings) if self.settings else []
        if problems:
            return ExecuteResult(id=req.id, status="sandbox_error", total=len(req.tests),
                                 error="request refused: " + "; ".join(problems)), False
        return run_job(req, self.sandbox, self.exec_config), True


def consumer_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


def install_signal_handlers(worker: Worker) -> None:
    def handle(signum: int, frame: FrameType | None) -> None:
        log.info("signal %d: finishing jobs in hand, then stopping", signum)
        worker.stop.set()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)
