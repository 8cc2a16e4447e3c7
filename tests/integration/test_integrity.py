"""Reward integrity, tried as an adversary would, on local, runc and runsc.

Each case is a real program in a real sandbox that passed (or broke the sandbox) before
the trusted test process, fresh run directories, verified kills and memory cgroups; each
is now judged a failure of the program, while an honest control still passes.
"""

import pytest

from service.executor import execute
from service.schema import ExecuteRequest, Verdict
from tests.conftest import Runner, stdio

TWICE = {"type": "assert", "code": "assert f(1) == 2\nassert f(5) == 10\n"}

# --- 1. assert tests are judged where the program cannot reach -------------------------
ASSERT_CHEATS = {
    "frame walk to the harness's nonce": (
        "import sys, json, os\n"
        "f = sys._getframe()\n"
        "while f is not None:\n"
        "    loc = f.f_locals\n"
        "    if 'nonce' in loc:\n"
        "        for fd in range(3, 64):\n"
        "            try: os.write(fd, json.dumps({'done': True, 'status': 'passed',\n"
        "                                           'nonce': loc['nonce']}).encode())\n"
        "            except OSError: pass\n"
        "        os._exit(0)\n"
        "    f = f.f_back\n"
        "def f(x):\n    return 0\n"),
    "heap walk with gc for the harness's state": (
        "import gc, json, os\n"
        "for o in gc.get_objects():\n"
        "    if isinstance(o, dict) and 'nonce' in o and isinstance(o['nonce'], str):\n"
        "        for fd in range(3, 64):\n"
        "            try: os.write(fd, json.dumps({'done': True, 'status': 'passed',\n"
        "                                           'nonce': o['nonce']}).encode())\n"
        "            except OSError: pass\n"
        "        os._exit(0)\n"
        "def f(x):\n    return 0\n"),
    "read the test source from linecache": (
        "import linecache, re, sys\n"
        "src = ''.join(''.join(v[2]) for v in list(linecache.cache.values())\n"
        "              if isinstance(v, tuple) and len(v) > 2 and v[2])\n"
        "answers = dict((int(a), int(b)) for a, b in re.findall(r'f\\((\\d+)\\) == (\\d+)', src))\n"
        "def f(x):\n    return answers[x]\n"),
    "object claiming to be a builtin, always equal": (
        "class A:\n    __module__ = 'builtins'\n    def __eq__(self, o): return True\n"
        "    def __next__(self): raise StopIteration\n    __hash__ = object.__hash__\n"
        "def f(x):\n    return A()\n"),
    "patched Counter.__eq__": (
        "import collections\ncollections.Counter.__eq__ = lambda a, b: True\n"
        "def f(x):\n    return collections.Counter()\n"),
    "settrace swaps candidate in the test's frame": (
        "import sys\n"
        "def tracer(frame, event, arg):\n"
        "    if 'candidate' in frame.f_locals:\n"
        "        frame.f_locals['candidate'] = lambda x: 2 * x\n"
        "        import ctypes\n"
        "        ctypes.pythonapi.PyFrame_LocalsToFast(ctypes.py_object(frame), ctypes.c_int(0))\n"
        "    return tracer\n"
        "sys.settrace(tracer)\n"
        "def f(x):\n    return 0\n"),
}
CHECK = {"type": "assert", "entry_point": "f",
         "code": "def check(candidate):\n    assert candidate(1) == 2\n"
                 "    assert candidate(5) == 10\n\ncheck(f)\n"}
COUNTER = {"type": "assert", "code": "from collections import Counter\n"
                                     "assert f('aab') == Counter({'a': 2, 'b': 1})\n"}


@pytest.mark.parametrize("code", ASSERT_CHEATS.values(), ids=ASSERT_CHEATS.keys())
def test_assert_cheats_never_pass(hostile_run, code):
    res = hostile_run("python", code, [TWICE, CHECK, COUNTER])
    assert all(t.verdict != Verdict.accepted for t in res.tests), res.feedback


def test_honest_program_passes_the_same_tests(hostile_run):
    code = ("from collections import Counter\n"
            "def f(x):\n    return Counter(x) if isinstance(x, str) else 2 * x\n")
    res = hostile_run("python", code, [TWICE, CHECK, COUNTER])
    assert res.verdict == Verdict.accepted, res.feedback


def test_rigged_module_in_sys_modules(hostile_run):
    """The test draws inputs with `random`; the program leaves a fake `random` behind."""
    test = {"type": "assert", "code": "import random\nrandom.seed(7)\n"
                                      "for _ in range(20):\n    x = random.randint(1, 10**6)\n"
                                      "    assert f(x) == 2 * x\n"}
    cheat = ("import sys, types\nm = types.ModuleType('random')\n"
             "m.seed = lambda *a: None\nm.randint = lambda a, b: 1\nsys.modules['random'] = m\n"
             "def f(x):\n    return 2\n")
    assert hostile_run("python", cheat, [test]).verdict != Verdict.accepted
    assert hostile_run("python", "def f(x):\n    return 2 * x\n", [test]).verdict == \
        Verdict.accepted


def test_program_cannot_redefine_the_problems_helpers(hostile_run):
    """HumanEval/38's shape: the test encodes with the prompt's helper, then decodes with
    the program; a program that redefines the helper as the identity must still fail."""
    setup = ("def encode(s):\n    return s[::-1]\n\n"
             "def decode(s):\n    \"\"\"Undo encode.\"\"\"\n")
    test = {"type": "assert", "setup": setup, "entry_point": "decode",
            "code": "def check(candidate):\n    for s in ['abc', 'hello']:\n"
                    "        assert candidate(encode(s)) == s\n\ncheck(decode)\n"}
    cheat = "def encode(s):\n    return s\n\ndef decode(s):\n    return s\n"
    honest = "def decode(s):\n    return encode(s)\n"  # uses the prompt's helper
    assert hostile_run("python", cheat, [test]).verdict == Verdict.wrong_answer
    assert hostile_run("python", honest, [test]).verdict == Verdict.accepted


def test_failed_assert_is_wrong_answer_quoting_the_assert(hostile_run):
    res = hostile_run("python", "def f(x):\n    return x\n", [TWICE])
    assert res.verdict == Verdict.wrong_answer
    assert "assert f(1) == 2" in res.feedback


def test_program_objects_cross_only_as_handles(hostile_run):
    """A class of the program's, built and passed back by the test (MBPP's Pair)."""
    code = ("class Pair:\n    def __init__(self, a, b):\n        self.a, self.b = a, b\n"
            "def total(ps):\n    return sum(p.a + p.b for p in ps)\n")
    test = {"type": "assert", "code": "assert total([Pair(1, 2), Pair(3, 4)]) == 10\n"
                                      "p = Pair(5, 6)\nassert p.a == 5\n"}
    assert hostile_run("python", code, [test]).verdict == Verdict.accepted


# --- 2. the run directory and the runner's own files ------------------------------------
def test_links_planted_in_a_read_only_run_dir_reach_nothing(hostile_run):
    """Pre-planted links for the checker's files (its `actual` onto its `expected`) in a
    directory made read-only, so that a later write would go through them."""
    checker = ("import sys\nexp = open(sys.argv[2]).read().split()\n"
               "act = open(sys.argv[3]).read().split()\nsys.exit(0 if exp == act else 1)\n")
    plant = ("import os\n"
             "for d in ('.', '/work/run', '/work'):\n"
             "    try:\n"
             "        os.makedirs(d, exist_ok=True)\n"
             "        for name, target in (('checker.py', '/tmp/c.py'), ('input', '/tmp/i'),\n"
             "                             ('expected', '/tmp/e'), ('actual', '/tmp/e')):\n"
             "            os.symlink(target, os.path.join(d, name))\n"
             "        os.chmod(d, 0o555)\n"
             "    except OSError: pass\n"
             "print('wrong')\n")
    test = stdio("", "right", checker="program", checker_code=checker)
    res = hostile_run("python", plant, [test, test])
    assert [t.verdict for t in res.tests] == [Verdict.wrong_answer] * 2, res.feedback


def test_fifo_where_stdin_was_written(hostile_run):
    code = ("import os\nfor p in ('/work/.stdin', '/work/run/.stdin', '/tmp/.stdin'):\n"
            "    try: os.mkfifo(p)\n    except OSError: pass\n"
            "print(int(input()) * 2)\n")
    res = hostile_run("python", code, [stdio("2", "4"), stdio("3", "6"), stdio("4", "8")])
    assert res.verdict == Verdict.accepted, res.feedback


def test_java_class_name_too_long_is_a_compile_error(hostile_run):
    name = "A" * 300
    code = f"public class {name} {{ public static void main(String[] a) {{ }} }}\n"
    res = hostile_run("java", code, [stdio("", "")])
    assert res.verdict == Verdict.compile_error


def test_work_made_read_only_is_the_programs_problem_only(hostile_run):
    code = ("import os\nfor d in ('/work', '/work/build', '/tmp', '/dev/shm'):\n"
            "    try: os.chmod(d, 0o500)\n    except OSError: pass\n"
            "print(int(input()) + 1)\n")
    res = hostile_run("python", code, [stdio("1", "2"), stdio("2", "3")])
    assert res.verdict == Verdict.accepted, res.feedback
    after = hostile_run("python", "print(input())", [stdio("x", "x")])
    assert after.verdict == Verdict.accepted


# --- 3. no process outlives its test ----------------------------------------------------
SURVIVOR = (  # a child whose main thread exits while a thread keeps running
    "import os, sys, threading, time, ctypes\n"
    "mark = '/work/build/alive'\n"
    "if os.path.exists(mark):\n"
    "    a = open(mark).read(); time.sleep(0.3); b = open(mark).read()\n"
    "    print('SURVIVOR' if a != b else 'ok'); sys.exit(0)\n"
    "open(mark, 'w').write('0')\n"
    "pid = os.fork()\n"
    "if pid == 0:\n"
    "    os.setsid()\n"
    "    def beat():\n"
    "        n = 0\n"
    "        while True:\n"
    "            n += 1; open(mark, 'w').write(str(n)); time.sleep(0.01)\n"
    "    threading.Thread(target=beat).start()\n"
    "    ctypes.CDLL(None).syscall(60, 0)  # exit this thread only\n"
    "while open(mark).read() == '0' or \\\n"
    "        open(f'/proc/{pid}/stat').read().rsplit(')', 1)[1].split()[0] != 'Z':\n"
    "    time.sleep(0.01)  # the survivor is beating and its leader is a zombie\n"
    "print('ok')\n")


def test_thread_behind_a_zombie_leader_is_killed(hostile_run):
    res = hostile_run("python", SURVIVOR, [stdio("", "ok"), stdio("", "ok")])
    assert res.verdict == Verdict.accepted, res.feedback


def test_detached_worker_cannot_answer_after_the_program_exits(hostile_run):
    """The answer comes from a double-forked worker after the main process has exited:
    the run ends with its main process, so the late answer never counts."""
    code = ("import os, time, threading, ctypes\n"
            "pid = os.fork()\n"
            "if pid == 0:\n"
            "    os.setsid()\n"
            "    def late():\n"
            "        time.sleep(0.5); print(42, flush=True); os._exit(0)\n"
            "    threading.Thread(target=late).start()\n"
            "    ctypes.CDLL(None).syscall(60, 0)  # exit this thread only\n"
            "while open(f'/proc/{pid}/stat').read().rsplit(')', 1)[1].split()[0] != 'Z':\n"
            "    time.sleep(0.01)\n")
    res = hostile_run("python", code, [stdio("", "42")], limits={"wall_time_s": 5})
    assert res.verdict != Verdict.accepted


def test_cpu_of_every_process_counts(hostile_run):
    """Four orphaned workers burn 0.8 s of CPU each under a 1 s limit and report through
    a pipe (nobody waits for them): over the limit, together."""
    code = ("import os, time\n"
            "r, w = os.pipe()\n"
            "for _ in range(4):\n"
            "    if os.fork() == 0:\n"
            "        if os.fork() == 0:\n"
            "            t = time.process_time()\n"
            "            while time.process_time() - t < 0.8: pass\n"
            "            os.write(w, b'x'); os._exit(0)\n"
            "        os._exit(0)\n"
            "got = b''\nwhile len(got) < 4: got += os.read(r, 4)\n"
            "time.sleep(0.2)\nprint('done')\n")
    res = hostile_run("python", code, [stdio("", "done")],
                      limits={"cpu_time_s": 1, "wall_time_s": 10})
    assert res.verdict == Verdict.time_limit_exceeded, res.tests[0]


# --- 4. limits that hold, for every language --------------------------------------------
MEM = {"memory_mb": 256, "wall_time_s": 20, "cpu_time_s": 10}
MEMORY_HOGS = {
    "memfd": ("python", "import os\nfds = [os.memfd_create('x') for _ in range(12)]\n"
                        "for fd in fds:\n    for _ in range(4): os.write(fd, b'x' * (10 << 20))\n"
                        "print('ok')\n"),
    "sysv shm": ("python", "import ctypes\nlibc = ctypes.CDLL(None)\n"
                           "libc.shmat.restype = ctypes.c_void_p\n"
                           "for _ in range(10):\n    i = libc.shmget(0, 50 << 20, 0o1600)\n"
                           "    p = libc.shmat(i, None, 0)\n    ctypes.memset(p, 1, 50 << 20)\n"
                           "    libc.shmdt(ctypes.c_void_p(p))\nprint('ok')\n"),
    "tmpfs files": ("python", "import os\nfor d in ('/tmp', '/dev/shm', '/work'):\n"
                              "    for i in range(6):\n        try:\n"
                              "            open(f'{d}/f{i}', 'wb').write(b'x' * (50 << 20))\n"
                              "        except OSError: pass\nprint('ok')\n"),
    "forked children": ("python", "import os, time\nfor _ in range(3):\n"
                                  "    if os.fork() == 0:\n        x = bytearray(150 << 20)\n"
                                  "        time.sleep(0.5); os._exit(0)\n"
                                  "for _ in range(3): os.wait()\nprint('ok')\n"),
    "go heap": ("go", "package main\nimport \"fmt\"\nfunc main() {\n"
                      "  b := make([][]byte, 0)\n  for i := 0; i < 60; i++ {\n"
                      "    x := make([]byte, 10<<20)\n    for j := range x { x[j] = 1 }\n"
                      "    b = append(b, x)\n  }\n  fmt.Println(\"ok\", len(b) > 0)\n}\n"),
    "node buffers": ("javascript", "let a = []; for (let i = 0; i < 60; i++) "
                                   "a.push(Buffer.alloc(10 << 20, 1)); console.log('ok');\n"),
}


@pytest.mark.parametrize("lang,code", MEMORY_HOGS.values(), ids=MEMORY_HOGS.keys())
def test_memory_over_the_limit_is_never_accepted(hostile_run, lang, code):
    if getattr(hostile_run.sandbox, "runtime", "") == "runsc":
        # gVisor: the program takes the whole sandbox down; judged out of memory when the
        # engine reports the OOM kill in time, else a sandbox_error: never a pass
        req = ExecuteRequest.model_validate({"language": lang, "code": code, "limits": MEM,
                                             "tests": [stdio("", "ok")]})
        res = execute(req, hostile_run.sandbox, hostile_run.exec_config)
        assert res.status == "sandbox_error" or res.verdict == Verdict.memory_limit_exceeded
    else:
        res = hostile_run(lang, code, [stdio("", "ok")], limits=MEM)
        assert res.verdict == Verdict.memory_limit_exceeded, res.tests
    assert hostile_run("python", "print(1)", [stdio("", "1")]).verdict == Verdict.accepted


def test_sysv_ipc_objects_die_with_the_run(hostile_run):
    """The first test leaves a shared memory segment and a message queue behind; the
    second must find none (they were held by the sandbox, and charged to it, for good)."""
    code = ("import ctypes, os\nrows = []\nfor n in ('shm', 'msg', 'sem'):\n"
            "    p = '/proc/sysvipc/' + n\n"
            "    if os.path.exists(p): rows += open(p).read().splitlines()[1:]\n"
            "libc = ctypes.CDLL(None)\n"
            "libc.shmget(0, 1 << 20, 0o1600); libc.msgget(0, 0o1600)\n"
            "print('LEFT' if rows else 'ok')\n")
    res = hostile_run("python", code, [stdio("", "ok")] * 3)
    assert res.verdict == Verdict.accepted, res.feedback


THREADS = {
    "python": "import threading\nfrom concurrent.futures import ThreadPoolExecutor\n"
              "b = threading.Barrier(8)\n"
              "def work(x):\n    data = [bytearray(1000) for _ in range(2000)]\n"
              "    b.wait()\n    return x + 0 * len(data)\n"
              "with ThreadPoolExecutor(8) as ex:\n    print(sum(ex.map(work, range(8))))\n",
    "cpp": "#include <thread>\n#include <vector>\n#include <atomic>\n#include <cstdio>\n"
           "int main(){std::atomic<int> s{0};std::vector<std::thread> t;\n"
           "for(int i=0;i<8;i++)t.emplace_back([&,i]{s+=i;});for(auto&x:t)x.join();\n"
           "printf(\"%d\\n\",s.load());}\n",
    "java": "import java.util.*;\npublic class Main { public static void main(String[] a)"
            " throws Exception { final int[] s = {0}; List<Thread> t = new ArrayList<>();\n"
            "for (int i = 0; i < 8; i++) { final int k = i; Thread th = new Thread(() -> "
            "{ synchronized (s) { s[0] += k; } }); th.start(); t.add(th); }\n"
            "for (Thread th : t) th.join(); System.out.println(s[0]); } }\n",
    "go": "package main\nimport (\"fmt\"; \"sync\")\nfunc main() { var wg sync.WaitGroup\n"
          "var mu sync.Mutex; s := 0\nfor i := 0; i < 8; i++ { wg.Add(1); go func(k int) "
          "{ defer wg.Done(); mu.Lock(); s += k; mu.Unlock() }(i) }\nwg.Wait(); fmt.Println(s) }\n",
}


@pytest.mark.parametrize("lang", THREADS)
def test_eight_threads_run_under_256_mb(hostile_run, lang):
    res = hostile_run(lang, THREADS[lang], [stdio("", "28")], limits=MEM)
    assert res.verdict == Verdict.accepted, res.feedback


def test_compiler_bomb_is_a_compile_error_and_the_sandbox_survives(hostile_run):
    bomb = "#include \"/dev/zero\"\nint main() {}\n"  # the preprocessor reads forever
    res = hostile_run("cpp", bomb, [stdio("", "")])
    assert res.verdict == Verdict.compile_error
    assert hostile_run("python", "print(1)", [stdio("", "1")]).verdict == Verdict.accepted


def test_rustc_const_evaluation_bomb_meets_the_compile_memory_bound(hostile_run):
    """rustc evaluates a 4 GiB static at compile time: bounded by the compile phase's
    memory (it used to take ~3 GB of the host's before failing)."""
    bomb = ("const N: usize = 1 << 32;\nstatic A: [u8; N] = [1; N];\n"
            "fn main() { println!(\"{}\", A[5]); }\n")
    res = hostile_run("rust", bomb, [stdio("", "1")])
    assert res.verdict == Verdict.compile_error
    assert "out of memory" in res.compile.stderr, res.compile
    assert hostile_run("python", "print(1)", [stdio("", "1")]).verdict == Verdict.accepted


def test_local_sandbox_does_not_see_usr_local(local_sandbox, exec_config):
    program = "import os\nprint(sorted(os.listdir('/usr')))\n"
    res = Runner(local_sandbox, exec_config)("python", program, [stdio("", "")])
    assert "local" not in res.tests[0].stdout


# --- found by red-teaming the new runtime ----------------------------------------------
FORGE = ("import sys, os, json\nf = sys._getframe()\nwhile f is not None:\n"
         "    s = f.f_locals.get('spec')\n"
         "    if isinstance(s, dict) and 'nonce' in s:\n"
         "        os.write(3, json.dumps({'nonce': s['nonce'], 'status': 'passed',\n"
         "                                'message': ''}).encode())\n"
         "        os._exit(0)\n    f = f.f_back\n")


def test_program_cannot_make_the_trusted_side_import_its_code(hostile_run):
    """unittest.__main__ would discover tests from / and import /tmp and /work as
    packages; pdb would read an rc file from HOME: neither is imported any more."""
    code = (f"import types, os\nfor d in ('/tmp', '/work', '/work/run', os.getcwd()):\n"
            f"    try: open(d + '/__init__.py', 'w').write({FORGE!r})\n"
            "    except OSError: pass\n"
            f"    try: open(d + '/.pdbrc', 'w').write('!' + {FORGE!r}.replace(chr(10), ';'))\n"
            "    except OSError: pass\n"
            "ut = types.ModuleType('unittest.__main__')\n"
            "from pdb import run as g\n"
            "def f(x):\n    return 42\n")
    tests = [{"type": "assert", "code": "assert f(1) == 2\n"},
             {"type": "assert", "code": "assert g('1') == 2\n"}]
    res = hostile_run("python", code, tests)
    assert all(t.verdict != Verdict.accepted for t in res.tests), res.feedback


def test_stop_iteration_from_the_program_does_not_end_the_tests_loop(hostile_run):
    tests = [{"type": "assert", "code": "assert all(map(lambda x: f(x) == 2 * x, [1, 2]))\n"},
             {"type": "assert", "code": "for r in map(f, [1, 2]):\n    assert r == 2\n"}]
    res = hostile_run("python", "def f(x):\n    raise StopIteration\n", tests)
    assert all(t.verdict != Verdict.accepted for t in res.tests), res.feedback


def test_changing_the_runners_limits_does_not_reach_later_jobs(hostile_run):
    attack = ("import os, resource\n"
              "for pid in (1, os.getppid()):\n"
              "    for res, v in ((resource.RLIMIT_NOFILE, 200),\n"
              "                   (resource.RLIMIT_FSIZE, 1 << 20), (resource.RLIMIT_NPROC, 5)):\n"
              "        try: resource.prlimit(pid, res, (v, v))\n        except OSError: pass\n"
              "    try: os.setpriority(os.PRIO_PROCESS, pid, 19)\n    except OSError: pass\n"
              "print('x')\n")
    hostile_run("python", attack, [stdio("", "x")])
    for _ in range(3):  # whichever sandbox of the pool takes them
        assert hostile_run("c", "#include <stdio.h>\nint main(){puts(\"ok\");}\n",
                           [stdio("", "ok")]).verdict == Verdict.accepted
        assert hostile_run("python", "print('ok')", [stdio("", "ok")]).verdict == \
            Verdict.accepted


def test_flooding_the_result_channel_is_the_programs_failure(hostile_run):
    code = ("import os\ndef f(x):\n    for _ in range(40): os.write(3, b'7' * (1 << 20))\n"
            "    os._exit(0)\n")
    res = hostile_run("python", code, [{"type": "call", "entry_point": "f", "args": [1],
                                        "expected": 7}])
    assert res.verdict != Verdict.accepted


def test_a_child_handed_to_the_fork_server_is_still_killed(hostile_run):
    code = ("import ctypes, os, time\nlibc = ctypes.CDLL(None)\n"
            "pid = libc.syscall(56, 0x8000 | 17, 0, 0, 0, 0)  # clone(CLONE_PARENT|SIGCHLD)\n"
            "if pid == 0:\n    time.sleep(30); os._exit(0)\nprint('x')\n")
    res = hostile_run("python", code, [stdio("", "x"), stdio("", "x")])
    assert res.verdict == Verdict.accepted, res.feedback


def test_small_memory_limits_judge_the_program_not_the_runner(hostile_run):
    code = "#include <stdio.h>\nint main(){puts(\"ok\");}\n"
    res = hostile_run("c", code, [stdio("", "ok")], limits={"memory_mb": 16})
    assert res.verdict == Verdict.accepted, res.tests
