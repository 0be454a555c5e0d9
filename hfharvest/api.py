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

import contextlib
import io
import os
import threading
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from datetime import date
from pathlib import Path
from types import TracebackType
from typing import Any, Generic, Self, TypeVar, Unpack, cast, get_type_hints, overload

from hfharvest.ahead import Cancel, Cancelled
from hfharvest.errors import OptionTypeError, UsageError
from hfharvest.hub import RepoType
from hfharvest.loaders import require_pyarrow
from hfharvest.options import (
    OneTypeOptions,
    Options,
    PythonOptions,
    RepoTypeName,
    default_of,
    doc_of,
)
from hfharvest.outcome import Outcome, SortStats, Written
from hfharvest.records import AnyRecord, Final, Record
from hfharvest.run import run_fetches
from hfharvest.settings import Settings, provenance, resolve_each
from hfharvest.sinks.handover import HandOver, Left
from hfharvest.sinks.pick import open_sink
from hfharvest.sinks.target import OutputTarget

Progress = Callable[[str, int, int], None]  # (sort, entries returned so far, pages so far)


R = TypeVar("R")


@dataclass(frozen=True)
class HarvestResult(Outcome, Generic[R]):
    """What `harvest()` returns: the records (a `ModelRecord`, `DatasetRecord` or `SpaceRecord`
    each, by `repo_type`); per sort what its walk contributed (`stats`); the sorts that `failed`
    (only with `allow_partial=True`: otherwise the call raises)."""

    records: list[R] = field(default_factory=list)


# The options a Python caller gives: the table's, less those of the command line.
_PARAMETERS = [each for each in fields(Options) if not doc_of(each).cli_only]
_NAMES = frozenset(each.name for each in _PARAMETERS)
_CLI_ONLY = frozenset(each.name for each in fields(Options)) - _NAMES
_DURATIONS = frozenset(each.name for each in _PARAMETERS if doc_of(each).unit is not None)


def python_options(function: str, options: Options | None, given: dict[str, Any]) -> Options:
    """The table's values from Python's: `options`, if given, with `given` over it, each checked
    against its type (a name or a list of names, a path as a string or a `Path`, a time as a
    string, a `date` or a `datetime`); errors name `function`."""
    for name in sorted(given):
        if name not in _NAMES:
            only = " (an option of the command line only)" if name in _CLI_ONLY else ""
            raise TypeError(f"{function}() got an unexpected keyword argument {name!r}{only}")
    if options is not None:
        for name in sorted(_CLI_ONLY):
            each = next(f for f in fields(Options) if f.name == name)
            if getattr(options, name) != default_of(each):
                raise UsageError(
                    f"{function}(): `{name}` is an option of the command line only",
                    parameter=name,
                    value=getattr(options, name),
                )
    hints = get_type_hints(Options)
    typed = {name: _typed(function, name, value, hints[name]) for name, value in given.items()}
    return replace(options, **typed) if options is not None else Options(**typed)


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


def _typed(function: str, name: str, value: Any, kind: Any) -> Any:
    if name == "since" and isinstance(value, date):  # a datetime is a date too
        return value.isoformat()
    if name in _DURATIONS and value is not None:
        if isinstance(value, str | int | float) and type(value) is not bool:
            return value  # a number in the option's unit, or a duration as text ("2h")
        raise OptionTypeError(
            f"{function}(): `{name}` must be a number or a duration such as '90s', "
            f"got {type(value).__name__}",
            parameter=name,
            value=value,
        )
    several = name == "repo_type" and isinstance(value, list | tuple)
    if several and all(isinstance(each, str) for each in value):
        return tuple(value)
    if name in ("limit", "min_count") and isinstance(value, Mapping):
        if all(isinstance(k, str) and type(n) is int for k, n in value.items()):
            return dict(value)
        raise OptionTypeError(
            f"{function}(): `{name}` must be an int or a mapping of types to ints",
            parameter=name,
            value=value,
        )
    if name == "token":
        if value is None or isinstance(value, str | bool):
            return value
        raise OptionTypeError(
            f"{function}(): `token` must be a string, True or False, got {type(value).__name__}",
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
            f"{function}(): `{name}` must be {words}, got {type(value).__name__}",
            parameter=name,
            value=value,
        )
    if base == tuple[str, ...]:
        return (value,) if isinstance(value, str) else tuple(value)
    return Path(value) if base is Path else value


def stream(
    options: Options | None = None,
    /,
    *,
    progress: Progress | None = None,
    **kwargs: Unpack[PythonOptions],
) -> RecordStream[AnyRecord]:
    """The same harvest as `harvest()`, its records handed over as they become final (each a
    `ModelRecord`, `DatasetRecord` or `SpaceRecord`, told apart by its `type`).

    With one sort they come as their page arrives; with several, once every walk has ended, from
    the spool on disk. Memory stays bounded either way. Several types (`repo_type=["model",
    "dataset"]`) are walked side by side, then handed over a type after another, in the order
    given; `outcomes` holds each type's counts. Leaving it early (a `break`, an error in the
    loop, `close()`, the end of a `with` block) stops the walks at once.
    """
    given: dict[str, Any] = dict(kwargs)
    return RecordStream(
        resolve_each(python_options("stream", options, given), os.environ, handed_over=True),
        progress,
    )


@overload
def harvest(
    options: Options | None = None,
    /,
    *,
    progress: Progress | None = None,
    repo_type: RepoTypeName = ...,
    **kwargs: Unpack[OneTypeOptions],
) -> HarvestResult[AnyRecord]: ...


@overload
def harvest(
    options: Options | None = None,
    /,
    *,
    progress: Progress | None = None,
    repo_type: list[RepoTypeName] | tuple[RepoTypeName, ...],
    **kwargs: Unpack[OneTypeOptions],
) -> dict[RepoType, HarvestResult[AnyRecord]]: ...


def harvest(
    options: Options | None = None,
    /,
    *,
    progress: Progress | None = None,
    **kwargs: Unpack[PythonOptions],
) -> HarvestResult[AnyRecord] | dict[RepoType, HarvestResult[AnyRecord]]:
    """Walk the Hub listing once per sort and return every unique record, merged.

    Options come as keyword arguments (a type checker sees each), as an `hfharvest.Options`, or
    both (the keywords over it). Raises `hfharvest.HarvestError` (a `UsageError`, before any
    request, for a bad option), each with the `exit_code` the CLI would exit with. With several
    sorts the records wait in a spool on disk until every walk has ended, then all are read into
    the list: for the whole Hub, prefer `stream()`, which takes the same options. Several types
    (`repo_type=["model", "dataset"]`, a list or a tuple) are walked side by side under one
    rate-limit budget and return a result a type: `{"model": HarvestResult, ...}`.
    """
    given: dict[str, Any] = dict(kwargs)
    chosen = python_options("harvest", options, given)
    each = resolve_each(chosen, os.environ, handed_over=True)
    with RecordStream[AnyRecord](each, progress) as records:
        found = list(records)
    outcomes = records.outcomes
    assert outcomes is not None  # the walks ended: their counts are known
    results = {
        settings.query.repo_type: HarvestResult(
            outcome.stats,
            outcome.unique,
            outcome.written,
            records=found if len(each) == 1 else _of_type(found, settings.query.repo_type),
        )
        for settings, outcome in zip(each, outcomes, strict=True)
    }
    if isinstance(chosen.repo_type, str):
        return results[each[0].query.repo_type]
    return results


def _of_type(records: list[AnyRecord], repo_type: str) -> list[AnyRecord]:
    return [record for record in records if record["type"] == repo_type]


def _document(function: Callable[..., Any]) -> None:
    """Each option of the table in `help()` of `function`."""
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
    about = (("hfharvest", provenance(repo_type, {"written_by": "hfharvest.write_parquet"})),)
    target = OutputTarget(Path(path), "parquet", False, str(path), repo_type, raw, (), about)
    with open_sink(target, io.BytesIO()) as sink:
        for record in records:
            fields = {k: v for k, v in record.items() if k not in ("found_by", "raw")}
            sink.write(Final(fields, raw=record.get("raw"), has_raw=raw), record["found_by"])
    return sink.written()


_document(stream)
_document(harvest)


class CallingBack:
    """An `Observer` that calls the caller's `progress` function, if any."""

    def __init__(self, callback: Progress | None) -> None:
        self._callback = callback

    def page_done(self, sort: str, returned: int, pages: int) -> None:
        if self._callback is not None:
            self._callback(sort, returned, pages)


class _Ended:
    """What the run leaves for its stream: an outcome a listing (shared with the run's thread,
    which must not hold the stream itself, or a stream left without `close` would never be
    freed)."""

    outcomes: tuple[Outcome, ...] | None = None


class Closing:
    """What a `with` block closes at its end: a stream, a mirror."""

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class RecordStream(Closing, Iterator[R]):
    """The records of one harvest, as they become final; then `stats`, `unique` and `failed`.

    An iterator: the walks begin with the first `next()`. Leaving it early, by `close()`, a
    `with` block, or simply dropping it (a `break`, then garbage collection), stops the walks
    and their threads at once, a page in flight included.
    """

    def __init__(self, each: Sequence[Settings], progress: Progress | None) -> None:
        self.settings = tuple(each)  # a listing's each
        self._ended = _Ended()
        self._handover = HandOver()
        self._stop = Cancel()
        self._thread = threading.Thread(
            target=_run,
            args=(self.settings, CallingBack(progress), self._handover, self._stop, self._ended),
            name="hfharvest",
            daemon=True,
        )
        self._batch: Iterator[Record] = iter(())
        self._done = False
        self._stopping = weakref.finalize(self, _stop, self._handover, self._stop)

    @property
    def outcome(self) -> Outcome | None:
        """What the walks did, once they have ended (of the first type, when there are several)."""
        outcomes = self._ended.outcomes
        return outcomes[0] if outcomes else None

    @property
    def outcomes(self) -> tuple[Outcome, ...] | None:
        """What the walks of each type did, in the order given, once they have ended."""
        return self._ended.outcomes

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

    def __iter__(self) -> RecordStream[R]:
        return self

    def __next__(self) -> R:
        for record in self._batch:
            return cast(R, record)
        if self._done:
            raise StopIteration
        if not self._thread.is_alive() and self._thread.ident is None:
            self._thread.start()
        item = self._handover.get()
        if isinstance(item, list):
            self._batch = iter(item)
            return cast(R, next(self._batch))
        self._done = True
        if item is not None:
            raise item
        raise StopIteration

    def close(self) -> None:
        """Stop the walks if they still run (waits are cut short, a page in flight too), and
        wait for them to end."""
        self._done = True
        self._stopping()
        if self._thread.ident is not None:
            self._thread.join()


def _stop(handover: HandOver, stop: Cancel) -> None:
    """The walks stop: whatever they wait for or read is cut short, and no record is taken."""
    stop.set()
    handover.closed.set()


def _run(
    each: Sequence[Settings],
    progress: CallingBack,
    handover: HandOver,
    stop: Cancel,
    ended: _Ended,
) -> None:
    @contextlib.contextmanager
    def handing_over(settings: Settings, landed: Callable[[Written], None]) -> Iterator[HandOver]:
        yield handover
        handover.finish()

    try:
        ended.outcomes = run_fetches(each, None, progress, stop=stop, sink=handing_over)
        handover.put(None)
    except (Left, Cancelled):
        pass  # the caller left
    except BaseException as exc:  # the caller's, raised where it reads
        one = getattr(exc, "outcome", None)
        ended.outcomes = getattr(exc, "outcomes", None) or ((one,) if one else None)
        with contextlib.suppress(Left):
            handover.put(exc)
