"""Snapshots on disk, read back: their records, and the newest one a request made.

A snapshot is the data file hfharvest wrote (JSON, JSONL, either gzipped, or Parquet) and its
manifest. `records_of` reads the records back as the JSON snapshot of the same run holds them
(`found_by` a dict, whatever the format), streamed; `hfharvest diff` and the `Mirror` read through
it. `newest_made_by` finds the newest complete snapshot the same request made, for `fresh_for`
and the `Mirror`: through a `{date}` template it reads every manifest the template can name.
"""

from __future__ import annotations

import glob
import gzip
import io
import shutil
import string
import sys
import tempfile
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import orjson

from hfharvest.errors import SnapshotError
from hfharvest.loaders import INSTALL
from hfharvest.manifest import Snapshot, made_by
from hfharvest.settings import Settings
from hfharvest.sinks.target import MANIFEST_SUFFIX, OLD_MANIFEST_SUFFIX, beside

STDIN = Path("-")


def newest_made_by(settings: Settings) -> Snapshot | None:
    """The newest complete snapshot whose manifest says this request made it, with its data file
    in place at the size the manifest gives; None when there is none."""
    found = [each for each in map(_snapshot, _manifests(settings)) if each is not None]
    found = [each for each in found if made_by(each.document, settings)]
    return max(found, key=lambda each: each.ended, default=None)


def fresh(settings: Settings, now: datetime) -> Snapshot | None:
    """The snapshot that makes this run needless: made by the same request less than
    `fresh_for` ago. None when `fresh_for` is not set, or no such snapshot is on disk."""
    if settings.fresh_for is None:
        return None
    newest = newest_made_by(settings)
    return newest if newest is not None and newest.age(now) < settings.fresh_for else None


def _manifests(settings: Settings) -> list[Path]:
    """The manifests this run's could be: its own, or every one its output template names."""
    output = settings.output
    if output.path is None or settings.manifest is None:
        return []
    if settings.manifest != beside(output.path, MANIFEST_SUFFIX):
        return [settings.manifest]  # a manifest path of its own: one place to look
    data = _glob_of(output.template, output.repo_type)
    # glob.glob: Path.glob takes no absolute pattern, and a template's folders may be dated too
    return [
        Path(each)
        for suffix in (MANIFEST_SUFFIX, OLD_MANIFEST_SUFFIX)
        for each in glob.glob(str(Path(data + suffix).expanduser()))  # noqa: PTH207
    ]


def _glob_of(template: str, repo_type: str) -> str:
    """An output template as a glob: `{date}` and `{time}` match anything, `{type}` is known."""
    parts = []
    for literal, name, _, _ in string.Formatter().parse(template):
        parts.append(glob.escape(literal))
        if name is not None:
            parts.append(repo_type if name == "type" else "*")
    return "".join(parts)


def _snapshot(manifest: Path) -> Snapshot | None:
    """The complete snapshot `manifest` describes, if it reads as one and its file is there."""
    try:
        document = orjson.loads(manifest.read_bytes())
        output = document["output"]
        data = Path(output["path"])
        if document["status"] != "complete" or data.stat().st_size != output["bytes"]:
            return None
        ended = datetime.fromisoformat(document["ended"])
    except (OSError, orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return None  # not one of ours, half a file, or its data gone: not a snapshot to serve
    return Snapshot(data, manifest, document, ended)


def records_of(path: Path, data: bytes | None = None) -> Iterator[dict[str, Any]]:
    """The records of a snapshot (`data`: its bytes, already read), streamed."""
    with open_snapshot(path, data) as handle:
        for number, line in lines_of(handle, path):
            yield upgraded(record_of(line, path, number))


def open_snapshot(path: Path, data: bytes | None = None) -> IO[bytes]:
    """A snapshot's lines: a plain file as it is, a gzip through gzip, Parquet (and stdin) copied
    into a temporary file first. `data`: the file's bytes, already read."""
    try:
        if data is not None:
            handle: IO[bytes] = io.BytesIO(data)
        else:
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
        raise SnapshotError(f"{path} is Parquet, which needs pyarrow: {INSTALL}") from None
    lines = tempfile.TemporaryFile(prefix="hfharvest-diff-")  # noqa: SIM115 (the caller closes it)
    for record in parquet_records(handle):
        lines.write(orjson.dumps(record) + b"\n")
    lines.seek(0)
    return lines


def upgraded(record: dict[str, Any]) -> dict[str, Any]:
    """A record of an older schema in today's terms: `gated` was `false` before it was "no"."""
    if record.get("gated") is False:
        record["gated"] = "no"
    return record


def strip(line: bytes) -> bytes:
    """A record line as JSONL or as hfharvest writes a JSON array (`{...},`)."""
    return line.strip().rstrip(b",")


def _record_line(raw: bytes, path: Path, number: int) -> bytes | None:
    """The record on a line, None for the brackets of a JSON array; anything else is trouble."""
    line = strip(raw)
    if line.startswith(b"{"):
        return line
    if line in (b"", b"[", b"]", b"[]"):
        return None
    raise SnapshotError(f"{path}, line {number}: not a snapshot hfharvest can read ({line[:40]!r})")


def record_of(line: bytes, path: Path, number: int) -> dict[str, Any]:
    """The record on line `number` of `path`; one that is none is trouble, said where."""
    try:
        record = orjson.loads(line)
        record["id"]
    except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
        raise SnapshotError(f"{path}, line {number}: not a record ({exc})") from exc
    return record  # type: ignore[no-any-return]


def lines_of(handle: IO[bytes], path: Path) -> Iterator[tuple[int, bytes]]:
    """One JSON object per record, with its line number, read as a stream (JSONL, or JSON as
    hfharvest writes it)."""
    try:
        yield from ((number, line) for _, number, line in offsets(handle, path))
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise SnapshotError(f"cannot read {path}: {exc}") from exc


def offsets(source: IO[bytes], path: Path) -> Iterator[tuple[int, int, bytes]]:
    """(byte offset, line number, record line) of each record, from the start of `source`."""
    source.seek(0)
    offset = 0
    for number, raw in enumerate(iter(source.readline, b""), 1):
        line = _record_line(raw, path, number)
        if line is not None:
            yield offset, number, line
        offset += len(raw)
