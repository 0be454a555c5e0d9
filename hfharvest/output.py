"""Writers for the harvest's records: JSON or JSONL, to stdout or to a file all or nothing.

A file is written to a temporary file beside the target, flushed and fsynced, then renamed into
place with the permissions the umask gives; a failure leaves an earlier file as it was. Gzip is
written with mtime 0 and no embedded name, so equal records give equal bytes.
"""

from __future__ import annotations

import contextlib
import gzip
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import orjson

from hfharvest.errors import OutputError
from hfharvest.settings import OutputFormat, OutputTarget


class RecordWriter:
    """Serializes records one by one: one per line (JSONL) or as one JSON array."""

    def __init__(self, stream: IO[bytes], fmt: OutputFormat) -> None:
        self._stream = stream
        self._format = fmt
        self.count = 0

    def write(self, record: dict[str, Any]) -> None:
        data = orjson.dumps(record)
        if self._format == "jsonl":
            self._stream.write(data + b"\n")
        else:
            self._stream.write((b",\n" if self.count else b"[\n") + data)
        self.count += 1

    def finish(self) -> None:
        if self._format == "json":
            self._stream.write(b"\n]\n" if self.count else b"[]\n")
        self._stream.flush()


@contextlib.contextmanager
def open_output(target: OutputTarget, stdout: IO[bytes]) -> Iterator[RecordWriter]:
    """Yield a writer for `target`; the file appears at its path only if the block succeeds."""
    if target.path is None:
        writer = RecordWriter(stdout, target.format)
        yield writer
        writer.finish()
        return
    try:
        with atomic_file(target.path, compress=target.gzip) as stream:
            writer = RecordWriter(stream, target.format)
            yield writer
            writer.finish()
    except OSError as exc:
        raise OutputError(
            f"cannot write {target.path}: {exc.strerror or exc}; an earlier file is untouched",
            hint="free some space or choose another -o/--output",
        ) from exc


@contextlib.contextmanager
def atomic_file(path: Path, *, compress: bool = False) -> Iterator[IO[bytes]]:
    """A binary stream whose bytes replace `path` at once when the block ends without error."""
    fd, temp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    temp = Path(temp_name)
    try:
        with open(fd, "wb") as raw:  # noqa: PTH123 (a file descriptor, not a path)
            if compress:
                # filename="" and mtime=0: no name or time in the header, so equal data, equal bytes
                with gzip.GzipFile(
                    filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=6
                ) as zipped:
                    yield zipped  # type: ignore[misc]
            else:
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
