"""Files one live run holds: a lock beside them, and their opening without following a link.

`held(path)` takes `PATH.lock` (an exclusive `flock`, never waited for): a second run on the same
`--state` learns at once that a live one has it, and a run killed by SIGKILL leaves a lock file
that no process holds, which the next run takes. The lock file is removed by its holder, and a run
that locked a file just removed (another inode than the path's now) locks the new one instead.

`taken(path, sleep)` waits for a `held` lock instead: a `Mirror`'s processes refresh one at a
time. `hold(fd)` locks a temporary file as it is written, and `abandoned(path)` tells a later run
that its writer is gone (a `kill -9`, the OOM killer): that run removes it.

`open_private(path)` opens a file of the run's own (read and write, made 0600 if missing) without
following a symbolic link, and refuses anything but a regular file: a state or spool linked to
another file must never be read, cut or written through the link.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO


class Locked(OSError):
    """Another live process holds the lock."""


class NotRegular(OSError):
    """A path that is a symbolic link, or not a regular file."""


def lock_path_for(path: Path) -> Path:
    return path.with_name(path.name + ".lock")


@contextlib.contextmanager
def held(path: Path) -> Iterator[None]:
    """Hold `PATH.lock` for the block; raises `Locked` at once when a live run holds it."""
    lock = lock_path_for(path)
    while True:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise Locked(errno.EWOULDBLOCK, "held by a live run", str(lock)) from None
        try:
            same = os.fstat(fd).st_ino == lock.stat(follow_symlinks=False).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)  # its holder removed it as we locked it: lock the file there now
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            lock.unlink()  # while held: a run waiting on this inode sees it gone and starts over
        os.close(fd)


POLL = 0.05  # seconds between two tries at a lock another process holds


def taken(path: Path, sleep: Callable[[float], None]) -> contextlib.ExitStack:
    """`held(path)`, once the process holding it lets go: tried every `POLL` seconds, with
    `sleep` (a cancel's sleep ends the wait by raising). The caller closes what it returns."""
    while True:
        stack = contextlib.ExitStack()
        try:
            stack.enter_context(held(path))
        except Locked:
            sleep(POLL)
            continue
        return stack


def hold(fd: int) -> None:
    """Lock an open file of this process's own (a temporary file it writes): a later run learns
    from `abandoned` whether a live process still writes it."""
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)


def abandoned(path: Path) -> bool:
    """Whether no live process holds the lock on `path` (the process that held it is gone)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)
    return True


def open_private(path: Path, *, create: bool) -> IO[bytes]:
    """`path` opened to read and write, never through a symbolic link, only a regular file."""
    flags = os.O_RDWR | os.O_NOFOLLOW | (os.O_CREAT if create else 0)
    try:
        fd = os.open(path, flags, 0o600)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise NotRegular(errno.ELOOP, "a symbolic link, not followed", str(path)) from None
        raise
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise NotRegular(errno.EINVAL, "not a regular file", str(path))
    return open(fd, "r+b")  # noqa: PTH123 (a file descriptor, not a path)


def read_private(path: Path) -> bytes:
    """The bytes of a regular file at `path`, never read through a symbolic link."""
    with open_private(path, create=False) as file:
        return file.read()
