"""The one table of languages: source file, compile command, run command, limits quirks.

Commands run inside the sandbox: `{mem}` is the memory limit in MB, paths are absolute
under /work/build (the build dir that survives between a job's tests).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

BUILD_DIR = "/work/build"
SANDBOX_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass(frozen=True)
class LanguageSpec:
    id: str
    source_file: str
    run: tuple[str, ...]
    version: tuple[str, ...]
    compile: tuple[str, ...] | None = None
    # RLIMIT_AS breaks runtimes that reserve large address ranges up front (JVM, V8, Go);
    # those get their own heap flag and the container's cgroup as the hard bound.
    address_space_limit: bool = True
    compile_address_space_limit: bool = True
    test_types: tuple[str, ...] = ("stdio",)
    env: dict[str, str] = field(default_factory=dict)
    oom_markers: tuple[str, ...] = ()

    def source_name(self, code: str) -> str:
        if self.id == "java":
            m = re.search(r"public\s+(?:final\s+)?class\s+([A-Za-z_]\w{0,99})\b", code)
            # a longer name than any file system takes: javac reports the mismatch
            return f"{m.group(1)}.java" if m else self.source_file
        return self.source_file

    def run_argv(self, code: str, memory_mb: int) -> list[str]:
        main_class = self.source_name(code).removesuffix(".java")
        return [a.format(mem=memory_mb, main=main_class) for a in self.run]

    def compile_argv(self, code: str) -> list[str] | None:
        if self.compile is None:
            return None
        return [a.format(src=self.source_name(code)) for a in self.compile]


_CXX_OOM = ("std::bad_alloc", "Cannot allocate memory")

LANGUAGES: dict[str, LanguageSpec] = {
    spec.id: spec
    for spec in (
        LanguageSpec(
            id="python",
            source_file="main.py",
            run=("python3", f"{BUILD_DIR}/main.py"),
            version=("python3", "--version"),
            test_types=("stdio", "call", "assert"),
            env={"PYTHONDONTWRITEBYTECODE": "1", "PYTHONHASHSEED": "0"},
            oom_markers=("MemoryError", "[Errno 12] Cannot allocate memory"),
        ),
        LanguageSpec(
            id="cpp",
            source_file="main.cpp",
            compile=("g++", "-std=c++17", "-O2", "-pipe", "-o", "main", "{src}"),
            run=(f"{BUILD_DIR}/main",),
            version=("g++", "--version"),
            oom_markers=_CXX_OOM,
        ),
        LanguageSpec(
            id="c",
            source_file="main.c",
            compile=("gcc", "-std=gnu11", "-O2", "-pipe", "-o", "main", "{src}", "-lm"),
            run=(f"{BUILD_DIR}/main",),
            version=("gcc", "--version"),
            oom_markers=_CXX_OOM,
        ),
        LanguageSpec(
            id="javascript",
            source_file="main.js",
            run=("node", "--max-old-space-size={mem}", "--stack-size=65500",
                 f"{BUILD_DIR}/main.js"),
            version=("node", "--version"),
            address_space_limit=False,
            oom_markers=("JavaScript heap out of memory", "Allocation failed"),
        ),
        LanguageSpec(
            id="java",
            source_file="Main.java",
            compile=("javac", "-J-Xmx1g", "-encoding", "UTF-8", "-d", ".", "{src}"),
            run=("java", "-Xmx{mem}m", "-Xss64m", "-XX:+UseSerialGC",
                 "-XX:TieredStopAtLevel=1", "-cp", BUILD_DIR, "{main}"),
            version=("java", "-version"),
            address_space_limit=False,
            compile_address_space_limit=False,
            oom_markers=("java.lang.OutOfMemoryError",),
        ),
        LanguageSpec(
            id="rust",
            source_file="main.rs",
            compile=("rustc", "-O", "--edition", "2021", "-o", "main", "{src}"),
            run=(f"{BUILD_DIR}/main",),
            version=("rustc", "--version"),
            compile_address_space_limit=False,
            oom_markers=("memory allocation of",),
        ),
        LanguageSpec(
            id="go",
            source_file="main.go",
            compile=("go", "build", "-o", "main", "{src}"),
            run=(f"{BUILD_DIR}/main",),
            version=("go", "version"),
            address_space_limit=False,
            compile_address_space_limit=False,
            env={"GOCACHE": f"{BUILD_DIR}/.gocache", "GOPATH": f"{BUILD_DIR}/.gopath",
                 "GO111MODULE": "off", "GOFLAGS": "-buildvcs=false", "GOMAXPROCS": "2"},
            oom_markers=("runtime: out of memory", "fatal error: out of memory"),
        ),
        LanguageSpec(
            id="bash",
            source_file="main.sh",
            run=("bash", f"{BUILD_DIR}/main.sh"),
            version=("bash", "--version"),
            oom_markers=("Cannot allocate memory",),
        ),
        LanguageSpec(
            id="sql",
            source_file="main.sql",
            run=("python3",),  # driven by the harness; see service.sandbox.harness
            version=("python3", "-c", "import sqlite3; print('SQLite', sqlite3.sqlite_version)"),
            test_types=("sql",),
        ),
    )
}


def sandbox_env(spec: LanguageSpec) -> dict[str, str]:
    """The whole environment a program sees: nothing of the service's own."""
    return {
        "PATH": SANDBOX_PATH,
        "HOME": "/work/run",
        "TMPDIR": "/tmp",
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        # glibc reserves 64 MB of address space per thread arena: with an address-space
        # limit, ordinary thread pools would fail to start their threads
        "MALLOC_ARENA_MAX": "2",
        **spec.env,
    }
