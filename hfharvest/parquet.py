"""Parquet: snapshots written with a fixed Arrow schema, in row groups as records come, and read
back as the records they hold.

The schema is `loaders.arrow_schema(repo_type, parquet=True)`: timestamps as UTC timestamps,
lists typed, `providers` a list of structs, `found_by` a list of {sort, rank}, `raw` a JSON
string; zstd. Records are gathered `ROWS` at a time and written as one row group, so memory
stays bounded as with JSONL. pyarrow is an optional extra (`pip install 'hfharvest[parquet]'`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from hfharvest.loaders import TIMESTAMPS, arrow_schema
from hfharvest.output import Counted, Encoded, Hashing

ROWS = 20_000  # records a row group holds


class ParquetWriter(Counted):
    """Writes records one by one into a Parquet file, a row group every `ROWS` records."""

    def __init__(self, hashing: Hashing, repo_type: str, *, raw: bool) -> None:
        self.hashing = hashing
        self.schema = arrow_schema(repo_type, parquet=True, raw=raw)
        # As the records hold them: timestamps are ISO strings until a row group is cast.
        self._as_read = pa.schema(
            [f.with_type(pa.string()) if f.name in TIMESTAMPS else f for f in self.schema]
        )
        self._writer = pq.ParquetWriter(hashing, self.schema, compression="zstd")
        self._raw = raw
        self._rows: list[dict[str, Any]] = []
        self.count = 0

    def write(self, record: Encoded, found_by: Mapping[str, int]) -> None:
        row = orjson.loads(record.json)
        row["found_by"] = [{"sort": sort, "rank": rank} for sort, rank in found_by.items()]
        if self._raw:
            row["raw"] = record.raw.decode() if record.raw is not None else None
        self._rows.append(row)
        self.count += 1
        if len(self._rows) >= ROWS:
            self._write_rows()

    def flush(self) -> None:
        """A row group is written when full: nothing to send earlier."""

    def finish(self) -> None:
        self._write_rows()
        self._writer.close()

    def _write_rows(self) -> None:
        if not self._rows:
            return
        table = pa.Table.from_pylist(self._rows, schema=self._as_read)
        for name in TIMESTAMPS:
            index = table.schema.get_field_index(name)
            table = table.set_column(
                index, name, pc.cast(table[name], self.schema.field(name).type)
            )
        self._writer.write_table(table)
        self._rows.clear()


def parquet_records(source: Path | IO[bytes]) -> Iterator[dict[str, Any]]:
    """The records of a Parquet snapshot, as the JSON snapshot of the same run holds them."""
    parquet = pq.ParquetFile(source)
    for batch in parquet.iter_batches(batch_size=ROWS):
        for row in batch.to_pylist():
            yield _as_record(row)


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
