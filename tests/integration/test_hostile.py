"""Hostile programs, each contained with the right verdict, the sandbox healthy after.

The pids, memory and time limits are proven first (fixture `limits_proven`): a fork or
memory bomb only ever runs inside a sandbox that has just shown it holds them.
"""

import hashlib
import os
import socket
import threading
import uuid

import pytest

from service.executor import execute
from service.schema import ExecuteRequest, Verdict
from tests.conftest import stdio

LIMITS = {"cpu_time_s": 2, "wall_time_s": 4, "memory_mb": 256, "output_kb": 256, "pids": 32}


@pytest.fixture
def run(hostile_run):
    """Local, Docker (runc) and Docker under gVisor (runsc)."""
    return hostile_run


def one(run, code, language="python", stdin="", expected="x", **limits):
    res = run(language, code, [stdio(stdin, expected)], limits={**LIMITS, **limits})
    return res.tests[0]


def is_gvisor(sandbox):
    return getattr(sandbox, "runtime", "") == "runsc"


def assert_healthy(run):
    res = run("python", "print(sum(range(10)))", [stdio("", "45")], limits=LIMITS)
    assert res.verdict == Verdict.accepted, res.feedback


@pytest.fixture
def limits_proven(run):
    spawn = ("import subprocess\nps = []\nfor i in range(100):\n"
             "    ps.append(subprocess.Popen(['sleep', '5']))\nprint(len(ps))")
    t = one(run, spawn, pids=16)
    assert t.verdict == Verdict.runtime_error and "Resource temporarily unavailable" in t.stderr
    assert one(run, "x = bytearray(1 << 30)").verdict == Verdict.memory_limit_exceeded
    assert one(run, "while True: pass", cpu_time_s=1).verdict == Verdict.time_limit_exceeded
    return run


def test_fork_bomb(limits_proven):
    run = limits_proven
    t = one(run, "import os\nwhile True:\n    try: os.fork()\n    except OSError: pass\n",
            wall_time_s=3)
    assert t.verdict in (Verdict.time_limit_exceeded, Verdict.runtime_error)
    t = one(run, ":(){ :|:& };:", language="bash", wall_time_s=3)
    assert t.verdict in (Verdict.time_limit_exceeded, Verdict.runtime_error, Verdict.wrong_answer)
    assert_healthy(run)


def test_memory_bomb_across_processes(limits_proven):
    code = ("import os\nfor _ in range(8):\n    if os.fork() == 0:\n"
            "        x = bytearray(200 << 20)\n        import time; time.sleep(10)\n"
            "os.wait()\n")
    t = one(limits_proven, code, wall_time_s=3)
    assert t.verdict in (Verdict.time_limit_exceeded, Verdict.memory_limit_exceeded,
                         Verdict.runtime_error)
    assert_healthy(limits_proven)


@pytest.fixture
def host_listener():
    """A TCP service on the host's loopback, as the API or Redis would be."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    hits = []

    def accept():
        try:
            while True:
                conn, _ = srv.accept()
                hits.append(conn)
        except OSError:
            return  # closed at teardown

    threading.Thread(target=accept, daemon=True).start()
    yield srv.getsockname()[1], hits
    srv.close()


def test_network_is_loopback_only(run, host_listener):
    port, hits = host_listener
    code = (
        "import socket, os\n"
        "print(sorted(os.listdir('/sys/class/net')) if os.path.exists('/sys/class/net') "
        "else 'nosys')\n"
        f"for host in ('127.0.0.1', '10.0.0.1', '172.17.0.1'):\n"
        "    s = socket.socket(); s.settimeout(1)\n"
        "    try:\n"
        f"        s.connect((host, {port})); print('CONNECTED', host)\n"
        "    except OSError as e: print('blocked', host, e.errno)\n"
        "srv = socket.socket(); srv.bind(('127.0.0.1', 0)); srv.listen(1)\n"
        "c = socket.create_connection(srv.getsockname()); print('own loopback ok')\n"
    )
    t = one(run, code, wall_time_s=6)
    assert "CONNECTED" not in t.stdout
    assert "own loopback ok" in t.stdout
    assert hits == []


def test_cannot_read_host_files_or_env(run, hostile_sandbox, tmp_path):
    # gVisor lets a process read a non-dumpable same-uid process's environ (not its memory:
    # ptrace is refused): there the runner's environment, which holds no secret, is only
    # checked for the markers below.
    proc1 = "" if is_gvisor(hostile_sandbox) else ", '/proc/1/environ'"
    secret = tmp_path / "secret.txt"
    secret.write_text("TOPSECRET")
    os.environ["RLEF_TEST_MARKER"] = "MARKER_" + uuid.uuid4().hex
    try:
        code = (
            "import os, glob\nfound = []\n"
            f"for p in [{str(secret)!r}, '/work/main', {os.getcwd()!r}, "
            "'/var/run/docker.sock', '/run/docker.sock', '/var/run/redis']:\n"
            "    found.append((p, os.path.exists(p)))\n"
            f"for p in ['/etc/shadow', '/root/.bash_history'{proc1}]:\n"
            "    try: open(p).read(); found.append((p, True))\n"
            "    except OSError: pass\n"
            "envs = ''\n"
            "for f in glob.glob('/proc/*/environ'):\n"
            "    try: envs += open(f, 'rb').read().decode('latin-1')\n"
            "    except OSError: pass\n"
            "print(found)\nprint(dict(os.environ))\nprint(envs)\n"
        )
        t = one(run, code)
        assert t.verdict == Verdict.wrong_answer
        assert "True" not in t.stdout.splitlines()[0], t.stdout
        assert "TOPSECRET" not in t.stdout
        assert os.environ["RLEF_TEST_MARKER"] not in t.stdout
    finally:
        del os.environ["RLEF_TEST_MARKER"]


def test_cannot_write_system_dirs(run):
    code = ("import os\nfor d in ['/usr/bin', '/etc', '/', '/usr/lib', '/bin']:\n"
            "    try:\n        open(os.path.join(d, 'pwned'), 'w').write('x'); print('WROTE', d)\n"
            "    except OSError as e:\n        print('denied', d)\n")
    t = one(run, code)
    assert "WROTE" not in t.stdout and t.stdout.count("denied") == 5


def test_nothing_left_for_the_next_job(run):
    tag = uuid.uuid4().hex
    plant = (f"import os, subprocess\n"
             f"for d in ['/work', '/work/run', '/work/build', '/tmp', '/dev/shm', "
             f"os.path.expanduser('~')]:\n"
             f"    try: open(os.path.join(d, '{tag}'), 'w').write('x')\n"
             f"    except OSError: pass\n"
             f"subprocess.Popen(['sleep', '1000'], start_new_session=True)\n")
    one(run, plant)
    look = (f"import os, subprocess\nhits = []\n"
            f"for root, dirs, files in os.walk('/'):\n"
            f"    if root.startswith(('/proc', '/sys', '/usr')): dirs[:] = []; continue\n"
            f"    hits += [root for f in files if f == '{tag}']\n"
            f"procs = [p for p in os.listdir('/proc') if p.isdigit() and int(p) not in "
            f"(1, os.getpid())]\n"
            f"cmds = [open(f'/proc/{{p}}/cmdline').read() for p in procs if "
            f"os.path.exists(f'/proc/{{p}}/cmdline')]\n"
            f"print(hits, [c for c in cmds if 'sleep' in c])\n")
    for _ in range(4):  # whichever warm sandbox the next jobs land in
        t = one(run, look, wall_time_s=8, cpu_time_s=4)
        assert t.stdout.strip() == "[] []", t.stdout + t.stderr


def test_killing_the_parent(run, hostile_sandbox, exec_config):
    for code in ("import os, signal\nos.kill(1, signal.SIGKILL)\nprint('x')",
                 "import os, signal\nos.kill(os.getppid(), signal.SIGKILL)\nprint('x')",
                 "import os, signal\nos.kill(-1, signal.SIGKILL)\nprint('x')",
                 "import os, signal\nfor s in (1, 2, 15, 19):\n"
                 "    try: os.kill(1, s)\n    except OSError: pass\nprint('x')"):
        if is_gvisor(hostile_sandbox):
            # gVisor delivers SIGKILL to the namespace's init: the sandbox dies, the job is
            # a sandbox_error (never a pass) and the pool replaces the sandbox.
            req = ExecuteRequest.model_validate(
                {"language": "python", "code": code, "tests": [stdio("", "x")], "limits": LIMITS})
            res = execute(req, hostile_sandbox, exec_config)
            assert res.status == "sandbox_error" or res.verdict in (Verdict.accepted,
                                                                     Verdict.runtime_error)
        else:
            t = one(run, code)
            assert t.verdict in (Verdict.accepted, Verdict.runtime_error)
        assert_healthy(run)


def test_double_forked_daemon_does_not_survive(run):
    code = ("import os, time\nif os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n"
            "        time.sleep(0.5)\n        open('/tmp/daemon-was-here', 'w').write('x')\n"
            "        time.sleep(100)\n    os._exit(0)\nprint('x')\n")
    assert one(run, code).verdict == Verdict.accepted
    look = ("import os, time\ntime.sleep(1)\n"
            "print(os.path.exists('/tmp/daemon-was-here'), "
            "[p for p in os.listdir('/proc') if p.isdigit()"
            " and int(p) not in (1, os.getpid(), os.getppid())])")  # the parent: runner or zygote
    for _ in range(2):
        assert one(run, look).stdout.strip() == "False []"


def test_symlinks_to_host_paths(run, tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("original")
    before = hashlib.sha256(victim.read_bytes()).hexdigest()
    code = ("import os\n"
            f"for i, target in enumerate(['/', '/etc/passwd', {str(victim)!r}, '/proc/1/root']):\n"
            "    for d in ('/work', '/work/run', '/work/build', '/tmp'):\n"
            "        try: os.symlink(target, f'{d}/link{i}')\n"
            "        except OSError: pass\n"
            f"try: open({str(victim)!r}, 'w').write('pwned')\nexcept OSError: pass\n"
            "print('x')\n")
    for _ in range(3):
        assert one(run, code).verdict == Verdict.accepted
    assert hashlib.sha256(victim.read_bytes()).hexdigest() == before
    assert_healthy(run)


def test_binary_output_is_valid_json(run):
    res = run("python", "import sys\nsys.stdout.buffer.write(bytes(range(256)) * 4)",
              [stdio("", "x")], limits=LIMITS)
    assert res.tests[0].verdict == Verdict.wrong_answer
    res.model_dump_json()


def test_large_stdin(run):
    data = ("7 " * 4_000_000) + "\n"
    res = run("python", "import sys\nprint(sum(map(int, sys.stdin.read().split())))",
              [stdio(data, str(7 * 4_000_000))], limits={**LIMITS, "wall_time_s": 20,
                                                         "cpu_time_s": 10})
    assert res.verdict == Verdict.accepted, res.feedback


def test_tampering_with_the_run_dir(run):
    """A test swaps its run dir for a symlink or locks it: the next test still runs clean."""
    for trick in ("shutil.rmtree(run); os.symlink('/tmp', run)",
                  "os.chmod(run, 0)",
                  "open(run + '/planted', 'w').write('x'); os.chmod(run, 0o555)"):
        code = (f"import os, shutil\nrun = os.getcwd()\nos.chdir('/work')\n{trick}\n"
                "print(sorted(os.listdir('/tmp')))")
        res = run("python", code, [stdio("", "[]"), stdio("", "[]")], limits=LIMITS)
        assert [t.verdict for t in res.tests] == [Verdict.accepted] * 2, res.feedback
    assert_healthy(run)
