"""Writers for the harvest's records: JSON or JSONL, to stdout or to a file all or nothing.

A file is written to a temporary file beside the target, flushed and fsynced, then renamed into
place with the permissions the umask gives; a failure leaves an earlier file as it was. Gzip is
written with mtime 0 and no embedded name, so equal records give equal bytes. The sha256 of the
bytes that reach the disk (or stdout) is taken on the way, for the manifest.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Protocol

from hfharvest.errors import OutputError
from hfharvest.settings import OutputFormat, OutputTarget


@dataclass(frozen=True)
class Written:
    """What a completed output holds: where, how many records, and the sha256 of its bytes."""

    path: Path | None
    records: int
    sha256: str
    bytes: int


class _Writable(Protocol):
    def write(self, data: bytes, /) -> int: ...

    def flush(self) -> None: ...


class _Hashing:
    """A write-only stream that hashes and counts what passes through to `target`."""

    def __init__(self, target: IO[bytes]) -> None:
        self._target = target
        self.digest = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.digest.update(data)
        self.size += len(data)
        return self._target.write(data)

    def flush(self) -> None:
        self._target.flush()


class RecordWriter:
    """Serializes records one by one: one per line (JSONL) or as one JSON array.

    Records are gathered into chunks of `chunk` bytes before they go down the stream: one
    write, one hash update and one compression call per chunk instead of per record.
    """

    def __init__(
        self, stream: _Writable, fmt: OutputFormat, hashing: _Hashing, *, chunk: int = 1 << 20
    ) -> None:
        self._stream = stream
        self._jsonl = fmt == "jsonl"
        self._hashing = hashing  # below any compression: it sees the bytes as stored
        self._chunk = chunk
        self._pending = bytearray()
        self.count = 0

    def write_lines(self, lines: bytes, count: int) -> None:
        """Write `count` records, serialized as JSONL lines (each ends in a newline)."""
        if not count:
            return
        if self._jsonl:
            self._pending += lines
        else:
            # orjson escapes newlines within strings: each newline ends a record.
            self._pending += b",\n" if self.count else b"[\n"
            self._pending += lines[:-1].replace(b"\n", b",\n")
        self.count += count
        if len(self._pending) >= self._chunk:
            self._send()

    def finish(self) -> None:
        if not self._jsonl:
            self._pending += b"\n]\n" if self.count else b"[]\n"
        self.flush()

    def flush(self) -> None:
        """Send what is gathered so far on its way (streaming: at the end of every page)."""
        self._send()
        self._stream.flush()

    def _send(self) -> None:
        self._stream.write(bytes(self._pending))
        self._pending.clear()

    def written(self, path: Path | None) -> Written:
        """Call once the bytes are final (after the gzip trailer, if any)."""
        hashing = self._hashing
        return Written(path, self.count, hashing.digest.hexdigest(), hashing.size)


@contextlib.contextmanager
def open_output(target: OutputTarget, stdout: IO[bytes]) -> Iterator[RecordWriter]:
    """Yield a writer for `target`; the file appears at its path only if the block succeeds.

    Once the block is over, `writer.written(target.path)` tells what was written.
    """
    if target.path is None:
        hashing = _Hashing(stdout)
        # Smaller chunks on stdout, so that a reader down the pipe sees records soon.
        writer = RecordWriter(hashing, target.format, hashing, chunk=1 << 16)
        yield writer
        writer.finish()
        return
    try:
        with atomic_file(target.path) as raw:
            hashing = _Hashing(raw)
            with _compressed(hashing) if target.gzip else contextlib.nullcontext(hashing) as stream:
                writer = RecordWriter(stream, target.format, hashing)
                yield writer
                writer.finish()
    except OSError as exc:
        raise OutputError(
            f"cannot write {target.path}: {exc.strerror or exc}; an earlier file is untouched",
            hint="free some space or choose another -o/--output",
        ) from exc


def _compressed(target: _Hashing) -> gzip.GzipFile:
    # filename="" and mtime=0: no name or time in the header, so equal data give equal bytes.
    return gzip.GzipFile(filename="", mode="wb", fileobj=target, mtime=0, compresslevel=6)


@contextlib.contextmanager
def atomic_file(path: Path) -> Iterator[IO[bytes]]:
    """A binary file whose bytes replace `path` at once when the block ends without error."""
    fd, temp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    temp = Path(temp_name)
    try:
        with open(fd, "wb") as raw:  # noqa: PTH123 (a file descriptor, not a path)
            yield raw
            raw.flush()
            os.fsync(raw.fileno())
        temp.chmod(0o666 & ~_umask())
        temp.replace(path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    _fsync_folder(path.parent)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


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
