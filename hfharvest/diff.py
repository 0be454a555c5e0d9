"""`hfharvest diff`: what changed between two snapshots, streamed.

Snapshots are not sorted by id (they are in merge order), so OLD is indexed first: id -> byte
offset of its line, nothing else in memory. NEW is then read once; each record is looked up,
compared on the chosen fields, and written as it comes; what is left in the index was removed.
Memory grows with the number of ids only, whatever the size of the records.
"""

from __future__ import annotations

import contextlib
import gzip
import heapq
import shutil
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import orjson

from hfharvest.errors import SnapshotError, UsageError
from hfharvest.schema import record_fields

# Counters move every day; found_by moves with them; raw holds all of them.
DEFAULT_IGNORED = frozenset(
    {"found_by", "likes", "downloads", "downloads_all_time", "trending_score", "raw"}
)
MOVERS = 5


@dataclass
class DiffSummary:
    added: int = 0
    removed: int = 0
    changed: int = 0
    unchanged: int = 0
    # (|delta|, id, old, new) of the biggest moves in downloads and likes, among repos in both
    movers: dict[str, list[tuple[int, str, int, int]]] = field(
        default_factory=lambda: {"downloads": [], "likes": []}
    )

    @property
    def differ(self) -> bool:
        return bool(self.added or self.removed or self.changed)


def chosen_fields(spec: str | None) -> list[str] | None:
    """The fields to compare: None means every field (`all`)."""
    known = record_fields()
    if spec is None:
        return [name for name in known if name not in DEFAULT_IGNORED]
    if spec.strip() == "all":
        return None
    names = [name.strip() for name in spec.split(",") if name.strip()]
    unknown = [name for name in names if name not in known]
    if unknown or not names:
        raise UsageError(
            f"`fields`: unknown field {', '.join(unknown) or '(none given)'}; "
            f"fields are {', '.join(known)}, or 'all'"
        )
    return names


def diff_snapshots(old: Path, new: Path, out: IO[bytes], *, fields: str | None) -> DiffSummary:
    """Compare two snapshots (JSONL, JSON or Parquet, gzip or not; `-` is stdin, on one side)."""
    compared = chosen_fields(fields)
    if old == new == STDIN:
        raise UsageError("only one snapshot can come from stdin (`-`)")
    try:
        return _diff(old, new, out, compared)
    except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
        raise SnapshotError(f"a snapshot holds a line that is not a record: {exc!r}") from exc


def _diff(old: Path, new: Path, out: IO[bytes], compared: list[str] | None) -> DiffSummary:
    summary = DiffSummary()
    with contextlib.ExitStack() as stack:
        source = stack.enter_context(_seekable_lines(old))
        incoming = stack.enter_context(_open(new))  # a Parquet NEW converted before the index
        index = {
            _record(line, old, number)["id"]: offset
            for offset, number, line in _offsets(source, old)
        }
        for number, line in _lines(incoming, new):
            record = _upgraded(_record(line, new, number))
            offset = index.pop(record["id"], None)
            if offset is None:
                summary.added += 1
                out.write(orjson.dumps({"change": "added", "id": record["id"], "record": record}))
                out.write(b"\n")
                continue
            before = _record_at(source, offset)
            _track_movers(summary, before, record)
            changes = _changes(before, record, compared)
            if changes:
                summary.changed += 1
                line_out = {"change": "changed", "id": record["id"], "fields": changes}
                out.write(orjson.dumps(line_out) + b"\n")
            else:
                summary.unchanged += 1
        for repo_id, offset in index.items():
            before = _record_at(source, offset)
            summary.removed += 1
            out.write(orjson.dumps({"change": "removed", "id": repo_id, "record": before}) + b"\n")
    out.flush()
    return summary


def _changes(
    before: dict[str, Any], after: dict[str, Any], compared: list[str] | None
) -> dict[str, list[Any]]:
    names = compared if compared is not None else list(dict.fromkeys([*before, *after]))
    return {
        name: [before.get(name), after.get(name)]
        for name in names
        if before.get(name) != after.get(name)
    }


def _track_movers(summary: DiffSummary, before: dict[str, Any], after: dict[str, Any]) -> None:
    for counter, heap in summary.movers.items():
        old, new = before.get(counter), after.get(counter)
        if isinstance(old, int) and isinstance(new, int) and old != new:
            item = (abs(new - old), after["id"], old, new)
            if len(heap) < MOVERS:
                heapq.heappush(heap, item)
            else:
                heapq.heappushpop(heap, item)


def _record_at(source: IO[bytes], offset: int) -> dict[str, Any]:
    source.seek(offset)
    return _upgraded(orjson.loads(_strip(source.readline())))


def _upgraded(record: dict[str, Any]) -> dict[str, Any]:
    """A record of an older schema in today's terms: `gated` was `false` before it was "no"."""
    if record.get("gated") is False:
        record["gated"] = "no"
    return record


def _strip(line: bytes) -> bytes:
    """A record line as JSONL or as hfharvest writes a JSON array (`{...},`)."""
    return line.strip().rstrip(b",")


def _record_line(raw: bytes, path: Path, number: int) -> bytes | None:
    """The record on a line, None for the brackets of a JSON array; anything else is trouble."""
    line = _strip(raw)
    if line.startswith(b"{"):
        return line
    if line in (b"", b"[", b"]", b"[]"):
        return None
    raise SnapshotError(f"{path}, line {number}: not a snapshot hfharvest can read ({line[:40]!r})")


def _open(path: Path) -> IO[bytes]:
    """A snapshot's lines: a plain file as it is, a gzip through gzip, Parquet (and stdin) copied
    into a temporary file first."""
    try:
        handle = _stdin_copy() if path == STDIN else path.open("rb")
        head = handle.read(4)
        handle.seek(0)
        if head[:2] == b"\x1f\x8b":
            return gzip.GzipFile(fileobj=handle, mode="rb")  # type: ignore[return-value]
        if head == b"PAR1":
            with handle:
                return _parquet_as_lines(handle, path)
        return handle
    except OSError as exc:
        raise SnapshotError(f"cannot read {path}: {exc.strerror or exc}") from exc


def _stdin_copy() -> IO[bytes]:
    copy = tempfile.TemporaryFile(prefix="hfharvest-diff-")  # noqa: SIM115 (the caller closes it)
    shutil.copyfileobj(sys.stdin.buffer, copy, 1 << 20)
    copy.seek(0)
    return copy


def _parquet_as_lines(handle: IO[bytes], path: Path) -> IO[bytes]:
    """A Parquet snapshot as the JSONL of the same run: one record a line, in a temporary file."""
    try:
        from hfharvest.sinks.parquet import parquet_records
    except ImportError:
        raise SnapshotError(
            f"{path} is Parquet, which needs pyarrow: pip install 'hfharvest[parquet]'"
        ) from None
    lines = tempfile.TemporaryFile(prefix="hfharvest-diff-")  # noqa: SIM115 (the caller closes it)
    for record in parquet_records(handle):
        lines.write(orjson.dumps(record) + b"\n")
    lines.seek(0)
    return lines


def _record(line: bytes, path: Path, number: int) -> dict[str, Any]:
    """The record on line `number` of `path`; one that is none is trouble, said where."""
    try:
        record = orjson.loads(line)
        record["id"]
    except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
        raise SnapshotError(f"{path}, line {number}: not a record ({exc})") from exc
    return record  # type: ignore[no-any-return]


def _lines(handle: IO[bytes], path: Path) -> Iterator[tuple[int, bytes]]:
    """One JSON object per record, with its line number, read as a stream (JSONL, or JSON as
    hfharvest writes it)."""
    try:
        yield from ((number, line) for _, number, line in _offsets(handle, path))
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise SnapshotError(f"cannot read {path}: {exc}") from exc


STDIN = Path("-")


@contextlib.contextmanager
def _seekable_lines(path: Path) -> Iterator[IO[bytes]]:
    """OLD as a file that can be read at any offset: itself, or a plain copy of a gzip."""
    with _open(path) as handle:
        if not isinstance(handle, gzip.GzipFile):
            yield handle
            return
        with tempfile.TemporaryFile(prefix="hfharvest-diff-") as copy:
            try:
                shutil.copyfileobj(handle, copy, 1 << 20)
            except (OSError, EOFError) as exc:
                raise SnapshotError(f"cannot read {path}: {exc}") from exc
            yield copy


def _offsets(source: IO[bytes], path: Path) -> Iterator[tuple[int, int, bytes]]:
    source.seek(0)
    offset = 0
    for number, raw in enumerate(iter(source.readline, b""), 1):
        line = _record_line(raw, path, number)
        if line is not None:
            yield offset, number, line
        offset += len(raw)
