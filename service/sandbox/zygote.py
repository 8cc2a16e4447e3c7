"""Python fork server, started by the runner inside the sandbox (standard library only).

A warm interpreter that forks one child per Python test: the child applies the test's
limits, takes the test's stdin/stdout/stderr/channel fds and runs the script in-process,
without paying interpreter start-up (~10 ms). The zygote holds no job data: it was
started before any request arrived and only ever receives argv, env, cwd, limits and
fds, so a child (a copy of it) finds nothing of another test in its memory. It is
non-dumpable: a same-uid program can neither ptrace it nor read its fds.

Protocol on fd 3 (a socketpair with the runner), one exchange per test:
  runner -> {argv, env, cwd, rlimits} + fds [stdin, stdout, stderr, channel]
  zygote -> {"pid": child}   then   {"status": wait status, "rusage": [utime, stime, rss]}
"""

import builtins
import ctypes
import gc
import json
import os
import resource
import signal
import socket
import struct
import sys
import traceback
import types

CHANNEL_FD = 3


def send(sock, obj):
    data = json.dumps(obj).encode()
    sock.sendall(struct.pack(">I", len(data)) + data)


def run_script(path):
    """What `python3 path` does with the file, without runpy's importer probing (~2 ms)."""
    with open(path, "rb") as f:
        code = compile(f.read(), path, "exec")
    main = types.ModuleType("__main__")
    main.__file__ = path
    main.__dict__["__builtins__"] = builtins
    sys.modules["__main__"] = main
    exec(code, main.__dict__)


def child(sock, req, fds):
    """Never returns: becomes the test's program."""
    code, script = 1, ""
    try:
        sock.close()
        for target, fd in enumerate(fds[:3]):
            os.dup2(fd, target)
        os.dup2(fds[3], CHANNEL_FD)
        for fd in [int(n) for n in os.listdir("/proc/self/fd")]:
            if fd > CHANNEL_FD:  # closerange over the whole table costs ~10 ms
                try:
                    os.close(fd)
                except OSError:
                    pass
        os.setsid()
        for sig in (signal.SIGPIPE, signal.SIGINT, signal.SIGTERM, signal.SIGCHLD):
            signal.signal(sig, signal.SIG_DFL)
        for res, soft, hard in req["rlimits"]:  # computed by the runner (rlimit_table)
            resource.setrlimit(res, (soft, hard))
        os.chdir(req["cwd"])
        os.environ.clear()
        os.environ.update(req["env"], RLEF_CHANNEL_FD=str(CHANNEL_FD))
        script = os.path.abspath(req["argv"][0])  # as python3 sets __file__ since 3.9
        sys.argv = list(req["argv"])
        sys.path[0] = os.path.dirname(script)
        gc.enable()  # the zygote's objects stay frozen: no GC pass copies their pages
        run_script(script)
        code = 0
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        if not isinstance(e.code, int) and e.code is not None:
            print(e.code, file=sys.stderr)
    except BaseException:  # the program's own error, printed as python3 would
        exc_type, exc, tb = sys.exc_info()
        while tb is not None and tb.tb_frame.f_code.co_filename != script:
            tb = tb.tb_next  # drop the zygote's own frames
        traceback.print_exception(exc_type, exc, tb)
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        os._exit(code & 0xFF)


def serve(sock):
    while True:
        # the fds ride on the message's first bytes: read header and body together
        data, fds, _, _ = socket.recv_fds(sock, 1 << 20, 4)
        if len(data) < 4:
            return
        (size,) = struct.unpack(">I", data[:4])
        while len(data) < 4 + size:
            more = sock.recv(4 + size - len(data))
            if not more:
                return
            data += more
        req = json.loads(data[4:])
        pid = os.fork()
        if pid == 0:
            child(sock, req, fds)
        for fd in fds:
            os.close(fd)
        send(sock, {"pid": pid})
        _, status, ru = os.wait4(pid, 0)
        send(sock, {"status": status, "rusage": [ru.ru_utime, ru.ru_stime, ru.ru_maxrss]})


def main():
    ctypes.CDLL(None).prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE 0
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    sock = socket.socket(fileno=int(sys.argv[1]))  # python3 -c SRC FD
    gc.collect()
    gc.freeze()  # children then share these pages instead of copying them on first GC
    gc.disable()
    serve(sock)


main()
