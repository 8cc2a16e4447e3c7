"""The in-sandbox runtime: a small standard-library package sent into every sandbox.

Nothing here is imported by the service itself except to read the sources (see
service.sandbox.protocol.runtime_modules). Inside the sandbox the modules are loaded
from memory as the package `rlefrt`, in the order of MODULES, so they import each
other relatively. Each module is one concept:

  framing   length-prefixed JSON frames and typed message checks
  limits    the one rlimit table (the C launcher, the fork server and the fallback)
  procs     process control: kill everything, verify nothing is left, count CPU
  rundir    fresh run directories, no-follow writes and reads, robust wipes
  capture   output capture under a cap and a deadline
  memcg     the sandbox's memory cgroup as seen from inside (OOM kills)
  values    the narrow channel's codec: built-in values only, checked on decode
  program   the program side of Python harness runs (call, sql, assert server)
  trusted   the trusted test process of `assert` tests (never runs submitted code)
  zygote    the Python fork server
  state     the fork server and launcher handles, cleaning up after every run
  runs      one run: spawn (exec or fork), wait, measure
  runner    PID 1 of the sandbox: the request loop
"""

MODULES = ("framing", "limits", "procs", "rundir", "capture", "memcg", "values", "program",
           "trusted", "zygote", "state", "runs", "runner")
