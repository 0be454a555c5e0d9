"""The JSON and JSON Lines sink: one record a line, or one JSON array.

A record's line is its JSON (encoded once, or as the spool kept it) with `found_by` and, with
`raw`, the API object appended: the result is what serializing the record with those keys added
would give, and a spooled record is never parsed again.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import orjson

from hfharvest.records import Final
from hfharvest.sinks.base import Counted, Hashing, Writable
from hfharvest.sinks.target import OutputFormat


def output_line(record: Final, found_by: Mapping[str, int]) -> bytes:
    """A record as the output holds it: `found_by` added, then `raw` if given."""
    tail = b'"found_by":' + orjson.dumps(found_by)
    raw = record.raw_json()
    if raw is not None:
        tail += b',"raw":' + raw
    body = record.json()
    separator = b"," if body != b"{}" else b""
    return body[:-1] + separator + tail + b"}\n"


class JsonSink(Counted):
    """Writes records one by one: one per line (JSONL) or as one JSON array.

    Records are gathered into chunks of `chunk` bytes before they go down the stream: one
    write, one hash update and one compression call per chunk instead of per record.
    """

    def __init__(
        self,
        stream: Writable,
        fmt: OutputFormat,
        hashing: Hashing,
        path: Path | None,
        *,
        chunk: int = 1 << 20,
    ) -> None:
        self._stream = stream
        self._jsonl = fmt == "jsonl"
        self.hashing = hashing  # below any compression: it sees the bytes as stored
        self.path = path
        self._chunk = chunk
        self._pending = bytearray()
        self.count = 0

    def write(self, record: Final, found_by: Mapping[str, int]) -> None:
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
