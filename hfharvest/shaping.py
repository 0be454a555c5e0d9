"""From a page's body to the lines the walk writes: parse, normalize, serialize. Pure.

A walk's pages go through one `Shaper`, in page order, wherever that runs (the walk's own thread
or the page worker process, see `pageworker`): it numbers the entries (a record's rank in its sort
counts every entry the sort returned, skipped ones too), stops at `--limit`, and serializes each
record once, as the line that will be written: the output's JSONL line (streaming) or the spool
line (several sorts, or `--state`). What comes out is a `Shaped` page, which travels between
processes as bytes (`encode`/`decode`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from hfharvest.normalize import normalize


class BodyError(Exception):
    """A 200 whose body is not the page of entries it should be."""


class NotJSON(BodyError):
    """Not JSON at all (an HTML page, an empty or cut body): worth fetching again."""


class NotAnArray(BodyError):
    """JSON, but neither the array of entries nor an error: worth fetching again."""


class ErrorBody(BodyError):
    """A JSON object carrying the Hub's error: not worth fetching again."""


def parse_entries(body: bytes) -> list[Any]:
    """The entries of a listing page's body; a `BodyError` when it holds none."""
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise NotJSON(str(exc)) from None
    if isinstance(parsed, list):
        return parsed
    if isinstance(parsed, dict) and "error" in parsed:
        raise ErrorBody(error_text(parsed) or "an error with no text")
    raise NotAnArray(f"a JSON {type(parsed).__name__}, not an array")


def check_array(body: bytes) -> None:
    """Raise as `parse_entries` would, unless the body has the shape of a JSON array.

    Cheap (the whole parse is left to whoever shapes the page), and it catches what a bad 200
    really is: an HTML page, an empty or cut body, the Hub's error object.
    """
    stripped = body.strip()  # the same object when there is nothing to strip: no copy
    if stripped[:1] == b"[" and stripped[-1:] == b"]":
        return
    parse_entries(body)  # not an array: raises the error that says what it is


def error_text(body: dict[str, Any]) -> str | None:
    """The Hub's words in a JSON error body: `error` (a string or a list) or `errors[].message`."""
    error = body.get("error")
    if isinstance(error, str):
        return error
    if isinstance(error, list):
        return "; ".join(str(item) for item in error)
    errors = body.get("errors")
    if isinstance(errors, list):
        messages = [e.get("message") for e in errors if isinstance(e, dict)]
        return "; ".join(str(m) for m in messages if m) or None
    return None


@dataclass(frozen=True)
class WalkShape:
    """What a walk's lines look like: the same for every page of that walk."""

    repo_type: str
    sort: str
    sort_index: int
    streaming: bool  # the output's lines (with found_by); else the spool's
    with_raw: bool


@dataclass(frozen=True)
class Shaped:
    """One page, shaped: of its `entries`, `returned` taken (fewer at --limit), and per record
    its id, rank and line.

    `lines` holds one line per id, in the same order, each ending in a newline (orjson escapes
    every newline inside a string, so a newline only ever ends a line).
    """

    entries: int
    returned: int
    ids: list[str]
    ranks: list[int]
    lines: bytes

    @property
    def skipped(self) -> int:
        return self.returned - len(self.ids)

    def encode(self) -> bytes:
        head = orjson.dumps([self.entries, self.returned, self.ids, self.ranks])
        return head + b"\n" + self.lines

    @classmethod
    def decode(cls, data: bytes) -> Shaped:
        head, _, lines = data.partition(b"\n")
        entries, returned, ids, ranks = orjson.loads(head)
        return cls(entries, returned, ids, ranks, lines)

    def kept(self, keep: list[bool]) -> bytes:
        """The lines of the records `keep` marks (one flag per id)."""
        if all(keep):
            return self.lines  # the common case: no duplicate on the page
        lines = self.lines.split(b"\n")
        return b"".join(line + b"\n" for line, flag in zip(lines, keep, strict=False) if flag)


class Shaper:
    """Shapes one walk's pages in order; counts the entries to rank them and to stop at --limit."""

    def __init__(self, shape: WalkShape, *, returned: int, limit: int | None) -> None:
        self.shape = shape
        self.returned = returned  # entries of earlier pages (of earlier runs too, when resumed)
        self.limit = limit

    def take(self, page: list[Any]) -> Shaped:
        entries = page
        if self.limit is not None:
            entries = page[: max(self.limit - self.returned, 0)]
        shape = self.shape
        ids: list[str] = []
        ranks: list[int] = []
        lines = bytearray()
        rank = self.returned
        for raw in entries:
            rank += 1
            record = normalize(raw, shape.repo_type)
            if record is None:
                continue
            ids.append(record["id"])
            ranks.append(rank)
            lines += self._line(record, rank, raw)
        self.returned = rank
        return Shaped(len(page), len(entries), ids, ranks, bytes(lines))

    def _line(self, record: dict[str, Any], rank: int, raw: Any) -> bytes:
        shape = self.shape
        record_json = orjson.dumps(record)
        raw_json = orjson.dumps(raw) if shape.with_raw else None
        if shape.streaming:
            return output_line(record_json, {shape.sort: rank}, raw_json)
        return spool_line(shape.sort_index, rank, record["id"], record_json, raw_json)


def spool_line(sort_index: int, rank: int, repo_id: str, record: bytes, raw: bytes | None) -> bytes:
    """A line of the spool (which `state.Spool` keeps and reads back), tab-separated: sort index,
    rank, id (a JSON string), record and raw (JSON; empty without --raw). JSON as orjson writes
    it holds no tab or newline outside its strings, and escapes them within."""
    return b"%d\t%d\t%s\t%s\t%s\n" % (sort_index, rank, orjson.dumps(repo_id), record, raw or b"")


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
