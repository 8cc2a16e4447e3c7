"""One run: prepare a fresh directory, start the program (exec through the rlimit
launcher, or a fork of the zygote for Python), wait under the deadline and the output
cap, then kill everything it left, measure, read back requested files and wipe."""

import base64
import json
import os
import signal
import subprocess
import tempfile
import time

from . import capture, framing, limits, procs, rundir
from .state import remove_ipc as state_remove_ipc


class SandboxFailure(Exception):
    """The runtime itself failed (not the program): the host answers sandbox_error."""


def data_fd(data):
    """A readable fd holding `data` and no path a program could find or replace."""
    try:
        fd = os.memfd_create("rlef-data", 0)
    except OSError:  # no memfd: an unnamed temporary file
        fd = os.dup(tempfile.TemporaryFile(dir="/work").fileno())
    os.write(fd, data)
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


def prepare(req):
    """The run's working directory with its files, made after every earlier process died."""
    if req.get("dir") == "build":
        rundir.ensure_build()
        cwd = rundir.BUILD
    else:
        cwd = rundir.fresh()
    for path, content in (req.get("files") or {}).items():
        rundir.write(cwd, path, base64.b64decode(content))
    return cwd


def spawn_exec(sb, req, cwd, stdin, out_w, err_w):
    table = sb.table(req["limits"])
    if sb.launcher is not None:
        argv, preexec = sb.launcher_argv(table) + req["argv"], None
        fds: tuple[int, ...] = (sb.launcher,)
    else:
        argv, fds = req["argv"], ()
        def preexec():
            limits.apply(table)
    return subprocess.Popen(argv, cwd=cwd, env=req.get("env", {}), stdin=stdin,
                            stdout=out_w, stderr=err_w, pass_fds=fds,
                            start_new_session=True, preexec_fn=preexec)


def wait_exec(proc, cap, deadline):
    """(status, maxrss, timed_out, cpu) of a direct child, reaped here (and marked so,
    or Popen's finaliser would reap it under us)."""
    status, ru, timed_out = _wait_exec(proc.pid, cap, deadline)
    proc.returncode = status
    # exec records the spawning process's peak as the child's: a peak no higher than
    # ours is ours, not the program's (the memory cgroup, where there is one, decides)
    rss = ru.ru_maxrss if ru.ru_maxrss > procs.own_peak_kb() else 0
    return status, rss, timed_out, ru.ru_utime + ru.ru_stime


def _wait_exec(pid, cap, deadline):
    pidfd = procs.open_pidfd(pid)
    timed_out = False
    try:
        while True:
            got, status, ru = os.wait4(pid, os.WNOHANG)
            if got:
                return status, ru, timed_out
            now = time.monotonic()
            if cap.exceeded or now >= deadline:
                timed_out = not cap.exceeded
                kill_group(pid)
                _, status, ru = os.wait4(pid, 0)
                return status, ru, timed_out
            cap.pump(deadline - now if pidfd is not None else min(0.002, deadline - now),
                     pidfd)
    finally:
        if pidfd is not None:
            os.close(pidfd)


def kill_group(pid):
    for target in (-pid, pid):
        try:
            os.kill(target, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def fork_zygote(zygote, req, table, fds):
    msg = {"kind": req["kind"], "argv": req["argv"], "env": req.get("env", {}),
           "cwd": req["cwd"], "rlimits": table}
    try:
        framing.send(zygote.sock, msg, fds)
    except OSError as e:
        raise ZygoteDown(str(e)) from None
    try:
        reply = zygote.reader.recv(time.monotonic() + 5)
    except (OSError, EOFError, framing.FrameError):
        # it may have forked the run, which then killed it: the run is over, never rerun
        raise RunKilledZygote from None
    if not isinstance(reply.get("pid"), int):
        raise ZygoteDown("fork server refused the run")
    return reply["pid"]


class ZygoteDown(Exception):
    """The fork server was gone before it took the run: another way may run it."""


class RunKilledZygote(Exception):
    """The fork server died once it had the run: the run ends as killed."""


def wait_forked(sb, zygote, pid, cap, deadline):
    """(status, maxrss, timed_out, cpu) as the zygote reports its child."""
    timed_out, killed_at = False, None
    while True:
        if zygote.reader.complete():
            return finished(zygote, timed_out)
        now = time.monotonic()
        if (cap.exceeded or now >= deadline) and killed_at is None:
            timed_out, killed_at = not cap.exceeded, now
            kill_group(pid)
        if killed_at is not None and now > killed_at + 1.0:
            sb.stop_zygote()  # stopped or wedged by the program: not reusable
            return signal.SIGKILL, 0, timed_out, 0.0
        wait = 0.05 if killed_at else deadline - now
        if cap.pump(wait, zygote.sock.fileno()) and not zygote.fill():
            sb.stop_zygote()  # the program killed it: its own run ends here
            return signal.SIGKILL, 0, timed_out, 0.0


def finished(zygote, timed_out):
    done = framing.expect(zygote.reader.recv(time.monotonic() + 5), status=int, rusage=list)
    utime, stime, rss = done["rusage"]
    return done["status"], int(rss), timed_out, float(utime) + float(stime)


def start(sb, req, cwd, stdin, pipes):
    """Spawn the run: (the zygote's child pid, the zygote), or (the Popen, None)."""
    (out_r, out_w), (err_r, err_w), (chan_r, chan_w) = pipes
    kind = req.get("kind", "exec")
    table = sb.table(req["limits"])
    if kind != "exec":
        zygote = sb.ensure_zygote() if kind != "script" or sb.zygote_ok() else None
        if zygote is None and kind != "script":
            raise SandboxFailure("the Python fork server is not running")
        if zygote is not None:
            extra = [data_fd(json.dumps(req["spec"]).encode())] if kind != "script" else []
            fds = [stdin, out_w, err_w, chan_w, *extra]
            try:
                return fork_zygote(zygote, dict(req, cwd=cwd), table, fds), zygote
            except ZygoteDown:
                sb.stop_zygote()
                if kind != "script":
                    raise SandboxFailure("the Python fork server failed") from None
            finally:
                for fd in extra:
                    os.close(fd)
    return spawn_exec(sb, dict(req, argv=exec_argv(req)), cwd, stdin, out_w, err_w), None


def exec_argv(req):
    return req["argv"] if req.get("kind", "exec") == "exec" else ["python3", *req["argv"]]


def run(sb, req):
    lim = req["limits"]
    t0 = time.monotonic()
    sb.reaped_cpu, oom0 = 0.0, sb.oom_kills()
    try:
        cwd = prepare(req)
    except rundir.RunDirError as e:
        sb.settle()
        return failure(str(e))
    pipes = [os.pipe(), os.pipe(), os.pipe()]
    cap = capture.Capture(pipes[0][0], pipes[1][0], pipes[2][0], lim["output_kb"] * 1024)
    try:
        status, rss, timed_out, own_cpu = execute(sb, req, cwd, cap, pipes,
                                                  t0 + lim["wall_time_s"])
    except OSError as e:  # e.g. ENOENT for a missing interpreter: the program never ran
        cap.close()
        sb.settle()
        return failure(str(e))
    wall = time.monotonic() - t0
    state_remove_ipc()  # unmapped SysV segments: freed before anything else allocates
    sb.kill_rest()
    cap.drain(time.monotonic() + 1.0)
    files = fetch(cwd, req.get("fetch") or [], lim["output_kb"] * 1024)
    cap.close()
    sb.wipe()
    oom1 = sb.oom_kills()
    return {
        "exit_code": os.WEXITSTATUS(status) if os.WIFEXITED(status) else None,
        "signal": os.WTERMSIG(status) if os.WIFSIGNALED(status) else None,
        "wall_time_s": round(wall, 6),
        "cpu_time_s": round(own_cpu + sb.reaped_cpu, 6),
        "max_rss_kb": rss,
        "timed_out": timed_out,
        "output_exceeded": cap.exceeded,
        "oom_killed": oom_killed(sb, oom0, oom1),
        "stdout": b64(cap.stdout()), "stderr": b64(cap.stderr()),
        "channel": b64(cap.channel()), "files": files,
    }


def execute(sb, req, cwd, cap, pipes, deadline):
    """Start the run and wait for it: (status, maxrss, timed_out, cpu reported)."""
    stdin = data_fd(req.get("stdin", "").encode())
    try:
        try:
            proc, zygote = start(sb, req, cwd, stdin, pipes)
        finally:
            for fd in (stdin, pipes[0][1], pipes[1][1], pipes[2][1]):
                os.close(fd)
    except RunKilledZygote:
        sb.stop_zygote()
        return signal.SIGKILL, 0, False, 0.0
    if zygote is None:
        return wait_exec(proc, cap, deadline)
    return wait_forked(sb, zygote, proc, cap, deadline)


def oom_killed(sb, before, after):
    """True/False when the host bounds the sandbox's memory (False where its cgroup is
    not readable from inside, as under gVisor: an over-limit program takes the sandbox
    down and the host judges that); None when only rlimits bound it."""
    if before is not None and after is not None:
        return after > before
    return False if sb.memory_bound else None


def fetch(cwd, paths, cap):
    out = {}
    for path in paths[:100]:
        data = rundir.read(cwd, path, cap)
        if data is not None:
            out[path] = b64(data)
    return out


def failure(message):
    """A run that could not start because of what the program did to its sandbox."""
    return {"spawn_error": message, "exit_code": None, "signal": None, "wall_time_s": 0.0,
            "cpu_time_s": 0.0, "max_rss_kb": 0, "timed_out": False, "oom_killed": None,
            "output_exceeded": False, "stdout": "", "stderr": "", "channel": "", "files": {}}


def b64(data):
    return base64.b64encode(data).decode()
