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
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import orjson

from hfharvest.errors import SnapshotError, UsageError
from hfharvest.schema import record_fields
from hfharvest.snapshots import STDIN, lines_of, offsets, open_snapshot, record_of, strip, upgraded

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
        # a Parquet NEW is converted before the index
        incoming = stack.enter_context(open_snapshot(new))
        index = {
            record_of(line, old, number)["id"]: offset
            for offset, number, line in offsets(source, old)
        }
        for number, line in lines_of(incoming, new):
            record = upgraded(record_of(line, new, number))
            offset = index.pop(record["id"], None)
            if offset is None:
                summary.added += 1
                out.write(orjson.dumps({"change": "added", "id": record["id"], "record": record}))
                out.write(b"\n")
                continue
            before = _record_at(source, offset)
            _track_movers(summary, before, record)
            changes = changed_fields(before, record, compared)
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


def changed_fields(
    before: dict[str, Any], after: dict[str, Any], compared: list[str] | None
) -> dict[str, list[Any]]:
    """Each compared field (None: every field) that differs, with its [old, new] values."""
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
    return upgraded(orjson.loads(strip(source.readline())))


@contextlib.contextmanager
def _seekable_lines(path: Path) -> Iterator[IO[bytes]]:
    """OLD as a file that can be read at any offset: itself, or a plain copy of a gzip."""
    with open_snapshot(path) as handle:
        if not isinstance(handle, gzip.GzipFile):
            yield handle
            return
        with tempfile.TemporaryFile(prefix="hfharvest-diff-") as copy:
            try:
                shutil.copyfileobj(handle, copy, 1 << 20)
            except (OSError, EOFError) as exc:
                raise SnapshotError(f"cannot read {path}: {exc}") from exc
            yield copy
