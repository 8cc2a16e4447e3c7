"""PID 1 of every sandbox (a Docker container or a bwrap namespace): the request loop.

Frames on stdin, one answer each on stdout:
  put   {files: {path: base64}}          write files into the build dir
  run   {kind, argv, dir, files, stdin, env, limits, spec, fetch}   one run, measured
  runs  {runs: [run, ...]}               several runs in order, one answer
  reset {}                               kill every process, wipe every writable dir
Being PID 1 matters: the kernel ignores SIGKILL sent to a namespace's init from inside,
so a program cannot kill its runner, and every orphan is reparented to it.
"""

import base64
import ctypes
import os
import signal

from . import framing, rundir, runs, state


def put(sb, files):
    rundir.ensure_build()
    try:
        for path, content in files.items():
            rundir.write(rundir.BUILD, path, base64.b64decode(content), replace=True)
    except rundir.RunDirError as e:
        return {"ok": False, "message": str(e)}
    return {"ok": True}


def reset(sb):
    if not sb.zygote_ok():
        sb.stop_zygote()
    try:
        sb.kill_rest()
        procs_gone = True
    except RuntimeError:
        procs_gone = False
    left = rundir.empty(rundir.WORK) + rundir.wipe_scratch()
    state.remove_ipc()
    rundir.ensure_build()
    if sb.tampered():
        sb.dirty.append("the runner's limits or scheduling were changed")
    dirty, sb.dirty = sb.dirty, []
    if sb.zygote is None:
        sb.start_zygote()
    return {"clean": procs_gone and not left and not dirty,
            "leftovers": (dirty + left)[:20]}


def handle(sb, req):
    op = req.get("op")
    if op == "run":
        return runs.run(sb, req)
    if op == "runs":  # a job's tests in one round trip
        return {"results": [runs.run(sb, r) for r in req["runs"]]}
    if op == "put":
        return put(sb, req["files"])
    if op == "reset":
        return reset(sb)
    return {"error": "unknown op %r" % op}


def main(modules):
    # Non-dumpable: a same-uid program cannot ptrace us or open /proc/1/fd.
    ctypes.CDLL(None).prctl(4, 0, 0, 0, 0)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    config = framing.read_frame(0)
    sb = state.Sandbox(config, modules)
    rundir.ensure_build()
    sb.start_zygote()
    framing.write_frame(1, {"ready": True, "pid": os.getpid(), "uid": os.getuid(),
                            "launcher": sb.launcher is not None,
                            "zygote": sb.zygote is not None,
                            "memcg": sb.events is not None})
    while True:
        try:
            req = framing.read_frame(0)
        except EOFError:
            return
        try:
            resp = handle(sb, req)
        except runs.SandboxFailure as e:
            resp = {"error": str(e)}
        except Exception as e:  # answer, then let the host decide to retire us
            resp = {"error": "%s: %s" % (type(e).__name__, e)}
        framing.write_frame(1, resp)
