"""The Python fork server: a warm interpreter that forks one child per Python run.

Started by the runner before any request arrives, it holds no job data: it only ever
receives a run's kind, argv, env, cwd, rlimits and file descriptors, so a child (a copy
of it) finds nothing of another run in its memory. It is non-dumpable: a program of the
same uid can neither ptrace it nor read its fds; its children inherit that.

Protocol on its socket, one exchange per run:
  runner -> {kind, argv, env, cwd, rlimits} + fds    (kinds below)
  zygote -> {"pid": child}   then   {"status": wait status, "rusage": [utime, stime, rss]}

Kinds and their fds: script [stdin, stdout, stderr, channel]; call, sql [.., channel,
spec]; assert [stdin, stdout, stderr, result, test] (the child forks the program and
becomes the trusted test process, see trusted.py).
"""

import ctypes
import gc
import os
import signal
import socket
import sys
import traceback

from . import framing, limits, program, trusted

FDS = {"script": 4, "call": 5, "sql": 5, "assert": 5}


def install_fds(fds):
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
    limits.close_fds_above(len(fds) - 1)


def enter(req):
    os.setsid()
    limits.apply(req["rlimits"])
    os.environ.clear()
    os.environ.update(req["env"])


def assert_child(req):
    """Fork the program (before anything of the test is read), become the trusted side."""
    mine, theirs = socket.socketpair()
    pid = os.fork()
    if pid == 0:
        mine.close()
        for fd in (3, 4):  # the result and the test: never the program's
            os.close(fd)
        os.chdir(req["cwd"])
        program.serve(theirs, os.path.abspath(req["argv"][0]))
        return 0
    theirs.close()
    os.chdir("/")
    os.environ.clear()  # no HOME: nothing on this side reads a file the program wrote
    os.environ["PATH"] = "/usr/bin:/bin"
    return trusted.main(mine, 4, 3, pid)


def run_child(req):
    kind, argv = req["kind"], req["argv"]
    if kind == "assert":
        return assert_child(req)
    os.chdir(req["cwd"])
    path = os.path.abspath(argv[0])
    if kind == "script":
        program.run_script(path, argv)
    else:
        spec = program.read_spec(4)
        (program.run_call if kind == "call" else program.run_sql)(path, spec)
    return 0


def child(sock, req, fds):
    """Never returns: becomes the run's process."""
    code, name = 1, os.path.abspath(req["argv"][0]) if req.get("argv") else ""
    try:
        sock.close()
        install_fds(fds)
        enter(req)
        gc.enable()  # the zygote's objects stay frozen: no GC pass copies their pages
        code = run_child(req)
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        if not isinstance(e.code, int) and e.code is not None:
            print(e.code, file=sys.stderr)
    except BaseException:  # the program's own error, printed as python3 would
        exc_type, exc, tb = sys.exc_info()
        while tb is not None and tb.tb_frame.f_code.co_filename != name:
            tb = tb.tb_next  # drop our own frames
        traceback.print_exception(exc_type, exc, tb)
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        os._exit(code & 0xFF)


def serve(sock):
    while True:
        # the fds ride on the message's first bytes: read header and body together
        data, fds, _, _ = socket.recv_fds(sock, 1 << 20, 8)
        if len(data) < framing.HEADER.size:
            return
        (size,) = framing.HEADER.unpack(data[:framing.HEADER.size])
        while len(data) < framing.HEADER.size + size:
            more = sock.recv(framing.HEADER.size + size - len(data))
            if not more:
                return
            data += more
        req = framing.decode(data[framing.HEADER.size:])
        if len(fds) != FDS.get(req.get("kind"), -1):
            for fd in fds:
                os.close(fd)
            framing.send(sock, {"error": "bad request"})
            continue
        pid = os.fork()
        if pid == 0:
            child(sock, req, fds)
        for fd in fds:
            os.close(fd)
        framing.send(sock, {"pid": pid})
        _, status, ru = os.wait4(pid, 0)
        framing.send(sock, {"status": status, "rusage": [ru.ru_utime, ru.ru_stime,
                                                          ru.ru_maxrss]})


def main(fd):
    ctypes.CDLL(None).prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE 0
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    sock = socket.socket(fileno=fd)
    gc.collect()
    gc.freeze()  # children then share these pages instead of copying them on first GC
    gc.disable()
    serve(sock)
