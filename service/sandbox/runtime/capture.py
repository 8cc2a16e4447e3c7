"""Output capture: a run's stdout, stderr and result channel, under a cap and a deadline."""

import os
import select
import time

STDERR_KEEP = 64 * 1024
CHANNEL_KEEP = 8 << 20  # the host reads at most a few MB of a result (judge.py)


class Capture:
    """Drains pipes as they fill. stdout+stderr beyond `cap` marks the run over its output
    limit; only a bounded prefix of each stream is kept."""

    def __init__(self, out_fd, err_fd, chan_fd, cap):
        self.out_fd, self.err_fd, self.chan_fd = out_fd, err_fd, chan_fd
        self.bufs = {out_fd: bytearray(), err_fd: bytearray(), chan_fd: bytearray()}
        self.keep = {out_fd: cap, err_fd: min(cap, STDERR_KEEP), chan_fd: CHANNEL_KEEP}
        self.open = {out_fd, err_fd, chan_fd}
        self.cap = cap
        self.total = 0
        self.exceeded = False
        for fd in self.open:
            os.set_blocking(fd, False)

    def pump(self, timeout, wake_fd=None):
        """Read what is ready within `timeout`; True when wake_fd became readable."""
        watch = list(self.open) + ([wake_fd] if wake_fd is not None else [])
        if not watch:
            time.sleep(max(0.0, timeout))
            return False
        ready, _, _ = select.select(watch, [], [], max(0.0, timeout))
        for fd in ready:
            if fd != wake_fd:
                self._read(fd)
        return wake_fd is not None and wake_fd in ready

    def _read(self, fd):
        try:
            chunk = os.read(fd, 1 << 16)
        except BlockingIOError:
            return
        if not chunk:
            self.open.discard(fd)
            return
        if fd != self.chan_fd:
            self.total += len(chunk)
            self.exceeded = self.exceeded or self.total > self.cap
        room = self.keep[fd] - len(self.bufs[fd])
        if room > 0:
            self.bufs[fd] += chunk[:room]

    def drain(self, deadline):
        """Read until every writer is gone (they have been killed) or the deadline."""
        while self.open and time.monotonic() < deadline:
            self.pump(min(0.01, max(0.0, deadline - time.monotonic())))

    def close(self):
        for fd in (self.out_fd, self.err_fd, self.chan_fd):
            try:
                os.close(fd)
            except OSError:
                pass

    def stdout(self):
        return bytes(self.bufs[self.out_fd])

    def stderr(self):
        return bytes(self.bufs[self.err_fd])

    def channel(self):
        return bytes(self.bufs[self.chan_fd])
