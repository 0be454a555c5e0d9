"""Parquet: snapshots written with a fixed Arrow schema, in row groups as records come, and read
back as the records they hold.

The schema is `loaders.arrow_schema(repo_type, parquet=True)`: timestamps as UTC timestamps,
lists typed, `providers` a list of structs, `found_by` a list of {sort, rank}, `raw` a JSON
string; zstd. Records are gathered `ROWS` at a time and written as one row group, so memory
stays bounded as with JSONL; reading back goes `BATCH` rows at a time. pyarrow is an optional
extra (`pip install 'hfharvest[parquet]'`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import orjson
import pyarrow as pa
import pyarrow.json as pj
import pyarrow.parquet as pq

from hfharvest.loaders import TIMESTAMPS, arrow_schema
from hfharvest.records import Final
from hfharvest.sinks.base import Counted, Hashing

# Records a row group holds: a row group is held twice (as JSON, then as Arrow), and a smaller
# one costs CPU (at 200k full models, with the system allocator as the CLI sets it: 2,000 gave
# 132.5 MB and 1.36 x the JSONL run's CPU in #28's bench; 500 to 5,000 move the peak by 4 MB).
ROWS = 2_000
BATCH = 2_000  # rows read back at a time (as Python objects: kept few)


class ParquetSink(Counted):
    """Writes records one by one into a Parquet file, a row group every `ROWS` records.

    A record comes as its JSON: the row group's records are gathered as JSON lines in the Parquet
    schema's terms (`found_by` a list of {sort, rank}, `raw` a JSON string) and parsed by Arrow's
    own JSON reader into the schema's types (timestamps included), with no Python object a field.
    """

    def __init__(
        self,
        hashing: Hashing,
        path: Path | None,
        repo_type: str,
        *,
        raw: bool,
        about: tuple[tuple[str, str], ...] = (),
    ) -> None:
        self.hashing = hashing
        self.path = path
        self.schema = arrow_schema(repo_type, parquet=True, raw=raw).with_metadata(dict(about))
        self._parse = pj.ParseOptions(
            explicit_schema=self.schema, unexpected_field_behavior="ignore"
        )
        # Without dictionary pages (ids, shas and file lists seldom repeat; what does, zstd
        # finds), and with statistics only where a reader filters on them (numbers, times,
        # flags; a min/max of tags or file lists helps no query): at 200k full models, 0.27 s to
        # write instead of 0.38, and 6 % fewer bytes.
        self._writer = pq.ParquetWriter(
            hashing,
            self.schema,
            compression="zstd",
            use_dictionary=False,
            write_statistics=[f.name for f in self.schema if _filtered_on(f.type)],
        )
        self._raw = raw
        self._lines = bytearray()
        self._pending = 0
        self.count = 0

    def write(self, record: Final, found_by: Mapping[str, int]) -> None:
        pairs = orjson.dumps([{"sort": sort, "rank": rank} for sort, rank in found_by.items()])
        self._lines += record.json()[:-1] + b',"found_by":' + pairs
        raw = record.raw_json() if self._raw else None
        if raw is not None:
            self._lines += b',"raw":' + orjson.dumps(raw.decode())
        self._lines += b"}\n"
        self._pending += 1
        self.count += 1
        if self._pending >= ROWS:
            self._write_rows()

    def flush(self) -> None:
        """A row group is written when full: nothing to send earlier."""

    def finish(self) -> None:
        self._write_rows()
        self._writer.close()

    def _write_rows(self) -> None:
        if not self._pending:
            return
        # One block for the whole row group: a record is never cut across blocks. Arrow reads
        # the gathered bytes where they are (a BytesIO copied them, then Arrow copied them again
        # through Python file calls: 131-133 MB peak at 200k models instead of 123-125).
        options = pj.ReadOptions(use_threads=False, block_size=len(self._lines) + 1)
        table = pj.read_json(
            pa.BufferReader(pa.py_buffer(self._lines)),
            read_options=options,
            parse_options=self._parse,
        )
        self._writer.write_table(table)
        self._lines.clear()
        self._pending = 0


def _filtered_on(kind: pa.DataType) -> bool:
    """Whether a reader filters on a column of this type (its statistics are worth writing)."""
    types = pa.types
    return bool(
        types.is_integer(kind)
        or types.is_floating(kind)
        or types.is_timestamp(kind)
        or types.is_boolean(kind)
    )


def parquet_records(source: Path | IO[bytes]) -> Iterator[dict[str, Any]]:
    """The records of a Parquet snapshot, as the JSON snapshot of the same run holds them."""
    parquet = pq.ParquetFile(source)
    for batch in parquet.iter_batches(batch_size=BATCH):
        for row in batch.to_pylist():
            yield _as_record(row)
    pa.default_memory_pool().release_unused()  # what Arrow held for reading, given back


def _as_record(row: dict[str, Any]) -> dict[str, Any]:
    for name in TIMESTAMPS:
        moment = row.get(name)
        if isinstance(moment, datetime):
            row[name] = moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    row["found_by"] = {pair["sort"]: pair["rank"] for pair in row.get("found_by") or []}
    if row.get("raw") is not None:
        row["raw"] = orjson.loads(row["raw"])
    return row


def is_parquet(head: bytes) -> bool:
    return head[:4] == b"PAR1"
