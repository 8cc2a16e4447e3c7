"""In-sandbox runner: the PID 1 of every sandbox (a Docker container or a bwrap namespace).

Standard library only: it is sent over stdin to a bare `python3` inside the sandbox
(see protocol.BOOTSTRAP), so the image never has to be rebuilt when it changes.

It reads length-prefixed JSON frames on stdin and answers each on stdout:
  put   {files}                        write files into /work/build
  run   {argv, dir, files, stdin, env, limits, channel}  run one program, measure it
  runs  {runs: [run, ...]}               several runs in order, one answer
  reset {}                             kill every process, wipe writable dirs
Being PID 1 matters: the kernel ignores SIGKILL sent to a namespace's init from inside,
so a program cannot kill its runner, and kill(-1) reaches every process it left behind.
"""

import base64
import ctypes
import fcntl
import json
import math
import os
import resource
import select
import shutil
import signal
import socket
import stat
import struct
import subprocess
import time

WORK = "/work"
BUILD = WORK + "/build"
RUN = WORK + "/run"
SCRATCH_DIRS = (WORK, "/tmp", "/dev/shm")
STDERR_KEEP = 64 * 1024
MB = 1024 * 1024


def read_exact(n):
    buf = b""
    while len(buf) < n:
        chunk = os.read(0, n - len(buf))
        if not chunk:
            raise EOFError
        buf += chunk
    return buf


def read_frame():
    (size,) = struct.unpack(">I", read_exact(4))
    return json.loads(read_exact(size))


def write_frame(obj):
    data = json.dumps(obj).encode()
    data = struct.pack(">I", len(data)) + data
    while data:
        data = data[os.write(1, data):]


def safe_name(name):
    if not name or "/" in name or name in (".", "..") or "\0" in name:
        raise ValueError("bad file name: %r" % name)
    return name


def write_files(directory, files):
    for name, content in files.items():
        with open(os.path.join(directory, safe_name(name)), "w", encoding="utf-8") as f:
            f.write(content)


# A tiny exec wrapper that applies the rlimits: Popen can then vfork (about 0.4 ms)
# instead of fork + a Python preexec_fn in the child (about 2 ms per test). It is built
# once per sandbox, before any submitted code runs, into a sealed memfd: a program (same
# uid) can neither rewrite it nor find it on disk.
LAUNCHER = {"fd": None}


def build_launcher(source):
    """Compile launcher.c into a sealed memfd; None (preexec_fn fallback) without gcc."""
    src, exe = "/tmp/.rlef-exec.c", "/tmp/.rlef-exec"
    try:
        with open(src, "w") as f:
            f.write(source)
        for static in (["-static"], []):
            if subprocess.run(["gcc", "-O2", *static, "-o", exe, src],
                              capture_output=True, timeout=60).returncode == 0:
                break
        with open(exe, "rb") as f:
            elf = f.read()
        fd = os.memfd_create("rlef-exec", os.MFD_ALLOW_SEALING)
        os.write(fd, elf)
        fcntl.fcntl(fd, fcntl.F_ADD_SEALS, fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW
                    | fcntl.F_SEAL_WRITE | fcntl.F_SEAL_SEAL)
        probe = subprocess.run(launcher_argv(fd, {"cpu_time_s": 1, "memory_mb": 256,
                                                  "pids": 8, "output_kb": 64}, True)
                               + ["true"], pass_fds=(fd,), capture_output=True, timeout=10)
        if probe.returncode != 0:
            os.close(fd)
            return None
        return fd
    except (OSError, subprocess.SubprocessError):
        return None
    finally:
        for path in (src, exe):
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass


def launcher_argv(fd, limits, nproc):
    cpu = max(1, math.ceil(limits["cpu_time_s"]))
    mem = limits["memory_mb"] * MB if limits.get("address_space", True) else 0
    fsize = max(64 * MB, 2 * limits["output_kb"] * 1024)
    return ["/proc/self/fd/%d" % fd, str(fd), str(cpu), str(mem),
            str(limits["pids"] if nproc else 0), str(fsize), "256", "--"]


def rlimit_table(limits, nproc):
    """[(resource, soft, hard)] for a test: one definition for the launcher, the zygote
    (which receives it ready-made) and the preexec_fn fallback."""
    cpu = max(1, math.ceil(limits["cpu_time_s"]))
    fsize = max(64 * MB, 2 * limits["output_kb"] * 1024)
    table = [(resource.RLIMIT_CPU, cpu, cpu + 1), (resource.RLIMIT_CORE, 0, 0),
             (resource.RLIMIT_NOFILE, 256, 256), (resource.RLIMIT_FSIZE, fsize, fsize)]
    if limits.get("address_space", True):
        # Unlimited stack: the address-space limit bounds it, and glibc then gives
        # threads a small default stack instead of one the size of RLIMIT_STACK.
        mem = limits["memory_mb"] * MB
        table += [(resource.RLIMIT_STACK, resource.RLIM_INFINITY, resource.RLIM_INFINITY),
                  (resource.RLIMIT_AS, mem, mem)]
    else:
        table.append((resource.RLIMIT_STACK, 256 * MB, 256 * MB))
    if nproc:
        table.append((resource.RLIMIT_NPROC, limits["pids"], limits["pids"]))
    return table


def make_preexec(limits, nproc):
    table = rlimit_table(limits, nproc)

    def preexec():
        for res, soft, hard in table:
            resource.setrlimit(res, (soft, hard))
        for sig in (signal.SIGPIPE, signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_DFL)

    return preexec


def others(spare):
    """Live processes other than us and `spare` (zombies are not counted)."""
    found = []
    for name in os.listdir("/proc"):
        if name.isdigit() and int(name) not in spare:
            try:
                with open("/proc/%s/stat" % name, "rb") as f:
                    if f.read().rsplit(b")", 1)[1].split()[0] != b"Z":
                        found.append(int(name))
            except (OSError, IndexError):
                continue
    return found


def kill_all(deadline_s=2.0, spare=None):
    """Kill every process but ourselves (and `spare`, the zygote) and reap them.

    True when none is left."""
    if spare is not None:
        return kill_all_but(spare, deadline_s)
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        try:
            os.kill(-1, signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            while True:
                pid, _ = os.waitpid(-1, os.WNOHANG)
                if pid == 0:
                    break
        except ChildProcessError:
            return True
        time.sleep(0.001)
    return False


def kill_all_but(spare, deadline_s):
    end = time.monotonic() + deadline_s
    keep = {os.getpid(), spare}
    while time.monotonic() < end:
        left = others(keep)
        for pid in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            while os.waitpid(-1, os.WNOHANG)[0] > 0:
                pass
        except ChildProcessError:
            pass
        if not left:
            return True
        time.sleep(0.001)
    return False


def fresh_dir(path):
    try:
        st = os.lstat(path)
        # most programs write nothing: an empty dir as we made it is fresh already
        if stat.S_ISDIR(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o755 \
                and not os.listdir(path):
            return
    except FileNotFoundError:
        pass
    if os.path.islink(path):
        os.unlink(path)
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path, exist_ok=True)
    os.chmod(path, 0o755)


class Capture:
    """Drains a child's stdout, stderr and result channel under an output cap."""

    def __init__(self, fds, cap):
        self.bufs = {fd: bytearray() for fd in fds}
        self.open = set(fds)
        self.cap = cap
        self.total = 0
        self.exceeded = False

    def pump(self, timeout, out_fd, err_fd, wake_fd=None):
        """Read what is ready; True when wake_fd (the child's pidfd) fired."""
        watch = list(self.open) + ([wake_fd] if wake_fd is not None else [])
        if not watch:
            time.sleep(timeout)
            return False
        ready, _, _ = select.select(watch, [], [], timeout)
        for fd in ready:
            if fd == wake_fd:
                continue
            chunk = os.read(fd, 65536)
            if not chunk:
                self.open.discard(fd)
                continue
            if fd in (out_fd, err_fd):
                self.total += len(chunk)
                if self.total > self.cap:
                    self.exceeded = True
            keep = STDERR_KEEP if fd == err_fd else self.cap
            room = keep - len(self.bufs[fd])
            if room > 0:
                self.bufs[fd] += chunk[:room]
        return wake_fd in ready


def open_pidfd(pid):
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):  # gVisor and old kernels: fall back to polling
        return None


class ZygoteState:
    """The fork server's process, its control socket and unread bytes from it."""

    src: "str | None" = None
    sock: "socket.socket | None" = None
    proc: "subprocess.Popen[bytes] | None" = None
    buf = b""


ZYGOTE = ZygoteState()


def start_zygote():
    """The Python fork server (zygote.py); None when it cannot start (then: exec)."""
    if not ZYGOTE.src:
        return
    mine, theirs = socket.socketpair()
    try:
        ZYGOTE.proc = subprocess.Popen(
            ["python3", "-I", "-c", ZYGOTE.src, str(theirs.fileno())],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            pass_fds=(theirs.fileno(),), cwd="/", env={"PATH": os.environ.get("PATH", "")})
        ZYGOTE.sock, ZYGOTE.buf = mine, b""  # type: ignore[assignment]
    except OSError:
        mine.close()
    finally:
        theirs.close()


def stop_zygote():
    if ZYGOTE.sock is not None:
        ZYGOTE.sock.close()
        ZYGOTE.sock = None
    if ZYGOTE.proc is not None:
        try:
            ZYGOTE.proc.kill()
        except OSError:
            pass
        ZYGOTE.proc = None


def zygote_pid():
    proc = ZYGOTE.proc
    return proc.pid if ZYGOTE.sock is not None and proc is not None else None


def forkable(req):
    """`python3 SCRIPT args`: a plain script run the zygote can do."""
    argv = req["argv"]
    return (ZYGOTE.sock is not None and len(argv) >= 2 and argv[0] == "python3"
            and not argv[1].startswith("-"))


def complete(buf):
    return len(buf) >= 4 and len(buf) >= 4 + struct.unpack(">I", buf[:4])[0]


def recv_msg(sock, deadline):
    """One message from the zygote (two may arrive in one read: the rest is kept)."""
    buf = ZYGOTE.buf
    while not complete(buf):
        sock.settimeout(max(0.001, deadline - time.monotonic()))
        chunk = sock.recv(65536)
        if not chunk:
            raise OSError("zygote gone")
        buf += chunk
    size = 4 + struct.unpack(">I", buf[:4])[0]
    ZYGOTE.buf = buf[size:]
    return json.loads(buf[4:size])


def prepare(req):
    cwd = BUILD if req.get("dir") == "build" else RUN
    if cwd == RUN:
        fresh_dir(RUN)
    write_files(cwd, req.get("files", {}))
    stdin_path = WORK + "/.stdin"
    with open(stdin_path, "wb") as f:
        f.write(req.get("stdin", "").encode())
    stdin = open(stdin_path, "rb")
    os.unlink(stdin_path)  # the program gets the data, never a path to find it by
    return cwd, stdin


def spawn(req, nproc):
    limits = req["limits"]
    cwd, stdin = prepare(req)
    chan_r, chan_w = os.pipe()
    env = dict(req.get("env", {}))
    env["RLEF_CHANNEL_FD"] = str(chan_w)
    fd = LAUNCHER["fd"]
    if fd is not None:
        proc = subprocess.Popen(
            launcher_argv(fd, limits, nproc) + req["argv"], cwd=cwd, env=env, stdin=stdin,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, pass_fds=(chan_w, fd),
            start_new_session=True)
    else:
        proc = subprocess.Popen(
            req["argv"], cwd=cwd, env=env, stdin=stdin, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, pass_fds=(chan_w,), start_new_session=True,
            preexec_fn=make_preexec(limits, nproc),
        )
    stdin.close()
    os.close(chan_w)
    return proc, chan_r


def drain(cap, out_fd, err_fd):
    """Whatever the program left running would hold the pipes open: kill it, then read
    what is left."""
    kill_all(spare=zygote_pid())
    while cap.open:
        cap.pump(0.01, out_fd, err_fd)


def run(req, nproc):
    limits = req["limits"]
    start = time.monotonic()
    try:
        proc, chan_r = spawn(req, nproc)
    except OSError as e:  # e.g. ENOENT for a missing interpreter: the program never ran
        return {"spawn_error": str(e), "exit_code": None, "signal": None, "wall_time_s": 0.0,
                "cpu_time_s": 0.0, "max_rss_kb": 0, "timed_out": False,
                "output_exceeded": False, "stdout": "", "stderr": "", "channel": ""}
    out_fd, err_fd = proc.stdout.fileno(), proc.stderr.fileno()
    cap = Capture([out_fd, err_fd, chan_r], limits["output_kb"] * 1024)
    deadline = start + limits["wall_time_s"]
    pidfd = open_pidfd(proc.pid)
    timed_out = False
    while True:
        pid, status, rusage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        now = time.monotonic()
        if cap.exceeded or now >= deadline:
            timed_out = not cap.exceeded
            os.killpg(proc.pid, signal.SIGKILL)
            _, status, rusage = os.wait4(proc.pid, 0)
            break
        poll = deadline - now if pidfd is not None else min(0.002, deadline - now)
        cap.pump(poll, out_fd, err_fd, pidfd)
    proc.returncode = status  # reaped by us; keeps Popen from waiting again
    if pidfd is not None:
        os.close(pidfd)
    wall = time.monotonic() - start
    drain(cap, out_fd, err_fd)
    for f in (proc.stdout, proc.stderr):
        f.close()
    os.close(chan_r)
    return outcome(status, wall, rusage.ru_utime + rusage.ru_stime, rusage.ru_maxrss,
                   timed_out, cap, out_fd, err_fd, chan_r)


def run_any(req, nproc):
    if forkable(req):
        try:
            return run_forked(req, nproc)
        except ZygoteDown:
            stop_zygote()  # e.g. killed by the previous test: exec this one
    return run(req, nproc)


class ZygoteDown(Exception):
    pass


def fork_child(req, nproc, cwd, stdin, fds):
    """Hand the test to the zygote; returns the child's pid."""
    msg = json.dumps({"argv": req["argv"][1:], "env": req.get("env", {}), "cwd": cwd,
                      "rlimits": rlimit_table(req["limits"], nproc)}).encode()
    sock = ZYGOTE.sock
    try:
        if sock is None:
            raise OSError("no zygote")
        socket.send_fds(sock, [struct.pack(">I", len(msg)) + msg], [stdin.fileno(), *fds])
        return recv_msg(sock, time.monotonic() + 5)["pid"]
    except OSError as e:
        raise ZygoteDown(str(e)) from e
    finally:
        stdin.close()
        for fd in fds:
            os.close(fd)


def run_forked(req, nproc):
    limits = req["limits"]
    start = time.monotonic()
    cwd, stdin = prepare(req)
    (out_r, out_w), (err_r, err_w), (chan_r, chan_w) = os.pipe(), os.pipe(), os.pipe()
    try:
        pid = fork_child(req, nproc, cwd, stdin, [out_w, err_w, chan_w])
    except ZygoteDown:
        for fd in (out_r, err_r, chan_r):
            os.close(fd)
        raise
    sock = ZYGOTE.sock
    assert sock is not None  # fork_child raised otherwise
    cap = Capture([out_r, err_r, chan_r], limits["output_kb"] * 1024)
    deadline = start + limits["wall_time_s"]
    timed_out, killed_at, done = False, None, None
    while done is None:
        if complete(ZYGOTE.buf):  # the exit came with the pid
            done = recv_msg(sock, time.monotonic() + 5)
            break
        now = time.monotonic()
        if (cap.exceeded or now >= deadline) and killed_at is None:
            timed_out, killed_at = not cap.exceeded, now
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if killed_at is not None and now > killed_at + 1.0:
            stop_zygote()  # stopped (SIGSTOP) or wedged by the program: not reusable
            done = {"status": signal.SIGKILL, "rusage": [0.0, 0.0, 0]}
            break
        if cap.pump(0.05 if killed_at else deadline - now, out_r, err_r, sock.fileno()):
            try:
                done = recv_msg(sock, time.monotonic() + 5)
            except OSError:  # the program killed the zygote: its own run ends here
                stop_zygote()
                done = {"status": signal.SIGKILL, "rusage": [0.0, 0.0, 0]}
    wall = time.monotonic() - start
    drain(cap, out_r, err_r)
    for fd in (out_r, err_r, chan_r):
        os.close(fd)
    status, (utime, stime, rss) = done["status"], done["rusage"]
    return outcome(status, wall, utime + stime, rss, timed_out, cap, out_r, err_r, chan_r)


def outcome(status, wall, cpu, rss, timed_out, cap, out_fd, err_fd, chan_fd):
    return {
        "exit_code": os.WEXITSTATUS(status) if os.WIFEXITED(status) else None,
        "signal": os.WTERMSIG(status) if os.WIFSIGNALED(status) else None,
        "wall_time_s": round(wall, 6),
        "cpu_time_s": round(cpu, 6),
        "max_rss_kb": rss,
        "timed_out": timed_out,
        "output_exceeded": cap.exceeded,
        "stdout": base64.b64encode(bytes(cap.bufs[out_fd])).decode(),
        "stderr": base64.b64encode(bytes(cap.bufs[err_fd])).decode(),
        "channel": base64.b64encode(bytes(cap.bufs[chan_fd])).decode(),
    }


def leftovers():
    found = []
    for d in SCRATCH_DIRS:
        try:
            found += [os.path.join(d, n) for n in os.listdir(d)]
        except OSError:
            continue
    return found


def zygote_healthy():
    """Alive, and not stopped by a program's SIGSTOP (it holds no job data: it is kept)."""
    pid = zygote_pid()
    if pid is None or ZYGOTE.proc is None or ZYGOTE.proc.poll() is not None:
        return False
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] in (b"S", b"R")
    except (OSError, IndexError):
        return False


def reset():
    if not zygote_healthy():
        stop_zygote()
    procs_gone = kill_all(spare=zygote_pid())
    for d in SCRATCH_DIRS:
        try:
            names = os.listdir(d)
        except OSError:
            continue
        for name in names:
            path = os.path.join(d, name)
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path, ignore_errors=True)
            else:
                try:
                    os.unlink(path)
                except OSError:
                    pass  # reported below as a leftover, which retires the sandbox
    left = leftovers()
    os.makedirs(BUILD, exist_ok=True)
    if ZYGOTE.sock is None:
        start_zygote()
    return {"clean": procs_gone and not left, "leftovers": left[:20]}


def main():
    # Non-dumpable: a same-uid program cannot ptrace us or open /proc/1/fd.
    ctypes.CDLL(None).prctl(4, 0, 0, 0, 0)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    config = read_frame()
    nproc = bool(config.get("nproc_rlimit"))
    os.makedirs(BUILD, exist_ok=True)
    if config.get("launcher_c"):
        LAUNCHER["fd"] = build_launcher(config["launcher_c"])
    ZYGOTE.src = config.get("zygote_src")
    start_zygote()
    write_frame({"ready": True, "pid": os.getpid(), "uid": os.getuid(),
                 "launcher": LAUNCHER["fd"] is not None, "zygote": ZYGOTE.sock is not None})
    while True:
        try:
            req = read_frame()
        except EOFError:
            return
        op = req.get("op")
        try:
            if op == "run":
                resp = run_any(req, nproc)
            elif op == "runs":  # a job's tests in one round trip
                resp = {"results": [run_any(r, nproc) for r in req["runs"]]}
            elif op == "put":
                write_files(BUILD, req["files"])
                resp = {"ok": True}
            elif op == "reset":
                resp = reset()
            else:
                resp = {"error": "unknown op %r" % op}
        except Exception as e:  # answer, then let the host decide to retire us
            resp = {"error": "%s: %s" % (type(e).__name__, e)}
        write_frame(resp)


if __name__ == "__main__":
    main()
