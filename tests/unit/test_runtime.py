"""The in-sandbox runtime's pieces, without a sandbox: codec, limits, run dirs, framing,
the trusted side's binding rules, the cgroup counter."""

import collections
import os
import resource
import socket

import pytest

from service.sandbox.runtime import framing, limits, memcg, rundir, trusted, values


def repr_id(value):
    return type(value).__name__


def roundtrip(value):
    return values.Decoder().loads(values.dumps(value))


@pytest.mark.parametrize("value", [
    None, True, 0, -7, 2**64, -(2**16000), 1.5, float("inf"), -0.0, "é\ud800", [1, [2]],
    (1, (2, 3)), {1, 2}, frozenset({"a"}), {(1, 2): [3], "k": None}, b"\x00\xff",
    bytearray(b"ab"), 1 + 2j, range(1, 10, 3), collections.Counter("aab"),
    collections.OrderedDict(a=1), collections.deque([1, 2]), int, str, type(None),
], ids=repr_id)
def test_built_in_values_cross_exactly(value):
    got = roundtrip(value)
    assert got == value and type(got) is type(value)


def test_iterators_cross_as_iterators():
    got = roundtrip(x * 2 for x in range(3))
    assert next(got) == 0 and list(got) == [2, 4]


def test_other_objects_need_handles():
    class Thing:
        pass
    with pytest.raises(values.Unencodable):
        values.dumps(Thing())
    kept = []
    text = values.dumps([Thing()], handles=lambda o: kept.append(o) or len(kept) - 1)
    assert values.Decoder(handle=lambda n: ("handle", n)).loads(text) == [("handle", 0)]


def test_int_subclass_is_not_an_int():
    class AlwaysEqual(int):
        def __eq__(self, other):
            return True
    with pytest.raises(values.Unencodable):
        values.dumps(AlwaysEqual(3))


@pytest.mark.parametrize("text", [
    '{"tuple": [1], "set": [2]}', '{"eval": "1"}', '{"int": "12"}',
    '{"int": "0x' + "f" * 2_000_000 + '"}',
    "1" * 30, '{"range": [0, 1, 0]}', '{"type": "os"}', '{"handle": 1}', '{"complex": ["a", 1]}',
    "[" * 100_000 + "]" * 100_000, '{"dict": [[[1], 2]]}', '{"bytes": 5}',
])
def test_decoder_refuses_anything_else(text):
    with pytest.raises((ValueError, TypeError)):
        values.Decoder().loads(text)


def test_limits_table_and_launcher_argv():
    lim = {"cpu_time_s": 1.5, "memory_mb": 256, "output_kb": 64, "pids": 16}
    table = dict((r, (s, h)) for r, s, h in limits.table(lim, nproc=True))
    assert table[resource.RLIMIT_CPU] == (2, 3)
    assert table[resource.RLIMIT_AS] == (256 << 20, 256 << 20)
    assert table[resource.RLIMIT_NPROC] == (16, 16)
    no_as = dict((r, v) for r, *v in limits.table({**lim, "address_space": False}, False))
    assert resource.RLIMIT_AS not in no_as and resource.RLIMIT_NPROC not in no_as
    argv = limits.as_argv(limits.table(lim, nproc=True))
    assert argv[0] == str(len(limits.table(lim, nproc=True)))
    assert str(2**64 - 1) in argv  # RLIM_INFINITY as the C launcher reads it


def test_rundir_writes_never_follow_links(tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("original")
    (tmp_path / "run").mkdir()
    os.symlink(victim, tmp_path / "run" / "actual")
    with pytest.raises(rundir.RunDirError):
        rundir.write(str(tmp_path / "run"), "actual", b"overwritten")
    assert victim.read_text() == "original"
    rundir.write(str(tmp_path / "run"), "actual", b"new", replace=True)  # the link goes
    assert victim.read_text() == "original"
    assert (tmp_path / "run" / "actual").read_bytes() == b"new"
    os.symlink(tmp_path, tmp_path / "run" / "sub")
    with pytest.raises(rundir.RunDirError):
        rundir.write(str(tmp_path / "run"), "sub/x", b"through a linked dir")


def test_rundir_reads_regular_files_only(tmp_path):
    os.mkfifo(tmp_path / "fifo")
    os.symlink("/etc/hostname", tmp_path / "link")
    (tmp_path / "f").write_bytes(b"x" * 100)
    assert rundir.read(str(tmp_path), "fifo", 10) is None  # and does not block
    assert rundir.read(str(tmp_path), "link", 10) is None
    assert rundir.read(str(tmp_path), "f", 10) == b"x" * 10


@pytest.mark.parametrize("path", ["", "/etc/passwd", "../x", "a/../../x", "a//b", "x" * 300,
                                  "a\0b"])
def test_rundir_refuses_bad_paths(path):
    with pytest.raises(rundir.RunDirError):
        rundir.check_path(path)


def test_wipe_undoes_modes_and_leaves_link_targets(tmp_path):
    keep = tmp_path / "keep"
    keep.mkdir()
    (keep / "k").write_text("k")
    run = tmp_path / "run"
    (run / "a" / "b").mkdir(parents=True)
    (run / "a" / "b" / "f").write_text("x")
    os.symlink(keep, run / "link")
    os.chmod(run / "a" / "b", 0)
    os.chmod(run / "a", 0o500)
    os.chmod(run, 0o500)
    assert rundir.wipe(str(run)) and not run.exists()
    assert (keep / "k").read_text() == "k"


def test_frames_and_their_checks():
    assert framing.decode(framing.encode({"a": 1})[framing.HEADER.size:]) == {"a": 1}
    for bad in (b"[1]", b"{", b"[" * 100_000):
        with pytest.raises(framing.FrameError):
            framing.decode(bad)
    with pytest.raises(framing.FrameError):
        framing.expect({"pid": True}, pid=int)  # a bool is not a pid
    a, b = socket.socketpair()
    data = framing.encode({"n": 1}) + framing.encode({"n": 2})
    a.sendall(data[:3])
    a.sendall(data[3:])
    reader = framing.SocketReader(b)
    assert [reader.recv()["n"], reader.recv()["n"]] == [1, 2]
    a.close()
    with pytest.raises(EOFError):
        reader.recv()


def test_program_names_never_shadow_builtins_or_setup():
    namespace = {"helper": "trusted"}
    exports = {"len": {"function": True}, "helper": {"function": True},
               "solve": {"function": True}, "sqrt": {"module": "math", "attr": "sqrt"},
               "m": {"module": "math"}, "sum": {"function": True}}
    trusted.bind(namespace, remote=None, exports=exports, entry_point="sum")
    assert "len" not in namespace and namespace["helper"] == "trusted"
    assert callable(namespace["solve"]) and callable(namespace["sum"])  # entry point wins
    import math
    assert namespace["sqrt"] is math.sqrt and namespace["m"] is math


def test_program_exceptions_are_rebuilt_as_plain_exceptions():
    assert type(trusted.rebuilt({"type": "ValueError", "message": "m"})) is ValueError
    for name in ("SystemExit", "KeyboardInterrupt", "GeneratorExit", "object", 5):
        assert type(trusted.rebuilt({"type": name})) is RuntimeError


def test_oom_kill_count(tmp_path):
    (tmp_path / "memory.oom_control").write_text("oom_kill_disable 0\nunder_oom 0\noom_kill 3\n")
    path = memcg.events_file(f"/nonexistent:{tmp_path}")
    assert path and memcg.oom_kills(path) == 3
    assert memcg.events_file("/nonexistent") is None and memcg.oom_kills(None) is None
