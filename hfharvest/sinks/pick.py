"""The one place that picks a sink for an output target, and makes its file all or nothing.

A file is written to a temporary file beside the target (handed to the disk and out of the page
cache 64 MB at a time: `WrittenBack`), flushed and fsynced, then renamed into place with the
permissions the umask gives; a failure leaves an earlier file as it was. Gzip is
written with mtime 0 and no embedded name, so equal records give equal bytes.
"""

from __future__ import annotations

import contextlib
import gzip
from collections.abc import Callable, Iterator

from hfharvest.errors import OutputError
from hfharvest.outcome import Written
from hfharvest.sinks.base import Hashing, Sink, Stdout, Writable
from hfharvest.sinks.files import WrittenBack, atomic_file
from hfharvest.sinks.jsonl import JsonSink
from hfharvest.sinks.target import OutputTarget


@contextlib.contextmanager
def open_sink(
    target: OutputTarget,
    stdout: Writable,
    on_landed: Callable[[Written], None] | None = None,
) -> Iterator[Sink]:
    """Yield the sink for `target`; its file appears at its path only if the block succeeds.

    Once the block is over, `sink.written()` tells what was written; `on_landed` is told it the
    moment the file is in place.
    """
    if target.path is None:
        hashing = Hashing(Stdout(stdout))
        # Smaller chunks on stdout, so that a reader down the pipe sees records soon.
        sink: Sink = JsonSink(hashing, target.format, hashing, None, chunk=1 << 16)
        yield sink
        sink.finish()
        return
    path = target.path

    def replaced() -> None:
        if on_landed is not None:
            on_landed(sink.written())

    try:
        with atomic_file(path, on_replaced=replaced) as raw:
            hashing = Hashing(WrittenBack(raw))
            if target.format == "parquet":
                # pyarrow: loaded only for Parquet
                from hfharvest.sinks.parquet import ParquetSink

                sink = ParquetSink(
                    hashing, path, target.repo_type, raw=target.raw, about=target.provenance
                )
                yield sink
                sink.finish()
                return
            with _compressed(hashing) if target.gzip else contextlib.nullcontext(hashing) as stream:
                sink = JsonSink(stream, target.format, hashing, path)
                yield sink
                sink.finish()
    except OSError as exc:
        raise OutputError(
            f"cannot write {target.path}: {exc.strerror or exc}; an earlier file is untouched",
            hint="free some space or choose another `output`",
        ) from exc


def _compressed(target: Hashing) -> gzip.GzipFile:
    # filename="" and mtime=0: no name or time in the header, so equal data give equal bytes.
    return gzip.GzipFile(filename="", mode="wb", fileobj=target, mtime=0, compresslevel=6)
