"""Parquet: snapshots written with a fixed Arrow schema, in row groups as records come, and read
back as the records they hold.

The schema is `loaders.arrow_schema(repo_type, parquet=True)`: timestamps as UTC timestamps,
lists typed, `providers` a list of structs, `found_by` a list of {sort, rank}, `raw` a JSON
string; zstd. Records are gathered `ROWS` at a time, as Python values, and written as one row
group, so memory stays bounded as with JSONL; reading back goes `BATCH` rows at a time.
pyarrow is an optional extra (`pip install 'hfharvest[parquet]'`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import orjson
import pyarrow as pa
import pyarrow.json as pj
import pyarrow.parquet as pq

from hfharvest.loaders import TIMESTAMPS, arrow_schema
from hfharvest.records import Final, Record
from hfharvest.sinks.base import Counted, Hashing

# Records a row group holds: a row group is held twice (as Python values, then as Arrow), and a
# smaller one costs CPU (at 200k full models, 500 to 5,000 moved the peak by 4 MB).
ROWS = 2_000
BATCH = 2_000  # rows read back at a time (as Python objects: kept few)


class ParquetSink(Counted):
    """Writes records one by one into a Parquet file, a row group every `ROWS` records.

    A row group's records are held in the form they come in and handed to Arrow at once: dicts
    (one sort) as a struct array, each field taken from each record, the times parsed by
    Python; JSON (from the spool, with several sorts) to Arrow's JSON reader. Either way nothing
    is encoded or decoded on the way (at 200k models, reading dicts' JSON again cost 0.4 s
    more than taking their values; decoding spooled JSON, 0.5 s more than reading it).
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
        fields = [f for f in self.schema if f.name not in ("found_by", "raw")]
        self._times = [f for f in fields if pa.types.is_timestamp(f.type)]
        self._plain = pa.struct([f for f in fields if not pa.types.is_timestamp(f.type)])
        self._parse = pj.ParseOptions(
            explicit_schema=pa.schema(fields), unexpected_field_behavior="ignore"
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
        self._rows: list[Record] = []  # records that came as dicts
        self._lines = bytearray()  # or those that came as JSON, a line each
        self._raws: list[bytes | None] = []
        self._sorts: list[str] = []
        self._ranks: list[int] = []
        self._ends = [0]  # where each record's {sort, rank} pairs end in `_sorts` and `_ranks`
        self._pending = 0
        self.count = 0

    def write(self, record: Final, found_by: Mapping[str, int]) -> None:
        if record.came_as_json():
            if self._rows:  # a row group holds one form, the records in their order
                self._write_rows()
            self._lines += record.json() + b"\n"
        else:
            if self._lines:
                self._write_rows()
            self._rows.append(record.value())
        self._sorts += found_by
        self._ranks += found_by.values()
        self._ends.append(len(self._sorts))
        if self._raw:
            self._raws.append(record.raw_json())
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
        columns = self._read_lines() if self._lines else self._take_values()
        arrays = [columns[name] for name in self.schema.names if name in columns]
        arrays.append(self._found_by())
        if self._raw:
            arrays.append(pa.array(self._raws, pa.string()))
        self._writer.write_table(pa.Table.from_arrays(arrays, schema=self.schema))
        for held in (self._rows, self._lines, self._raws, self._sorts, self._ranks):
            held.clear()
        del self._ends[1:]
        self._pending = 0

    def _take_values(self) -> dict[str, pa.Array]:
        """The records' fields as Arrow arrays, taken from the dicts."""
        rows = self._rows
        plain = pa.array(rows, self._plain)
        columns = dict(zip(self._plain.names, plain.flatten(), strict=True))
        for field in self._times:
            columns[field.name] = pa.array(
                _moments([row.get(field.name) for row in rows]), field.type
            )
        return columns

    def _read_lines(self) -> dict[str, pa.Array]:
        """The records' fields as Arrow arrays, read from their JSON lines: in one block (a
        record never cut across blocks), where the bytes are (a BytesIO copy cost 8 MB peak)."""
        options = pj.ReadOptions(use_threads=False, block_size=len(self._lines) + 1)
        table = pj.read_json(
            pa.BufferReader(pa.py_buffer(self._lines)),
            read_options=options,
            parse_options=self._parse,
        )
        return {name: table.column(name).combine_chunks() for name in table.column_names}

    def _found_by(self) -> pa.Array:
        """Each record's `found_by` as a list of {sort, rank}, from the pairs laid end to end."""
        pair = self.schema.field("found_by").type.value_type
        pairs = pa.StructArray.from_arrays(
            [pa.array(self._sorts, pa.string()), pa.array(self._ranks, pa.int64())],
            fields=list(pair),
        )
        return pa.ListArray.from_arrays(pa.array(self._ends, pa.int32()), pairs)


def _moments(values: Sequence[Any]) -> list[datetime | None]:
    """Times as datetimes: parsed by Python, as Arrow's own parsing would import its compute
    functions (10 MB more peak) for two columns."""
    try:
        return [datetime.fromisoformat(value) if value else None for value in values]
    except (TypeError, ValueError):  # one is no ISO time: a datetime, or no time at all
        return [_moment(value) for value in values]


def _moment(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    try:
        return datetime.fromisoformat(value)
    except (TypeError, ValueError):  # no time at all: null, as in a record
        return None


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
