"""Length-prefixed JSON frames: the one wire format of the runtime.

Used on the runner's stdin/stdout (to the host), on the fork server's socket and on the
channel between the trusted test process and the program. Readers bound the frame size
and check each message's fields: a frame that does not fit its schema is an error, not
something to guess around.
"""

import json
import os
import socket
import struct
import time

HEADER = struct.Struct(">I")
MAX_FRAME = 512 << 20


class FrameError(Exception):
    """A malformed, oversized or missing frame."""


def encode(obj):
    data = json.dumps(obj, separators=(",", ":")).encode()
    return HEADER.pack(len(data)) + data


def decode(body):
    try:
        msg = json.loads(body)
    except (ValueError, RecursionError) as e:
        raise FrameError("undecodable frame: %s" % type(e).__name__) from None
    if not isinstance(msg, dict):
        raise FrameError("a frame must be a JSON object")
    return msg


def read_exact(fd, n):
    buf = bytearray()
    while len(buf) < n:
        chunk = os.read(fd, n - len(buf))
        if not chunk:
            raise EOFError
        buf += chunk
    return bytes(buf)


def read_frame(fd):
    (size,) = HEADER.unpack(read_exact(fd, HEADER.size))
    if size > MAX_FRAME:
        raise FrameError("frame of %d bytes" % size)
    return decode(read_exact(fd, size))


def write_frame(fd, obj):
    view = memoryview(encode(obj))
    while view:
        view = view[os.write(fd, view):]


def send(sock, obj, fds=()):
    data = encode(obj)
    if fds:
        socket.send_fds(sock, [data], list(fds))
    else:
        sock.sendall(data)


class SocketReader:
    """Messages from a stream socket; two may arrive in one read, the rest is kept."""

    def __init__(self, sock, max_frame=MAX_FRAME):
        self.sock = sock
        self.buf = b""
        self.max_frame = max_frame

    def complete(self):
        if len(self.buf) < HEADER.size:
            return False
        return len(self.buf) >= HEADER.size + HEADER.unpack(self.buf[:HEADER.size])[0]

    def recv(self, deadline=None):
        """The next message; EOFError when the peer closed, TimeoutError past deadline."""
        while not self.complete():
            if len(self.buf) >= HEADER.size and \
                    HEADER.unpack(self.buf[:HEADER.size])[0] > self.max_frame:
                raise FrameError("oversized message")
            if deadline is not None:
                self.sock.settimeout(max(0.001, deadline - time.monotonic()))
            chunk = self.sock.recv(1 << 16)  # a larger buffer costs an mmap per call
            if not chunk:
                raise EOFError
            self.buf += chunk
        size = HEADER.size + HEADER.unpack(self.buf[:HEADER.size])[0]
        body, self.buf = self.buf[HEADER.size:size], self.buf[size:]
        return decode(body)


def expect(msg, **fields):
    """`msg` with each named field of the given type(s); FrameError otherwise."""
    for name, types in fields.items():
        if not isinstance(msg.get(name), types) or \
                (types is int and isinstance(msg.get(name), bool)):
            raise FrameError("message field %r: expected %s" % (name, types))
    return msg
