"""A pool of warm runners, shared by both backends.

A runner serves one job at a time. After each job it is reset in the background (every
process killed, scratch dirs wiped); one that is dirty after the reset, that failed,
or that has served `max_jobs` jobs is retired and a fresh one takes its place.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Protocol

from service.sandbox.base import SandboxError
from service.sandbox.protocol import RunnerClient

log = logging.getLogger(__name__)


class Launched(Protocol):
    client: RunnerClient

    def kill(self) -> None: ...


SandboxFactory = Callable[[], Launched]  # starts one sandbox with its runner


@dataclass
class PoolStats:
    """Counts for the logs and for acquire's error message."""

    launched: int = 0
    retired: int = 0
    launch_failures: int = 0


class WarmPool:
    def __init__(self, factory: SandboxFactory, size: int, max_jobs: int,
                 acquire_timeout_s: float = 120.0) -> None:
        self.factory = factory
        self.size = size
        self.max_jobs = max_jobs
        self.acquire_timeout_s = acquire_timeout_s
        self._idle: queue.Queue[Launched] = queue.Queue()
        self._bg = ThreadPoolExecutor(max_workers=max(2, size), thread_name_prefix="pool")
        self._lock = threading.Lock()
        self._closed = False
        self.stats = PoolStats()

    def start(self, wait: bool = True) -> None:
        futures = [self._bg.submit(self._replace) for _ in range(self.size)]
        if wait:
            for f in futures:
                f.result()

    @contextmanager
    def session(self) -> Iterator[RunnerClient]:
        handle = self._acquire()
        healthy = False
        try:
            yield handle.client
            healthy = True
        finally:
            handle.client.jobs += 1
            if healthy:
                self._bg.submit(self._recycle, handle)
            else:
                self._retire(handle)

    def close(self) -> None:
        self._closed = True
        # no cancel_futures: a cancelled recycle would strand its sandbox (a container
        # left behind); recycles after close kill instead, replacements return at once
        self._bg.shutdown(wait=True)
        while True:
            try:
                self._idle.get_nowait().kill()
            except queue.Empty:
                break

    def _acquire(self) -> Launched:
        deadline = time.monotonic() + self.acquire_timeout_s
        try:
            while True:
                handle = self._idle.get(timeout=max(0.0, deadline - time.monotonic()))
                if not handle.client.gone():
                    return handle
                # died while idle (killed from outside, OOM): replace it, take another
                log.warning("an idle sandbox died; replacing it")
                self._retire(handle)
        except queue.Empty:
            raise SandboxError(
                f"no sandbox free within {self.acquire_timeout_s:.0f}s "
                f"(pool {self.size}, launch failures {self.stats.launch_failures})"
            ) from None

    def _recycle(self, handle: Launched) -> None:
        try:
            state = handle.client.reset()
        except SandboxError:
            log.exception("runner reset failed; retiring it")
            self._retire(handle)
            return
        if not state.get("clean"):
            log.warning("runner left dirty (%s); retiring it", state.get("leftovers"))
            self._retire(handle)
        elif handle.client.jobs >= self.max_jobs or self._closed:
            self._retire(handle)
        else:
            self._idle.put(handle)

    def _retire(self, handle: Launched) -> None:
        with self._lock:
            self.stats.retired += 1
        try:
            handle.kill()
        finally:
            if not self._closed:
                self._bg.submit(self._replace)

    def _replace(self) -> None:
        delay = 0.5
        while not self._closed:
            try:
                handle = self.factory()
            except SandboxError:
                log.exception("launching a sandbox failed; retrying in %.1fs", delay)
                with self._lock:
                    self.stats.launch_failures += 1
                time.sleep(delay)
                delay = min(delay * 2, 30.0)
                continue
            with self._lock:
                self.stats.launched += 1
            if self._closed:
                handle.kill()
            else:
                self._idle.put(handle)
            return
