"""Compiled programs by content, so that a fan-out of one request per test (as veRL sends
through /run_code) compiles once.

Keyed by (language, source hash, the request's files, the compile command): a hit puts the
artifacts back into a fresh build dir instead of compiling. A compile error is cached too.
Bounded in entries and bytes (least recently used out first); one per process. Concurrent
misses for one key wait for the first compile instead of each compiling.

Only what a sandbox compiled from exactly this key is ever served for it, so a submission
can at worst get back its own program.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from service.schema import CompileResult

# what a compile leaves in the build dir that a run needs (Java's class files are named by
# the program's classes: not cached)
ARTIFACTS: dict[str, tuple[str, ...]] = {"cpp": ("main",), "c": ("main",), "rust": ("main",),
                                         "go": ("main",)}
ARTIFACT_KB = 32 * 1024  # a fetched binary's cap (Go's and Rust's are MBs)


@dataclass(frozen=True)
class Entry:
    result: CompileResult
    artifacts: dict[str, bytes]

    @property
    def size(self) -> int:
        return sum(len(v) for v in self.artifacts.values()) + len(self.result.stderr) + 256


def cache_key(language: str, code: str, files: dict[str, bytes], argv: list[str]) -> str:
    h = hashlib.sha256()
    h.update(json.dumps([language, argv, sorted(files)]).encode())
    h.update(hashlib.sha256(code.encode()).digest())
    for name in sorted(files):
        h.update(hashlib.sha256(files[name]).digest())
    return h.hexdigest()


class CompileCache:
    def __init__(self, max_entries: int = 512, max_bytes: int = 256 << 20) -> None:
        self.max_entries, self.max_bytes = max_entries, max_bytes
        self._items: OrderedDict[str, Entry] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self._inflight: dict[str, threading.Lock] = {}
        self.hits = self.misses = 0

    def get(self, key: str) -> Entry | None:
        with self._lock:
            entry = self._items.get(key)
            if entry is not None:
                self._items.move_to_end(key)
                self.hits += 1
            return entry

    def put(self, key: str, entry: Entry) -> None:
        if entry.size > self.max_bytes:
            return
        with self._lock:
            old = self._items.pop(key, None)
            self._bytes -= old.size if old else 0
            self._items[key] = entry
            self._bytes += entry.size
            self.misses += 1
            while len(self._items) > self.max_entries or self._bytes > self.max_bytes:
                _, dropped = self._items.popitem(last=False)
                self._bytes -= dropped.size

    @contextmanager
    def claim(self, key: str) -> Iterator[Entry | None]:
        """The entry, or None with the key held until the caller has stored its compile."""
        with self._lock:
            gate = self._inflight.setdefault(key, threading.Lock())
        with gate:
            try:
                yield self.get(key)
            finally:
                with self._lock:
                    if self._inflight.get(key) is gate:
                        del self._inflight[key]


CACHE = CompileCache()
