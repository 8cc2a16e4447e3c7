"""What the runner keeps between runs: the rlimit launcher, the fork server, and what
made the sandbox dirty; and what it does after every run (kill, verify, wipe)."""

import ctypes
import fcntl
import os
import signal
import socket
import subprocess

from . import framing, limits, memcg, procs, rundir

# What the fork server loads: a smaller interpreter forks faster (much faster under gVisor)
ZYGOTE_MODULES = ("framing", "limits", "values", "program", "trusted", "zygote")


class Sandbox:
    """What the runner keeps between requests: the launcher, the fork server, dirtiness."""

    def __init__(self, config, modules):
        self.nproc = bool(config.get("nproc_rlimit"))
        self.memory_bound = bool(config.get("memory_bound"))
        self.modules = modules
        self.loader = config["loader"]
        self.launcher = build_launcher(config.get("launcher_c"))
        self.events = memcg.events_file(config.get("memcg"))
        self.zygote = None
        self.dirty = []
        self.reaped_cpu = 0.0
        self.old_zygotes = set()
        self.print = procs.fingerprint(os.getpid())

    # --- the fork server ---------------------------------------------------------------
    def start_zygote(self):
        mine, theirs = socket.socketpair()
        try:
            src = self.loader + "\n_load(%d)\nimport rlefrt.zygote as _z\n_z.main(%d)\n" % (
                theirs.fileno(), theirs.fileno())
            proc = subprocess.Popen(
                ["python3", "-I", "-c", src], stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                pass_fds=(theirs.fileno(),), cwd="/", env={"PATH": os.environ["PATH"]})
            mine.sendall(framing.encode({"modules": [
                m for m in self.modules if m[0] in ZYGOTE_MODULES]}))
            self.zygote = Zygote(proc, mine)
        except OSError:
            mine.close()
        finally:
            theirs.close()

    def stop_zygote(self):
        if self.zygote is not None:
            self.zygote.stop()
            if not self.zygote.reaped:
                self.old_zygotes.add(self.zygote.pid)
            self.zygote = None

    def zygote_ok(self):
        """Alive, ours (not a reused pid), and neither stopped nor traced."""
        z = self.zygote
        return z is not None and z.alive() and procs.state(z.pid) in ("S", "R")

    def tampered(self):
        """Whether a program changed the runner's or the fork server's limits or
        scheduling (same uid: prlimit, setpriority, sched_setaffinity reach them)."""
        if self.zygote is not None and procs.fingerprint(self.zygote.pid) != self.zygote.print:
            self.stop_zygote()  # restarted on demand, from the runner's own settings
        return procs.fingerprint(os.getpid()) != self.print

    def keep(self):
        return {self.zygote.pid} if self.zygote is not None and self.zygote.alive() else set()

    def on_reaped(self, pid, status, cpu):
        if self.zygote is not None and pid == self.zygote.pid:
            self.zygote.reaped = True  # its pid may be reused now: never spare it again
        elif pid in self.old_zygotes:
            self.old_zygotes.discard(pid)  # holds every earlier run's CPU: not this run's
        else:
            self.reaped_cpu += cpu  # an orphan of the run: its CPU is the run's

    def ensure_zygote(self):
        if not self.zygote_ok():
            self.stop_zygote()
            self.start_zygote()
        return self.zygote

    # --- after every run -----------------------------------------------------------------
    def kill_rest(self):
        """Every process but us and a healthy fork server: killed, reaped, verified."""
        if self.zygote is not None and not self.zygote_ok():
            self.stop_zygote()
        if procs.kill_all(self.keep(), deadline_s=0.5, on_reaped=self.on_reaped):
            if self.zygote is not None and not self.zygote.alive():
                self.stop_zygote()  # died (or its pid was reused) while we killed
            return
        # a zombie only the fork server can reap (a program's clone(CLONE_PARENT) child):
        # the fork server goes too, so that its children come to us
        self.stop_zygote()
        if not procs.kill_all(set(), on_reaped=self.on_reaped):
            raise RuntimeError("processes survived SIGKILL")

    def wipe(self):
        """Scratch space after a run (its SysV objects went first: runs.run, reset)."""
        left = rundir.wipe_scratch()
        if left:
            self.dirty.append("cannot wipe %s" % ", ".join(left[:5]))

    def settle(self):
        self.kill_rest()
        self.wipe()

    def table(self, lim):
        """The run's rlimits; the host's cgroup replaces the address-space limit."""
        if self.memory_bound:
            lim = dict(lim, address_space=False)
        return limits.table(lim, self.nproc)

    def launcher_argv(self, table):
        return launcher_argv(self.launcher, table)

    def oom_kills(self):
        return memcg.oom_kills(self.events)


class Zygote:
    def __init__(self, proc, sock):
        self.proc, self.sock, self.pid = proc, sock, proc.pid
        self.start = procs.starttime(proc.pid)
        self.print = procs.fingerprint(proc.pid)
        self.reader = framing.SocketReader(sock)
        self.reaped = False

    def fill(self):
        """Read what the fork server sent; False when it closed its end (it died)."""
        try:
            chunk = self.sock.recv(1 << 16, socket.MSG_DONTWAIT)
        except BlockingIOError:
            return True
        except OSError:
            return False
        self.reader.buf += chunk
        return bool(chunk)

    def alive(self):
        return not self.reaped and self.proc.poll() is None and \
            procs.starttime(self.pid) == self.start

    def stop(self):
        self.sock.close()
        if self.alive():
            try:
                os.kill(self.pid, signal.SIGKILL)
            except OSError:
                pass


def build_launcher(source):
    """Compile launcher.c into a sealed memfd; None (preexec fallback) without gcc."""
    if not source:
        return None
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
        probe = limits.table({"cpu_time_s": 1, "memory_mb": 256, "pids": 8, "output_kb": 64},
                             True)
        ok = subprocess.run(launcher_argv(fd, probe) + ["true"], pass_fds=(fd,),
                            capture_output=True, timeout=10).returncode == 0
        if not ok:
            os.close(fd)
        return fd if ok else None
    except (OSError, subprocess.SubprocessError):
        return None
    finally:
        for path in (src, exe):
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass


def launcher_argv(fd, table):
    return ["/proc/self/fd/%d" % fd, str(fd), *limits.as_argv(table), "--"]


def remove_ipc():
    """SysV shared memory, queues and semaphores die with the run, not with the sandbox."""
    libc = ctypes.CDLL(None, use_errno=True)
    for name, rm in (("shm", libc.shmctl), ("msg", libc.msgctl), ("sem", libc.semctl)):
        try:
            with open("/proc/sysvipc/" + name) as f:
                rows = f.read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            if len(fields) > 1 and fields[1].isdigit():
                ident = int(fields[1])
                if name == "sem":
                    rm(ident, 0, 0, 0)  # IPC_RMID
                else:
                    rm(ident, 0, None)
