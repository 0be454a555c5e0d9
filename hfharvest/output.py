"""Where the harvest's records go, and the writers: JSON or JSONL, to stdout or a file.

`resolve_target` turns `-o` into an `OutputTarget` before any request: `{date}`, `{time}` and
`{type}` filled in, missing folders made, the folder checked writable.

A file is written to a temporary file beside the target, flushed and fsynced, then renamed into
place with the permissions the umask gives; a failure leaves an earlier file as it was. Gzip is
written with mtime 0 and no embedded name, so equal records give equal bytes. The sha256 of the
bytes that reach the disk (or stdout) is taken on the way, for the manifest.
"""

from __future__ import annotations

import contextlib
import glob
import gzip
import hashlib
import os
import secrets
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Literal, Protocol

import orjson

from hfharvest.errors import OutputError, UsageError

OutputFormat = Literal["json", "jsonl"]


@dataclass(frozen=True)
class OutputTarget:
    """Where records go: a file path (None for stdout), its format, and whether to gzip it.

    `template` is -o as given, before `{date}` and friends: what names the job.
    """

    path: Path | None
    format: OutputFormat
    gzip: bool
    template: str = "-"


def resolve_target(
    template: str, fmt: str | None, moment: datetime, repo_type: str
) -> OutputTarget:
    """The output of a run started at `moment`: its path filled in, its folder made, writable."""
    if fmt is not None and fmt not in ("json", "jsonl"):
        raise UsageError(f"--format must be json or jsonl, not {fmt!r}")
    if template == "-":
        return OutputTarget(None, "json" if fmt == "json" else "jsonl", False, template)
    path = Path(_fill_in(template, moment, repo_type)).expanduser()
    gzip = path.suffix == ".gz"
    inner_suffix = Path(path.stem).suffix if gzip else path.suffix
    if fmt is None:
        fmt = "json" if inner_suffix == ".json" else "jsonl"
    _check_writable(path)
    return OutputTarget(path, "json" if fmt == "json" else "jsonl", gzip, template)


def _fill_in(template: str, moment: datetime, repo_type: str) -> str:
    """Fill `{date}` (UTC YYYY-MM-DD), `{time}` (HHMMSSZ) and `{type}` in an output path."""
    if "{" not in template:
        return template
    values = {
        "date": moment.strftime("%Y-%m-%d"),
        "time": moment.strftime("%H%M%SZ"),
        "type": repo_type,
    }
    try:
        return template.format_map(values)
    except (KeyError, ValueError, IndexError) as exc:
        fields = "{date}, {time} and {type}"
        raise UsageError(f"-o/--output {template!r}: only {fields} are filled in ({exc})") from None


def _check_writable(path: Path) -> None:
    """Fail before any request when the output could not be written at the end."""
    if path.is_dir():
        raise UsageError(f"-o/--output {path} is a folder; name a file inside it")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path.parent):
            pass
    except OSError as exc:
        raise UsageError(
            f"-o/--output: cannot write to {path.parent}: {exc.strerror or exc}",
            hint="choose a folder you can write to",
        ) from exc


def output_line(record: bytes, found_by: dict[str, int], raw: bytes | None) -> bytes:
    """A record as the output holds it, from its JSON: `found_by` added, then `raw` if given.

    The keys are appended to the object's bytes, so a spooled record is never parsed again;
    the result is what serializing the record with those keys added would give.
    """
    tail = b'"found_by":' + orjson.dumps(found_by)
    if raw is not None:
        tail += b',"raw":' + raw
    separator = b"," if record != b"{}" else b""
    return record[:-1] + separator + tail + b"}\n"


@dataclass(frozen=True)
class Written:
    """What a completed output holds: where, how many records, and the sha256 of its bytes."""

    path: Path | None
    records: int
    sha256: str
    bytes: int


class Writable(Protocol):
    """Where stdout's records go: `sys.stdout.buffer`, or any stream that takes bytes."""

    def write(self, data: bytes, /) -> int: ...

    def flush(self) -> None: ...


class _Hashing:
    """A write-only stream that hashes and counts what passes through to `target`."""

    def __init__(self, target: Writable) -> None:
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
        self, stream: Writable, fmt: OutputFormat, hashing: _Hashing, *, chunk: int = 1 << 20
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
def open_output(target: OutputTarget, stdout: Writable) -> Iterator[RecordWriter]:
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


def remove_leftovers(path: Path) -> None:
    """Remove what an `atomic_file(path)` killed by SIGKILL left behind: its temporary files.

    Only for a path one process owns at a time (a `--state`): for another, a temporary file may be
    a live run's.
    """
    for leftover in path.parent.glob(f".{glob.escape(path.name)}.*.part"):
        leftover.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_file(path: Path) -> Iterator[IO[bytes]]:
    """A binary file whose bytes replace `path` at once when the block ends without error.

    The temporary file is created with mode 0o666, so the kernel applies the umask: the file
    gets the permissions any new file would, without reading (and so changing) the umask.
    """
    temp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.part")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with open(fd, "wb") as raw:  # noqa: PTH123 (a file descriptor, not a path)
            yield raw
            raw.flush()
            os.fsync(raw.fileno())
        temp.replace(path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    _fsync_folder(path.parent)


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
