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
import os
import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, ParamSpec

import orjson

from hfharvest.ahead import Cancel, Stopped
from hfharvest.manifest import Ledger
from hfharvest.run import run_fetch
from hfharvest.settings import FetchOptions, Settings, resolve
from hfharvest.walks import SortStats, Tally

Record = dict[str, Any]
Progress = Callable[[str, int, int], None]  # (sort, entries returned so far, pages so far)
Names = str | list[str] | tuple[str, ...] | None

P = ParamSpec("P")
# Output chunks (a page's records, or 64 KB of a merge) that may wait for the caller: past them the
# walk waits, so memory stays bounded however slowly the caller reads.
_CHUNKS_AHEAD = 16


@dataclass(frozen=True)
class HarvestResult(Tally):
    """What `harvest()` returns: the records; per sort what its walk contributed (`stats`); the
    sorts that `failed` (only with `allow_partial=True`: otherwise the call raises)."""

    records: list[Record]


def stream(
    *,
    sort: Names = None,
    search: str | None = None,
    author: str | None = None,
    filter: Names = None,
    pipeline_tag: str | None = None,
    inference_provider: Names = None,
    expand: Names = None,
    full: bool | None = None,
    all_fields: bool = False,
    limit: int | None = None,
    page_size: int = FetchOptions.page_size,
    repo_type: str = FetchOptions.repo_type,
    endpoint: str | None = None,
    token: str | bool | None = None,
    token_file: str | Path | None = None,
    allow_insecure_token: bool = False,
    timeout: float = FetchOptions.timeout,
    retries: int = FetchOptions.retries,
    max_wait: float = FetchOptions.max_wait,
    max_rps: float | None = None,
    min_count: int | None = None,
    allow_partial: bool = False,
    state: str | Path | None = None,
    raw: bool = False,
    min_likes: int | None = None,
    min_downloads: int | None = None,
    since: str | datetime | None = None,
    progress: Progress | None = None,
) -> RecordStream:
    """The same harvest as `harvest()`, its records handed over as they become final.

    With one sort they come as their page arrives; with several, once every walk has ended, from
    the spool on disk. Memory stays bounded either way. Use it as a context manager, so that
    leaving early stops the walks: `with hfharvest.stream(...) as records: for r in records: ...`
    """
    options = FetchOptions(
        sort=_names(sort), search=search, author=author, filter=_names(filter),
        pipeline_tag=pipeline_tag, inference_provider=_names(inference_provider),
        expand=_names(expand), full=full, all_fields=all_fields, limit=limit,
        page_size=page_size, repo_type=repo_type, endpoint=endpoint, token=token,
        token_file=None if token_file is None else Path(token_file),
        allow_insecure_token=allow_insecure_token, timeout=timeout, retries=retries,
        max_wait=max_wait, max_rps=max_rps, min_count=min_count, allow_partial=allow_partial,
        state=None if state is None else Path(state), raw=raw, min_likes=min_likes,
        min_downloads=min_downloads,
        since=since.isoformat() if isinstance(since, datetime) else since,
    )  # fmt: skip
    return RecordStream(resolve(options, os.environ), progress)


def _takes_the_options_of(
    source: Callable[P, object],
) -> Callable[[Callable[..., HarvestResult]], Callable[P, HarvestResult]]:
    """Give the function decorated `source`'s keyword options: written once, typed for both."""

    def decorate(function: Callable[..., HarvestResult]) -> Callable[P, HarvestResult]:
        signature = inspect.signature(source).replace(return_annotation=HarvestResult)
        function.__signature__ = signature  # type: ignore[attr-defined]  # what help() shows
        return function

    return decorate


@_takes_the_options_of(stream)
def harvest(**options: Any) -> HarvestResult:
    """Walk the Hub listing once per sort and return every unique record, merged.

    Takes the options of `stream()`. Raises `hfharvest.HarvestError` (a `UsageError`, before any
    request, for a bad option), each with the `exit_code` the CLI would exit with. With several
    sorts the records wait in a spool on disk until every walk has ended, then all are read into
    the list: for the whole Hub, prefer `stream()`.
    """
    with stream(**options) as records:
        found = list(records)
    assert records.tally is not None  # the walks ended: their counts are known
    return HarvestResult(records.tally.stats, records.tally.unique, found)


def _names(value: Names) -> tuple[str, ...]:
    if value is None:
        return ()
    return (value,) if isinstance(value, str) else tuple(value)


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


class _Progress:
    def __init__(self, callback: Progress | None) -> None:
        self._callback = callback

    def page_done(self, sort: str, returned: int, pages: int) -> None:
        if self._callback is not None:
            self._callback(sort, returned, pages)


class RecordStream:
    """The records of one harvest, as they become final; then `stats`, `unique` and `failed`."""

    def __init__(self, settings: Settings, progress: Progress | None) -> None:
        self.settings = settings
        self.tally: Tally | None = None  # once the walks have ended
        self._progress = _Progress(progress)
        self._chunks = _Chunks()
        self._stop = Cancel()
        self._thread = threading.Thread(target=self._run, name="hfharvest", daemon=True)
        self._started = self._ended = False

    @property
    def stats(self) -> tuple[SortStats, ...] | None:
        """Per sort, what its walk contributed; None until the walks have ended."""
        return self.tally.stats if self.tally else None

    @property
    def unique(self) -> int:
        return self.tally.unique if self.tally else 0

    @property
    def failed(self) -> tuple[SortStats, ...]:
        return self.tally.failed if self.tally else ()

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
        ledger = Ledger(started=datetime.now(UTC))
        try:
            run_fetch(self.settings, self._chunks, self._progress, ledger, stop=self._stop)
        except (_Closed, Stopped):
            pass  # the caller left
        except BaseException as exc:  # the caller's, raised where it reads
            self._chunks.queue.put(exc)
        finally:
            self.tally = ledger.result
            self._chunks.queue.put(None)
