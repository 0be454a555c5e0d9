"""Files written all or nothing: a temporary file beside the target, fsynced, renamed into place.

Used by every module that owns a file: the output, the manifest and stats, the `--state`.
"""

from __future__ import annotations

import contextlib
import glob
import os
import secrets
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

from hfharvest.errors import UsageError
from hfharvest.locks import abandoned, hold


def check_writable(path: Path, parameter: str) -> tuple[Path, ...]:
    """Fail before any request when a file could not be written at the end: its folder made,
    and a file tried in it. `parameter` names the option that gave the path. Returns the
    folders made, outermost first (a run that writes nothing removes them again)."""
    if path.is_dir():
        raise UsageError(
            f"`{parameter}` {path} is a folder; name a file inside it",
            parameter=parameter,
            value=path,
        )
    if path.exists() and not path.is_file():
        raise UsageError(
            f"`{parameter}` {path} is not a regular file (a device, a pipe or a socket): "
            "hfharvest replaces only regular files",
            parameter=parameter,
            value=path,
            hint="name a file; for records on stdout, leave `output` out (or give -)",
        )
    blocker = next((p for p in path.parents if p.exists()), None)
    if blocker is not None and not blocker.is_dir():
        raise UsageError(
            f"`{parameter}`: {blocker} is not a folder",
            parameter=parameter,
            value=path,
            hint="choose a path in a folder",
        )
    made = tuple(folder for folder in reversed(path.parents) if not folder.exists())
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path.parent):
            pass
    except OSError as exc:
        remove_empty(made)
        raise UsageError(
            f"`{parameter}`: cannot write to {path.parent}: {exc.strerror or exc}",
            parameter=parameter,
            value=path,
            hint="choose a folder you can write to",
        ) from exc
    return made


def remove_empty(folders: tuple[Path, ...]) -> None:
    """Remove the folders a run made, innermost first, where nothing was left in them."""
    for folder in reversed(folders):
        with contextlib.suppress(OSError):  # not empty (a file was written there), or gone
            folder.rmdir()


@contextlib.contextmanager
def atomic_file(
    path: Path, mode: int = 0o666, *, on_replaced: Callable[[], None] | None = None
) -> Iterator[IO[bytes]]:
    """A binary file whose bytes replace `path` at once when the block ends without error.

    The temporary file is created with `mode` (0o666: the kernel applies the umask, so the file
    gets the permissions any new file would, without reading and so changing the umask; a state
    file is created 0o600, its owner's only). `on_replaced` is told the moment the new file is in
    place, before the folder is synced: a run stopped then knows it wrote the file.
    """
    _remove_leftovers(path)
    temp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.part")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        hold(fd)  # while this process lives: no later run takes it for a leftover
        with open(fd, "wb") as raw:  # noqa: PTH123 (a file descriptor, not a path)
            yield raw
            raw.flush()
            os.fsync(raw.fileno())
        temp.replace(path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    if on_replaced is not None:
        on_replaced()
    _fsync_folder(path.parent)


# Bytes of an output written between two hand-overs to the disk (`WrittenBack`).
WRITTEN_BACK = 64 << 20
CAN_DROP = hasattr(os, "posix_fadvise")  # a file's pages can be told to leave the page cache


class WrittenBack:
    """A file whose bytes go to the disk every `WRITTEN_BACK` bytes, and leave the page cache.

    A snapshot of the whole Hub is gigabytes that this process writes once and never reads:
    held in the page cache until the final fsync, they push out what the machine's other
    programs cache, and in a VM whose memory is backed as it is first touched, a page cache
    grown by gigabytes costs system time at every run (5.2 us a model at 1,000,000 models and
    two sorts, 2.6 handed over; 2.0 at 79k). Where `posix_fadvise` is missing (macOS, Windows)
    the file is written as it is. The spool does the same (`merge.Spool`).
    """

    def __init__(self, file: IO[bytes]) -> None:
        self._file = file
        self._leaving = CacheLeaving(file, synced=False)

    def write(self, data: bytes) -> int:
        written = self._file.write(data)
        self._leaving.passed(len(data))
        return written

    def flush(self) -> None:
        self._file.flush()


class CacheLeaving:
    """Counts a file's bytes as they pass (written, or read for the last time) and, every
    `WRITTEN_BACK` of them, sends its pages out of the page cache (`written_back`); `synced`:
    its bytes are on the disk already."""

    def __init__(self, file: IO[bytes], *, synced: bool) -> None:
        self._file = file
        self._synced = synced
        self._passed = 0

    def passed(self, size: int) -> None:
        if not CAN_DROP:
            return
        self._passed += size
        if self._passed >= WRITTEN_BACK:
            if not self._synced:
                self._file.flush()
            written_back(self._file.fileno(), synced=self._synced)
            self._passed = 0


def written_back(fd: int, *, synced: bool = False) -> None:
    """A file's bytes to the disk (unless `synced` already), then out of the page cache: only
    clean pages can leave it. The advice is a hint: where it is refused, nothing is lost."""
    if not synced:
        os.fdatasync(fd)
    with contextlib.suppress(OSError):
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)


def _fsync_folder(folder: Path) -> None:
    """Make the rename itself durable; some file systems cannot open a folder, which is fine."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _remove_leftovers(path: Path) -> None:
    """Remove what an `atomic_file(path)` killed by SIGKILL (or the OOM killer) left behind: its
    temporary files that no live process holds (`locks.abandoned`); a live run's is left alone."""
    for leftover in path.parent.glob(f".{glob.escape(path.name)}.*.part"):
        with contextlib.suppress(OSError):
            if abandoned(leftover):
                leftover.unlink()
