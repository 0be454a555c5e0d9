"""The walks: one per sort, run concurrently, merged into one set unique by id.

Each walk runs in its own thread, reading pages from its own `PageSource` (a `HubClient`, or a
fake in tests) one page ahead of the page it shapes. With one sort (and nothing that must see the
whole set first) records go to the sink as their page arrives. Otherwise a record is final only
when every walk has ended (its `found_by` must be complete), so each walk appends its new records
to the spool and memory holds only ids and ranks; `Walks.merge` then reads the spool in the order
the sorts were given. The output depends only on the Hub's answers, never on which walk finished
first. With a `StateStore`, every page is committed so that a later run resumes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import threading
import time
from array import array
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, InvalidStateError, wait
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from hfharvest.client import HubClient, Page
from hfharvest.hub import CATALOG_SIZE
from hfharvest.normalize import normalize
from hfharvest.output import output_line
from hfharvest.pacing import Pacer
from hfharvest.retry import ratelimit_policy
from hfharvest.settings import Settings
from hfharvest.state import SortProgress, Spool, StateStore, spool_line

log = logging.getLogger("hfharvest")

# Where records go: JSONL lines (each ending in a newline) and how many records they hold.
Sink = Callable[[bytes, int], None]


class PageSource(Protocol):
    """Where a walk's pages come from: `HubClient`, or a few lines of fake in a test."""

    def pages(
        self,
        sort: str,
        *,
        start: str | None = None,
        more: Callable[[Page], bool] = ...,
        on_retry: Callable[[], None] = ...,
    ) -> Iterator[Page]: ...

    def close(self) -> None: ...


# Makes a walk's source, given the walk's sleep (which a cancel cuts short).
SourceFactory = Callable[[Callable[[float], None]], PageSource]


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
    error: str | None = None


@dataclass(frozen=True)
class HarvestResult:
    stats: tuple[SortStats, ...]
    unique: int

    @property
    def failed(self) -> tuple[SortStats, ...]:
        return tuple(s for s in self.stats if s.error is not None)


class Observer(Protocol):
    """Told of each walk's progress after every page (from the walk's own thread)."""

    def page_done(self, sort: str, returned: int, pages: int) -> None: ...


class Seen:
    """Every id the walks returned and the rank at which each sort first did: one table for all.

    Only this grows with the catalog, so it is kept small: each id is stored once whatever the
    number of sorts (a slot in one dict), and each sort's ranks sit in a machine-integer array
    indexed by slot (0: not returned by that sort). Walks add from their own threads; a new slot
    is handed out under a lock, everything else is one sort's own array.
    """

    def __init__(self, sorts: int) -> None:
        self._slots: dict[str, int] = {}
        self._ranks = [array("q") for _ in range(sorts)]
        self._lock = threading.Lock()

    def add(self, index: int, repo_id: str, rank: int) -> bool:
        """Record that sort `index` returned `repo_id` at `rank`; False if it already had."""
        slot = self._slots.get(repo_id)
        if slot is None:
            with self._lock:
                slot = self._slots.setdefault(repo_id, len(self._slots))
        ranks = self._ranks[index]
        if slot >= len(ranks):
            ranks.frombytes(bytes(8 * max(slot + 1 - len(ranks), len(ranks))))  # doubling
        if ranks[slot]:
            return False
        ranks[slot] = rank
        return True

    def found_by(self, repo_id: str, sorts: Sequence[str]) -> dict[str, int]:
        slot = self._slots[repo_id]
        return {
            sort: ranks[slot]
            for sort, ranks in zip(sorts, self._ranks, strict=True)
            if slot < len(ranks) and ranks[slot]
        }

    def new_counts(self) -> list[int]:
        """Per sort, the ids no earlier sort returned."""
        counts = [0] * len(self._ranks)
        for slot in range(len(self._slots)):
            for index, ranks in enumerate(self._ranks):
                if slot < len(ranks) and ranks[slot]:
                    counts[index] += 1
                    break
        return counts


class _Cancelled(Exception):
    """Raised inside a walk when another walk failed: its work would be thrown away."""


class Cancel:
    """Set once, when a walk fails and the others' work is no longer wanted; wakes every wait."""

    def __init__(self) -> None:
        self.future: Future[None] = Future()

    def set(self) -> None:
        with contextlib.suppress(InvalidStateError):  # already set
            self.future.set_result(None)

    def is_set(self) -> bool:
        return self.future.done()

    def sleep(self, seconds: float) -> None:
        """A retry's or the pacer's wait, cut short (with `_Cancelled`) by a cancel."""
        try:
            self.future.result(timeout=seconds)
        except TimeoutError:
            return
        raise _Cancelled


@dataclass
class _Walk:
    """One sort's walk while it runs; only its own thread writes to it."""

    sort: str
    index: int
    progress: SortProgress
    error: BaseException | None = None

    def count_retry(self) -> None:
        self.progress.retries += 1

    def stats(self, new: int) -> SortStats:
        p = self.progress
        return SortStats(
            sort=self.sort,
            returned=p.returned,
            new=new,
            duplicates=p.returned - p.skipped - new,
            skipped=p.skipped,
            pages=p.pages,
            retries=p.retries,
            seconds=round(p.seconds, 3),
            reached_end=p.reached_end,
            error=str(self.error) if self.error is not None else None,
        )


class Walks:
    """Every sort's walk once it has ended: counts, failures, and the merge still to do."""

    def __init__(self, walks: Sequence[_Walk], seen: Seen, spool: Spool | None) -> None:
        self._walks = walks
        self._seen = seen
        self._spool = spool
        self.failures: list[BaseException] = []  # in the order they happened

    def result(self) -> HarvestResult:
        new = self._seen.new_counts()
        return HarvestResult(
            tuple(w.stats(n) for w, n in zip(self._walks, new, strict=True)), sum(new)
        )

    def merge(self, sink: Sink) -> None:
        """Send every unique record to `sink`: sorts in the order given, each in page order."""
        assert self._spool is not None, "a streamed walk has no spool to merge"
        sorts = [walk.sort for walk in self._walks]
        for walk in self._walks:
            for spooled in self._spool.records(walk.index):
                found_by = self._seen.found_by(spooled.repo_id, sorts)  # in the order given
                if next(iter(found_by)) != walk.sort:
                    continue  # an earlier sort wrote it
                sink(output_line(spooled.record, found_by, spooled.raw), 1)


@dataclass(frozen=True)
class _WalkContext:
    """What every walk shares: settings, the id table, where records go, the commit lock."""

    settings: Settings
    observer: Observer
    seen: Seen
    spool: Spool | None
    store: StateStore | None
    sink: Sink | None
    commit_lock: threading.Lock
    cancel: Cancel


def walk_all(
    settings: Settings,
    observer: Observer,
    *,
    spool: Spool | None,
    store: StateStore | None = None,
    sink: Sink | None = None,
    make_source: SourceFactory | None = None,
) -> Walks:
    """Walk every sort; stream to `sink` if given, else append new records to `spool`."""
    sorts = settings.query.sorts
    progress = store.progress if store else {s: SortProgress() for s in sorts}
    seen = Seen(len(sorts))
    walks = [
        _Walk(sort, index, dataclasses.replace(progress[sort])) for index, sort in enumerate(sorts)
    ]
    if store is not None:
        for index, rank, repo_id in store.spool.ids():
            seen.add(index, repo_id, rank)
    outcome = Walks(walks, seen, spool)
    cancel = Cancel()
    commit_lock = threading.Lock()
    pacer = Pacer(settings.transport.max_rps)  # one rate-limit budget for every walk
    context = _WalkContext(settings, observer, seen, spool, store, sink, commit_lock, cancel)

    def run(walk: _Walk) -> None:
        try:
            if make_source is not None:
                source = make_source(cancel.sleep)
            else:
                source = HubClient(settings, sleep=cancel.sleep, pacer=pacer)
            _walk(walk, source, context)
        except _Cancelled:
            pass
        except BaseException as exc:  # handed to the caller, which decides what it means
            walk.error = exc
            with commit_lock:
                outcome.failures.append(exc)
            if not settings.allow_partial:
                cancel.set()

    # Daemon threads: an interrupted run must be able to exit without waiting for a slow read.
    threads = [
        threading.Thread(target=run, args=(w,), name=w.sort, daemon=True)
        for w in walks
        if not w.progress.done
    ]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        cancel.set()
    return outcome


def _walk(walk: _Walk, source: PageSource, context: _WalkContext) -> None:
    progress = walk.progress
    limit = context.settings.query.limit
    started, seconds_before = time.monotonic(), progress.seconds  # a resumed walk adds to its time
    pages = source.pages(
        walk.sort,
        start=progress.next_url,
        more=_until_limit(limit, progress.returned),
        on_retry=walk.count_retry,
    )
    try:
        for page in _read_ahead(pages, context.cancel):
            entries = page.entries
            if limit is not None:
                entries = entries[: max(limit - progress.returned, 0)]
            lines, new = _shape(walk, entries, context)
            _advance(progress, page, taken=len(entries), limit=limit)
            progress.seconds = seconds_before + time.monotonic() - started
            _deliver(walk, lines, new, context)
            context.observer.page_done(walk.sort, progress.returned, progress.pages)
            if walk.index == 0 and progress.pages == 1 and _walks_everything(context.settings):
                log.warning("%s", whole_listing_warning(context.settings, page.rate_policy))
            if progress.done:
                break
            if context.cancel.is_set():  # after the commit: a page that came is never lost
                raise _Cancelled
    finally:
        source.close()
    if not progress.reached_end and limit is not None:
        log.warning("sort %s stopped at --limit %d; the Hub had more", walk.sort, limit)


def _until_limit(limit: int | None, returned: int) -> Callable[[Page], bool]:
    """Whether another page is needed after this one: not once --limit entries have come."""

    def more(page: Page) -> bool:
        nonlocal returned
        returned += len(page.entries)
        return limit is None or returned < limit

    return more


def _read_ahead(pages: Iterator[Page], cancel: Cancel) -> Iterator[Page]:
    """Yield `pages`, fetching page k+1 while the caller shapes and writes page k.

    A plain bounded producer: one page ahead at most, each fetched by a short thread of its own
    (the generator is advanced by one thread at a time). The Hub's 1-3 s a page then overlaps the
    work on the page before; a cancel wakes the wait at once, without polling.
    """
    ahead = _next_in_thread(pages)
    while True:
        either: list[Future[Any]] = [ahead, cancel.future]
        done, _ = wait(either, return_when=FIRST_COMPLETED)
        if ahead not in done:
            raise _Cancelled  # another walk failed: this one's next page is not needed
        page = ahead.result()  # the fetch's own error, if it failed
        if page is None:
            return
        ahead = _next_in_thread(pages)
        yield page


def _next_in_thread(pages: Iterator[Page]) -> Future[Page | None]:
    future: Future[Page | None] = Future()

    def fetch() -> None:
        try:
            future.set_result(next(pages, None))
        except BaseException as exc:  # handed to the walk, which raises it as its own
            future.set_exception(exc)

    # Daemon: an interrupted run does not wait for a slow read to end.
    threading.Thread(target=fetch, name="fetch", daemon=True).start()
    return future


def _shape(walk: _Walk, entries: list[Any], context: _WalkContext) -> tuple[bytes, int]:
    """A page's new records as lines (the output's when streaming, else the spool's).

    A record's rank counts every entry its sort returned, skipped ones too. A record is new when
    this sort has not returned its id before (a repeat is a duplicate). Each record is
    serialized once, as the line that will be written.
    """
    settings, sort, index = context.settings, walk.sort, walk.index
    repo_type, streaming, add = settings.query.repo_type, context.sink is not None, context.seen.add
    lines = bytearray()
    new = skipped = 0
    rank = walk.progress.returned
    for raw in entries:
        rank += 1
        record = normalize(raw, repo_type)
        if record is None:
            skipped += 1
            continue
        if not add(index, record["id"], rank):
            continue
        new += 1
        record_json = orjson.dumps(record)
        raw_json = orjson.dumps(raw) if settings.raw else None
        if streaming:
            lines += output_line(record_json, {sort: rank}, raw_json)
        else:
            lines += spool_line(index, rank, record["id"], record_json, raw_json)
    walk.progress.skipped += skipped
    return bytes(lines), new


def _advance(progress: SortProgress, page: Page, *, taken: int, limit: int | None) -> None:
    progress.returned += taken
    progress.pages += 1
    progress.next_url = page.next_url
    progress.reached_end = page.next_url is None and taken == len(page.entries)
    progress.done = page.next_url is None or (limit is not None and progress.returned >= limit)


def _deliver(walk: _Walk, lines: bytes, new: int, context: _WalkContext) -> None:
    """Send a page's new records on: to the output (streaming), or durably to the spool."""
    if context.sink is not None:
        context.sink(lines, new)
    with context.commit_lock:  # the page's records and progress together: a resume never sees half
        if lines and context.spool is not None:
            context.spool.append(lines)
        if context.store is not None:
            context.store.progress[walk.sort] = dataclasses.replace(walk.progress)
            context.store.commit()


def _walks_everything(settings: Settings) -> bool:
    return settings.query.limit is None and not settings.query.filtered


def whole_listing_warning(settings: Settings, rate_policy: str | None) -> str:
    """What an unfiltered walk without --limit costs, in pages and, from the quota, in time."""
    query = settings.query
    entries = CATALOG_SIZE[query.repo_type]
    pages = -(-entries // query.page_size)
    requests = pages * len(query.sorts)
    text = (
        f"no filter and no --limit: this walks the whole listing (on the Hub, about "
        f"{entries:,} {query.repo_type}s: about {pages:,} pages per sort, {requests:,} requests "
        "in all)"
    )
    policy = ratelimit_policy(rate_policy) if rate_policy else None
    if policy is None:
        return text
    quota, window = policy
    minutes = requests / quota * window / 60
    if minutes < 1:
        return text  # a quota this large costs no time worth a warning
    return (
        f"{text}; at the Hub's quota of {quota:,} requests per {window} s "
        f"that is {minutes:,.0f} minutes or more"
    )
