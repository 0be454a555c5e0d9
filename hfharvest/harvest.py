"""The harvest: one walk per sort, run concurrently, merged into one set unique by id.

Each walk runs in its own thread with its own `HubClient`. With one sort, records go to the sink
as their page arrives. With several, a record is final only when every walk has ended (its
`found_by` must be complete), so each walk spools its new records to an anonymous temporary file
and memory holds only ids and ranks; the merge then reads the spools in the order the sorts were
given. The output therefore depends only on the Hub's answers, never on which walk finished first.
"""

from __future__ import annotations

import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import IO, Any, Protocol

import orjson

from hfharvest.client import HubClient
from hfharvest.normalize import normalize
from hfharvest.settings import Settings

Record = dict[str, Any]
Sink = Callable[[Record], None]


@dataclass(frozen=True)
class SortStats:
    """What one sort's walk contributed: returned = new + duplicates + skipped."""

    sort: str
    returned: int
    new: int
    duplicates: int
    skipped: int
    pages: int
    retries: int
    seconds: float
    reached_end: bool


@dataclass(frozen=True)
class HarvestResult:
    stats: tuple[SortStats, ...]
    unique: int


class Observer(Protocol):
    """Told of each walk's progress after every page (from the walk's own thread)."""

    def page_done(self, sort: str, returned: int, pages: int) -> None: ...


class _Cancelled(Exception):
    """Raised inside a walk when another walk failed: its work would be thrown away."""


@dataclass
class _Walk:
    """One sort's walk while it runs; only its own thread writes to it."""

    sort: str
    seen: dict[str, int] = field(default_factory=dict)  # id -> 1-based rank of first return
    returned: int = 0
    skipped: int = 0
    pages: int = 0
    retries: int = 0
    seconds: float = 0.0
    reached_end: bool = False
    spool: IO[bytes] | None = None

    def count_retry(self) -> None:
        self.retries += 1

    def stats(self, new: int) -> SortStats:
        return SortStats(
            sort=self.sort,
            returned=self.returned,
            new=new,
            duplicates=self.returned - self.skipped - new,
            skipped=self.skipped,
            pages=self.pages,
            retries=self.retries,
            seconds=round(self.seconds, 3),
            reached_end=self.reached_end,
        )


def harvest(
    settings: Settings,
    sink: Sink,
    observer: Observer,
    *,
    make_client: Callable[[Callable[[float], None]], HubClient] | None = None,
) -> HarvestResult:
    """Walk every sort of `settings`, send each unique record to `sink`, and return the stats."""
    cancel = threading.Event()

    def client_for_walk() -> HubClient:
        sleep = _cancellable_sleep(cancel)
        return make_client(sleep) if make_client else HubClient(settings, sleep=sleep)

    walks = [_Walk(sort) for sort in settings.sorts]
    single = len(walks) == 1
    with ExitStack() as stack:
        if not single:
            for walk in walks:
                walk.spool = stack.enter_context(tempfile.TemporaryFile(prefix="hfharvest-"))

        def emit(walk: _Walk, record: Record, raw: Any) -> None:
            if single:
                sink(_final(record, {walk.sort: walk.returned}, raw, settings.raw))
            else:
                assert walk.spool is not None
                walk.spool.write(orjson.dumps(_spooled(record, raw, settings.raw)) + b"\n")

        _run_concurrently(walks, settings, client_for_walk, emit, observer, cancel)
        if single:
            return HarvestResult((walks[0].stats(new=len(walks[0].seen)),), len(walks[0].seen))
        return _merge(walks, sink, settings.raw)


def _cancellable_sleep(cancel: threading.Event) -> Callable[[float], None]:
    def sleep(seconds: float) -> None:
        if cancel.wait(seconds):
            raise _Cancelled

    return sleep


def _run_concurrently(
    walks: Sequence[_Walk],
    settings: Settings,
    client_for_walk: Callable[[], HubClient],
    emit: Callable[[_Walk, Record, Any], None],
    observer: Observer,
    cancel: threading.Event,
) -> None:
    failures: list[BaseException] = []

    def run(walk: _Walk) -> None:
        try:
            _walk(walk, client_for_walk(), settings, emit, observer, cancel)
        except _Cancelled:
            pass
        except BaseException as exc:  # handed to the main thread, which re-raises it
            failures.append(exc)
            cancel.set()

    # Daemon threads: an interrupted run must be able to exit without waiting for a slow read.
    threads = [threading.Thread(target=run, args=(w,), name=w.sort, daemon=True) for w in walks]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        cancel.set()
    if failures:
        raise failures[0]


def _walk(
    walk: _Walk,
    client: HubClient,
    settings: Settings,
    emit: Callable[[_Walk, Record, Any], None],
    observer: Observer,
    cancel: threading.Event,
) -> None:
    started = time.monotonic()
    limit = settings.limit
    try:
        for page in client.pages(walk.sort, on_retry=walk.count_retry):
            if cancel.is_set():
                raise _Cancelled
            walk.pages += 1
            entries = page.entries if limit is None else page.entries[: limit - walk.returned]
            for raw in entries:
                walk.returned += 1
                _take(walk, raw, settings, emit)
            observer.page_done(walk.sort, walk.returned, walk.pages)
            walk.reached_end = page.next_url is None and len(entries) == len(page.entries)
            if limit is not None and walk.returned >= limit:
                break
    finally:
        walk.seconds = time.monotonic() - started
        client.close()


def _take(
    walk: _Walk, raw: Any, settings: Settings, emit: Callable[[_Walk, Record, Any], None]
) -> None:
    record = normalize(raw, settings.repo_type)
    if record is None:
        walk.skipped += 1
    elif record["id"] not in walk.seen:  # a repeat within the sort is a duplicate: dropped
        walk.seen[record["id"]] = walk.returned
        emit(walk, record, raw)


def _merge(walks: Sequence[_Walk], sink: Sink, with_raw: bool) -> HarvestResult:
    stats: list[SortStats] = []
    unique = 0
    for index, walk in enumerate(walks):
        earlier = walks[:index]
        new = 0
        for record, raw in _read_spool(walk):
            repo_id = record["id"]
            if any(repo_id in other.seen for other in earlier):
                continue
            found_by = {w.sort: w.seen[repo_id] for w in walks if repo_id in w.seen}
            sink(_final(record, found_by, raw, with_raw))
            new += 1
        stats.append(walk.stats(new=new))
        unique += new
    return HarvestResult(tuple(stats), unique)


def _read_spool(walk: _Walk) -> Iterator[tuple[Record, Any]]:
    assert walk.spool is not None
    walk.spool.seek(0)
    for line in walk.spool:
        record = orjson.loads(line)
        raw = record.pop("raw", None)
        yield record, raw


def _spooled(record: Record, raw: Any, with_raw: bool) -> Record:
    return {**record, "raw": raw} if with_raw else record


def _final(record: Record, found_by: dict[str, int], raw: Any, with_raw: bool) -> Record:
    record["found_by"] = found_by
    if with_raw:
        record["raw"] = raw
    return record
