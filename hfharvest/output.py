"""Where the harvest's records go, the form they travel in, and the writers: JSON or JSONL.

A record travels from the page to the writer in one form, `Encoded`: its JSON (without
`found_by`) and, with `raw`, the API object's JSON. A spool line holds exactly that, with the
sort and rank that found it (`spool_line`, `read_spool_line`, beside the output's own line).
Every writer takes records through one interface, `RecordWriter.write(record, found_by)`.

A file is written to a temporary file beside the target, flushed and fsynced, then renamed into
place with the permissions the umask gives; a failure leaves an earlier file as it was. Gzip is
written with mtime 0 and no embedded name, so equal records give equal bytes. The sha256 of the
bytes that reach the disk (or stdout) is taken on the way, for the manifest.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple, Protocol, TypeVar

import orjson

from hfharvest.errors import OutputError
from hfharvest.files import atomic_file
from hfharvest.target import OutputFormat, OutputTarget

T = TypeVar("T")


class Encoded(NamedTuple):
    """A record as it travels: its JSON without `found_by`, and the API object's with `raw`."""

    json: bytes
    raw: bytes | None


def output_line(record: Encoded, found_by: Mapping[str, int]) -> bytes:
    """A record as the output holds it: `found_by` added, then `raw` if given.

    The keys are appended to the record's bytes, so a spooled record is never parsed again;
    the result is what serializing the record with those keys added would give.
    """
    tail = b'"found_by":' + orjson.dumps(found_by)
    if record.raw is not None:
        tail += b',"raw":' + record.raw
    separator = b"," if record.json != b"{}" else b""
    return record.json[:-1] + separator + tail + b"}\n"


def spool_line(sort_index: int, rank: int, repo_id: str, record: Encoded) -> bytes:
    """A line of the spool, tab-separated: sort index, rank, id (a JSON string), record and raw
    (empty without `raw`). JSON as orjson writes it holds no tab or newline outside its strings,
    and escapes them within."""
    raw = record.raw or b""
    return b"%d\t%d\t%s\t%s\t%s\n" % (sort_index, rank, orjson.dumps(repo_id), record.json, raw)


def read_spool_line(line: bytes) -> tuple[int, int, str, Encoded]:
    """(sort index, rank, id, record) of a spool line."""
    index, rank, repo_id, record, raw = line.rstrip(b"\n").split(b"\t")
    return int(index), int(rank), orjson.loads(repo_id), Encoded(record, raw or None)


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


class _Stdout:
    """stdout, whose failures are told as themselves: a closed pipe stays a `BrokenPipeError`
    (a quiet end), a full disk or an I/O error becomes an `OutputError` naming stdout."""

    def __init__(self, target: Writable) -> None:
        self._target = target

    def write(self, data: bytes) -> int:
        return self._told(lambda: self._target.write(data))

    def flush(self) -> None:
        self._told(self._target.flush)

    @staticmethod
    def _told(act: Callable[[], T]) -> T:
        try:
            return act()
        except BrokenPipeError:
            raise
        except OSError as exc:
            raise OutputError(
                f"cannot write to stdout: {exc.strerror or exc}",
                hint="free some space, or write to a file with `output`",
            ) from exc


class Hashing:
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

    def tell(self) -> int:  # what pyarrow asks of a file it writes
        return self.size

    @property
    def closed(self) -> bool:
        return False


class RecordWriter(Protocol):
    """What every writer does: take records one by one, then finish; then say what it wrote."""

    def write(self, record: Encoded, found_by: Mapping[str, int]) -> None: ...

    def flush(self) -> None: ...

    def finish(self) -> None: ...

    def written(self, path: Path | None) -> Written: ...


class Counted:
    """A writer's count of records and the hash of the bytes it sent, for `Written`."""

    count: int
    hashing: Hashing

    def written(self, path: Path | None) -> Written:
        """Call once the bytes are final (after the gzip trailer, if any)."""
        return Written(path, self.count, self.hashing.digest.hexdigest(), self.hashing.size)


class JsonWriter(Counted):
    """Writes records one by one: one per line (JSONL) or as one JSON array.

    Records are gathered into chunks of `chunk` bytes before they go down the stream: one
    write, one hash update and one compression call per chunk instead of per record.
    """

    def __init__(
        self, stream: Writable, fmt: OutputFormat, hashing: Hashing, *, chunk: int = 1 << 20
    ) -> None:
        self._stream = stream
        self._jsonl = fmt == "jsonl"
        self.hashing = hashing  # below any compression: it sees the bytes as stored
        self._chunk = chunk
        self._pending = bytearray()
        self.count = 0

    def write(self, record: Encoded, found_by: Mapping[str, int]) -> None:
        """Write one record, with the rank at which each sort found it."""
        line = output_line(record, found_by)
        if self._jsonl:
            self._pending += line
        else:
            self._pending += b",\n" if self.count else b"[\n"
            self._pending += line[:-1]
        self.count += 1
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


@contextlib.contextmanager
def open_output(
    target: OutputTarget,
    stdout: Writable,
    on_landed: Callable[[Written], None] | None = None,
) -> Iterator[RecordWriter]:
    """Yield a writer for `target`; the file appears at its path only if the block succeeds.

    Once the block is over, `writer.written(target.path)` tells what was written; `on_landed` is
    told it the moment the file is in place.
    """
    if target.path is None:
        hashing = Hashing(_Stdout(stdout))
        # Smaller chunks on stdout, so that a reader down the pipe sees records soon.
        writer: RecordWriter = JsonWriter(hashing, target.format, hashing, chunk=1 << 16)
        yield writer
        writer.finish()
        return
    path = target.path

    def replaced() -> None:
        if on_landed is not None:
            on_landed(writer.written(path))

    try:
        with atomic_file(path, on_replaced=replaced) as raw:
            hashing = Hashing(raw)
            if target.format == "parquet":
                from hfharvest.parquet import ParquetWriter  # pyarrow: loaded only for Parquet

                writer = ParquetWriter(hashing, target.repo_type, raw=target.raw)
                yield writer
                writer.finish()
                return
            with _compressed(hashing) if target.gzip else contextlib.nullcontext(hashing) as stream:
                writer = JsonWriter(stream, target.format, hashing)
                yield writer
                writer.finish()
    except OSError as exc:
        raise OutputError(
            f"cannot write {target.path}: {exc.strerror or exc}; an earlier file is untouched",
            hint="free some space or choose another `output`",
        ) from exc


def _compressed(target: Hashing) -> gzip.GzipFile:
    # filename="" and mtime=0: no name or time in the header, so equal data give equal bytes.
    return gzip.GzipFile(filename="", mode="wb", fileobj=target, mtime=0, compresslevel=6)
