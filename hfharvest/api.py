"""hfharvest from Python: `harvest()` for a list of records, `stream()` for big walks.

Both run the very path `hfharvest fetch` runs (`run_fetch`), with its defaults and its checks,
and hand over the records the CLI would write, in the same order, as dicts. Keyword names follow
`huggingface_hub.list_models` where the concept is the same (`sort`, `search`, `author`,
`filter`, `pipeline_tag`, `inference_provider`, `expand`, `full`, `limit`, `token`, `endpoint`)
and are the CLI options' names in snake_case elsewhere. Nothing is printed: progress goes to an
optional callback, warnings to the `hfharvest` logger. No signal handler, garbage-collector
setting or environment change is made; each call has its own sessions, threads and rate-limit
budget, so calls from several threads at once do not meet.
"""

from __future__ import annotations

import inspect
import io
import os
import queue
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, fields
from datetime import date, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, get_type_hints

import orjson

from hfharvest.ahead import Cancel, Cancelled
from hfharvest.errors import OptionTypeError
from hfharvest.loaders import require_pyarrow
from hfharvest.options import FetchOptions, default_of, doc_of
from hfharvest.outcome import Outcome, SortStats
from hfharvest.output import Encoded, Written, open_output
from hfharvest.run import run_fetch
from hfharvest.settings import Settings, resolve
from hfharvest.target import OutputTarget

Record = dict[str, Any]
Progress = Callable[[str, int, int], None]  # (sort, entries returned so far, pages so far)

# Output chunks (a page's records, or 64 KB of a merge) that may wait for the caller: past them the
# walk waits, so memory stays bounded however slowly the caller reads.
_CHUNKS_AHEAD = 16


@dataclass(frozen=True)
class HarvestResult(Outcome):
    """What `harvest()` returns: the records; per sort what its walk contributed (`stats`); the
    sorts that `failed` (only with `allow_partial=True`: otherwise the call raises)."""

    records: list[Record] = field(default_factory=list)


# The options a Python caller gives: the table's, less those of a process writing files.
_PARAMETERS = [each for each in fields(FetchOptions) if not doc_of(each).cli_only]


def _options(given: dict[str, Any]) -> FetchOptions:
    """The table's values from Python's, each checked against its type: a name or a list of
    names, a path as a string or a `Path`, a time as a string, a `date` or a `datetime`."""
    hints = get_type_hints(FetchOptions)
    return FetchOptions(**{name: _typed(name, value, hints[name]) for name, value in given.items()})


# What each option's type accepts from Python, and the words for it; `bool` is no number here.
_ACCEPTS: dict[Any, tuple[Callable[[Any], bool], str]] = {
    int: (lambda v: type(v) is int, "an int"),
    float: (lambda v: type(v) in (int, float), "a number"),
    str: (lambda v: isinstance(v, str), "a string"),
    bool: (lambda v: isinstance(v, bool), "True or False"),
    Path: (lambda v: isinstance(v, str | os.PathLike), "a path"),
    tuple[str, ...]: (
        lambda v: (
            isinstance(v, str)
            or (isinstance(v, list | tuple) and all(isinstance(i, str) for i in v))
        ),
        "a string or a list of strings",
    ),
}


def _typed(name: str, value: Any, kind: Any) -> Any:
    if name == "since" and isinstance(value, date):  # a datetime is a date too
        return value.isoformat()
    if name == "max_time" and isinstance(value, str | int | float) and type(value) is not bool:
        return value  # seconds, or a duration as the command line writes it ("2h")
    if name == "token":
        if value is None or isinstance(value, str | bool):
            return value
        raise OptionTypeError(
            f"`token` must be a string, True or False, got {type(value).__name__}",
            parameter="token",
            value=type(value).__name__,
        )
    optional = value is None and type(None) in getattr(kind, "__args__", ())
    base = (
        kind
        if kind in _ACCEPTS
        else next((k for k in _ACCEPTS if k in getattr(kind, "__args__", ())), None)
    )
    if optional or base is None:
        return value
    accepts, words = _ACCEPTS[base]
    if not accepts(value):
        raise OptionTypeError(
            f"`{name}` must be {words}, got {type(value).__name__}", parameter=name, value=value
        )
    if base == tuple[str, ...]:
        return (value,) if isinstance(value, str) else tuple(value)
    return Path(value) if base is Path else value


def stream(*, progress: Progress | None = None, **options: Any) -> RecordStream:
    """The same harvest as `harvest()`, its records handed over as they become final.

    With one sort they come as their page arrives; with several, once every walk has ended, from
    the spool on disk. Memory stays bounded either way. Use it as a context manager, so that
    leaving early stops the walks: `with hfharvest.stream(...) as records: for r in records: ...`
    """
    unknown = sorted(set(options) - {each.name for each in _PARAMETERS})
    if unknown:
        raise TypeError(f"stream() got an unexpected keyword argument {unknown[0]!r}")
    return RecordStream(resolve(_options(options), os.environ), progress)


def harvest(**options: Any) -> HarvestResult:
    """Walk the Hub listing once per sort and return every unique record, merged.

    Raises `hfharvest.HarvestError` (a `UsageError`, before any request, for a bad option), each
    with the `exit_code` the CLI would exit with. With several sorts the records wait in a spool
    on disk until every walk has ended, then all are read into the list: for the whole Hub,
    prefer `stream()`, which takes the same options.
    """
    with stream(**options) as records:
        found = list(records)
    assert records.outcome is not None  # the walks ended: their counts are known
    outcome = records.outcome
    return HarvestResult(outcome.stats, outcome.unique, outcome.written, records=found)


# What Python callers may pass, where it is more than the table's type.
_AS_TAKEN: dict[Any, Any] = {
    tuple[str, ...]: str | Sequence[str],
    Path | None: str | Path | None,
    "since": str | date | datetime | None,
}


def _document(function: Callable[..., Any], returns: Any) -> None:
    """Give `function` the options table as its signature, and each option in its `help()`."""
    hints = get_type_hints(FetchOptions)
    parameters = [
        inspect.Parameter(
            each.name,
            inspect.Parameter.KEYWORD_ONLY,
            default=default_of(each),
            annotation=_AS_TAKEN.get(each.name, _AS_TAKEN.get(hints[each.name], hints[each.name])),
        )
        for each in _PARAMETERS
    ]
    progress = inspect.Parameter(
        "progress", inspect.Parameter.KEYWORD_ONLY, default=None, annotation=Progress | None
    )
    function.__signature__ = inspect.Signature(  # type: ignore[attr-defined]  # what help() shows
        [*parameters, progress], return_annotation=returns
    )
    described = "\n".join(f"    {each.name}: {doc_of(each).help}" for each in _PARAMETERS)
    function.__doc__ = (
        f"{function.__doc__}\n\n    Options (as `hfharvest fetch`'s, by their Python names):\n"
        f"{described}\n    progress: called after every page with (sort, returned, pages)."
    )


def write_parquet(
    records: Iterable[Record], path: str | Path, *, repo_type: str = "model", raw: bool = False
) -> Written:
    """Write records as `harvest()` returns them into the Parquet file `hfharvest fetch -o
    PATH.parquet` would write (all or nothing; needs pyarrow). `raw=True` keeps each record's
    `raw`. Returns what was written: path, records, sha256, bytes."""
    require_pyarrow()
    target = OutputTarget(Path(path), "parquet", False, str(path), repo_type, raw)
    with open_output(target, io.BytesIO()) as writer:
        for record in records:
            fields = {k: v for k, v in record.items() if k not in ("found_by", "raw")}
            original = orjson.dumps(record["raw"]) if raw else None
            writer.write(Encoded(orjson.dumps(fields), original), record["found_by"])
    return writer.written(target.path)


_document(stream, "RecordStream")
_document(harvest, HarvestResult)


class _Closed(Exception):
    """The caller left the stream: the walks stop."""


class _Chunks:
    """A write-only stream whose chunks of JSONL wait in a bounded queue for the caller."""

    def __init__(self) -> None:
        self.queue: queue.Queue[bytes | BaseException | None] = queue.Queue(_CHUNKS_AHEAD)
        self.closed = threading.Event()

    def write(self, data: bytes) -> int:
        if self.closed.is_set():
            raise _Closed
        if data:
            self.queue.put(data)
        return len(data)

    def flush(self) -> None:
        pass


class _Progress:  # an Observer calling the caller's function
    def __init__(self, callback: Progress | None) -> None:
        self._callback = callback

    def page_done(self, sort: str, returned: int, pages: int) -> None:
        if self._callback is not None:
            self._callback(sort, returned, pages)


class RecordStream:
    """The records of one harvest, as they become final; then `stats`, `unique` and `failed`."""

    def __init__(self, settings: Settings, progress: Progress | None) -> None:
        self.settings = settings
        self.outcome: Outcome | None = None  # once the walks have ended
        self._progress = _Progress(progress)
        self._chunks = _Chunks()
        self._stop = Cancel()
        self._thread = threading.Thread(target=self._run, name="hfharvest", daemon=True)
        self._started = self._ended = False

    @property
    def stats(self) -> tuple[SortStats, ...] | None:
        """Per sort, what its walk contributed; None until the walks have ended."""
        return self.outcome.stats if self.outcome else None

    @property
    def unique(self) -> int:
        return self.outcome.unique if self.outcome else 0

    @property
    def failed(self) -> tuple[SortStats, ...]:
        return self.outcome.failed if self.outcome else ()

    def __enter__(self) -> RecordStream:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __iter__(self) -> Iterator[Record]:
        if self._started:
            raise RuntimeError("a harvest's records can be read once")
        self._started = True
        self._thread.start()
        while (item := self._chunks.queue.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            for line in item.splitlines():
                yield orjson.loads(line)
        self._ended = True

    def close(self) -> None:
        """Stop the walks if they still run (waits are cut short), and wait for them to end."""
        self._stop.set()
        self._chunks.closed.set()
        if self._started and not self._ended:
            while self._chunks.queue.get() is not None:  # makes room for what the run still puts
                pass
            self._ended = True
            self._thread.join()

    def _run(self) -> None:
        try:
            self.outcome = run_fetch(self.settings, self._chunks, self._progress, stop=self._stop)
        except (_Closed, Cancelled):
            pass  # the caller left
        except BaseException as exc:  # the caller's, raised where it reads
            self.outcome = getattr(exc, "outcome", None)
            self._chunks.queue.put(exc)
        finally:
            self._chunks.queue.put(None)
