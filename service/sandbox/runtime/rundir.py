"""Run directories: a fresh one per run, written and read without following links.

Every run gets a directory with a random name made after the previous run's processes
are gone, so no program has seen it before it starts. The runner creates what it writes
there with O_EXCL|O_NOFOLLOW, component by component, and reads files back the same way.
A program may chmod, fill, or plant links and FIFOs in its own directory: wiping undoes
modes first and never follows a link; what cannot be wiped is reported (the host then
retires the sandbox once the verdict is decided).
"""

import os
import secrets
import shutil
import stat

WORK = "/work"
BUILD = WORK + "/build"
SCRATCH = ("/tmp", "/dev/shm")
MAX_NAME = 255
DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW


class RunDirError(Exception):
    """The run directory could not be prepared: the program's doing, judged as its error."""


def check_path(relpath):
    parts = relpath.split("/")
    if not relpath or relpath.startswith("/") or len(relpath) > 4096 or "\0" in relpath \
            or any(p in ("", ".", "..") or len(p.encode()) > MAX_NAME for p in parts):
        raise RunDirError("bad file path: %r" % relpath[:300])
    return parts


def own_writable(path):
    """Give back write access to a directory of ours a program made read-only."""
    try:
        st = os.lstat(path)
        if stat.S_ISDIR(st.st_mode) and st.st_uid == os.getuid():
            os.chmod(path, stat.S_IMODE(st.st_mode) | 0o700)
    except OSError:
        pass


def fresh():
    own_writable(WORK)
    path = "%s/run-%s" % (WORK, secrets.token_hex(8))
    try:
        os.mkdir(path, 0o755)
    except OSError as e:
        raise RunDirError("cannot create a run directory: %s" % e.strerror) from None
    return path


def ensure_build():
    own_writable(WORK)
    try:
        st = os.lstat(BUILD)
        if stat.S_ISDIR(st.st_mode):
            own_writable(BUILD)
            return
        os.unlink(BUILD)  # a link or file a program put in its place
    except FileNotFoundError:
        pass
    os.mkdir(BUILD, 0o755)


def _open_parent(root, parts, create):
    fd = os.open(root, DIR_FLAGS)
    try:
        for part in parts[:-1]:
            if create:
                try:
                    os.mkdir(part, 0o755, dir_fd=fd)
                except FileExistsError:
                    pass
            nxt = os.open(part, DIR_FLAGS, dir_fd=fd)
            os.close(fd)
            fd = nxt
        return fd
    except BaseException:
        os.close(fd)
        raise


def write(root, relpath, data, replace=False):
    """Create root/relpath (a new file, never through a link) with `data`; `replace`
    first removes whatever has that name (the link itself, not its target)."""
    parts = check_path(relpath)
    try:
        dfd = _open_parent(root, parts, create=True)
        try:
            if replace:
                try:
                    os.unlink(parts[-1], dir_fd=dfd)
                except (FileNotFoundError, IsADirectoryError, PermissionError):
                    pass
            fd = os.open(parts[-1], os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW,
                         0o644, dir_fd=dfd)
        finally:
            os.close(dfd)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
    except OSError as e:
        raise RunDirError("cannot write %s: %s" % (relpath[:300], e.strerror)) from None


def read(root, relpath, cap):
    """Bytes of a regular file root/relpath (at most cap), or None; never follows links."""
    try:
        parts = check_path(relpath)
        dfd = _open_parent(root, parts, create=False)
        try:
            fd = os.open(parts[-1], os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=dfd)
        finally:
            os.close(dfd)
    except (OSError, RunDirError):
        return None
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            return None
        return f.read(cap)


def wipe(path):
    """Remove path and everything under it, whatever modes a program set; True if gone."""
    def retry(func, failed, exc):
        own_writable(os.path.dirname(failed))
        own_writable(failed)
        try:
            if os.path.isdir(failed) and not os.path.islink(failed):
                shutil.rmtree(failed, onerror=lambda *a: None)
            else:
                os.unlink(failed)
        except OSError:
            pass

    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return True
    if not stat.S_ISDIR(st.st_mode):
        try:
            os.unlink(path)
        except OSError:
            pass
    else:
        own_writable(path)
        shutil.rmtree(path, onerror=retry)
        if os.path.lexists(path):  # one more pass: the first opened what it could
            shutil.rmtree(path, onerror=retry)
    return not os.path.lexists(path)


def empty(directory, keep=()):
    """Wipe everything in `directory` but the names in `keep`; the names left behind."""
    try:
        names = os.listdir(directory)
    except OSError:
        return []
    return [os.path.join(directory, n) for n in names
            if n not in keep and not wipe(os.path.join(directory, n))]


def wipe_scratch():
    """After every run: /tmp and /dev/shm emptied, every run dir gone. Leftovers listed."""
    left = []
    for d in SCRATCH:
        own_writable(d)
        left += empty(d)
    left += empty(WORK, keep=("build",))
    return left
