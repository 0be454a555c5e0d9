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

import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from hfharvest.ahead import Cancel, Cancelled, Stopped, read_ahead
from hfharvest.bounds import WalkBound
from hfharvest.client import HubClient, Page
from hfharvest.hub import CATALOG_SIZE
from hfharvest.normalize import normalize
from hfharvest.output import output_line
from hfharvest.pacing import Pacer
from hfharvest.retry import ratelimit_policy
from hfharvest.seen import Seen
from hfharvest.settings import Settings
from hfharvest.state import SortProgress, Spool, StateStore, spool_line

log = logging.getLogger("hfharvest")

# Where records go: JSONL lines (each ending in a newline) and how many records they hold.
Sink = Callable[[bytes, int], None]
_MERGE_BATCH = 1000  # records the merge hands to the sink at once


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
    """What one sort's walk contributed: returned = new + duplicates + skipped + below_bound.

    `reached_end` is false when the walk stopped before the listing's end: at `--limit`, or at
    the bound named in `stopped_by`, or by an `error`.
    """

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
    below_bound: int = 0
    stopped_by: str | None = None


@dataclass(frozen=True)
class Tally:
    """What the walks found: per sort what each contributed, and the unique ids in all."""

    stats: tuple[SortStats, ...]
    unique: int

    @property
    def failed(self) -> tuple[SortStats, ...]:
        return tuple(s for s in self.stats if s.error is not None)


class Observer(Protocol):
    """Told of each walk's progress after every page (from the walk's own thread)."""

    def page_done(self, sort: str, returned: int, pages: int) -> None: ...


@dataclass
class _Walk:
    """One sort's walk while it runs; only its own thread writes to it."""

    sort: str
    index: int
    progress: SortProgress
    bound: WalkBound | None
    error: BaseException | None = None

    def count_retry(self) -> None:
        self.progress.retries += 1

    def stats(self, new: int) -> SortStats:
        p = self.progress
        return SortStats(
            sort=self.sort,
            returned=p.returned,
            new=new,
            duplicates=p.returned - p.skipped - p.below_bound - new,
            skipped=p.skipped,
            pages=p.pages,
            retries=p.retries,
            seconds=round(p.seconds, 3),
            reached_end=p.reached_end,
            error=str(self.error) if self.error is not None else None,
            below_bound=p.below_bound,
            stopped_by=p.stopped_by,
        )


class Walks:
    """Every sort's walk once it has ended: counts, failures, and the merge still to do."""

    def __init__(self, walks: Sequence[_Walk], seen: Seen, spool: Spool | None) -> None:
        self._walks = walks
        self._seen = seen
        self._spool = spool
        self.failures: list[BaseException] = []  # in the order they happened

    def result(self) -> Tally:
        new = self._seen.new_counts()
        return Tally(tuple(w.stats(n) for w, n in zip(self._walks, new, strict=True)), sum(new))

    def merge(self, sink: Sink) -> None:
        """Send every unique record to `sink`: sorts in the order given, each in page order."""
        assert self._spool is not None, "a streamed walk has no spool to merge"
        sorts = [walk.sort for walk in self._walks]
        found_by = self._seen.found_by
        for walk in self._walks:
            lines, count = bytearray(), 0
            for spooled in self._spool.records(walk.index):
                ranks = found_by(spooled.repo_id, sorts, walk.index)
                if ranks is None:
                    continue  # an earlier sort writes it
                lines += output_line(spooled.record, ranks, spooled.raw)
                count += 1
                if count == _MERGE_BATCH:
                    sink(bytes(lines), count)
                    lines, count = bytearray(), 0
            sink(bytes(lines), count)


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
    stop: Cancel | None = None,
) -> Walks:
    """Walk every sort; stream to `sink` if given, else append new records to `spool`.

    Setting `stop` (from another thread) ends every walk at once, and this raises `Stopped`.
    """
    sorts = settings.query.sorts
    progress = store.progress if store else {s: SortProgress() for s in sorts}
    seen = Seen(len(sorts))
    walks = [
        _Walk(sort, index, dataclasses.replace(progress[sort]), settings.bounds.for_walk(sort))
        for index, sort in enumerate(sorts)
    ]
    for sort in settings.bounds.unstoppable(sorts):
        log.warning(
            "sort %s cannot stop early at the bounds: it walks to the end (its entries below "
            "them are counted, not written)",
            sort,
        )
    if store is not None:
        for index, rank, repo_id in store.spool.ids():
            seen.add(index, repo_id, rank)
    outcome = Walks(walks, seen, spool)
    cancel = Cancel()
    if stop is not None:
        stop.future.add_done_callback(lambda _: cancel.set())
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
        except Cancelled:
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
    if stop is not None and stop.is_set():
        raise Stopped
    return outcome


def _walk(walk: _Walk, source: PageSource, context: _WalkContext) -> None:
    progress = walk.progress
    settings = context.settings
    limit = settings.query.limit
    started, seconds_before = time.monotonic(), progress.seconds  # a resumed walk adds to its time
    enough = _Enough(limit, walk.bound, settings.query.repo_type)
    pages = source.pages(
        walk.sort,
        start=progress.next_url,
        more=enough.counter(progress.returned),
        on_retry=walk.count_retry,
    )
    try:
        for page in read_ahead(pages, context.cancel):
            entries = page.entries
            if limit is not None:
                entries = entries[: max(limit - progress.returned, 0)]
            lines, new = _shape(walk, entries, context)
            _advance(progress, page, entries, enough)
            progress.seconds = seconds_before + time.monotonic() - started
            _deliver(walk, lines, new, context)
            context.observer.page_done(walk.sort, progress.returned, progress.pages)
            if progress.pages == 1 and walk.index == _first_unbounded(settings):
                log.warning("%s", whole_listing_warning(settings, page.rate_policy))
            if progress.done:
                break
            if context.cancel.is_set():  # after the commit: a page that came is never lost
                raise Cancelled
    finally:
        source.close()
    if not progress.reached_end and limit is not None:
        log.warning("sort %s stopped at --limit %d; the Hub had more", walk.sort, limit)


@dataclass(frozen=True)
class _Enough:
    """When a walk has what it needs: --limit entries, or its bound crossed."""

    limit: int | None
    bound: WalkBound | None
    repo_type: str

    def crossed(self, entries: list[Any]) -> bool:
        if self.bound is None:
            return False
        records = (normalize(raw, self.repo_type) for raw in reversed(entries))  # lazily
        return self.bound.crossed(record for record in records if record is not None)

    def reached(self, returned: int) -> bool:
        return self.limit is not None and returned >= self.limit

    def counter(self, returned: int) -> Callable[[Page], bool]:
        """`more` for the page source: asked of each page, in order, before the next is
        fetched (so a prefetch asks for no page beyond the limit or the bound either)."""

        def more(page: Page) -> bool:
            nonlocal returned
            returned += len(page.entries)
            return not self.reached(returned) and not self.crossed(page.entries)

        return more


def _shape(walk: _Walk, entries: list[Any], context: _WalkContext) -> tuple[bytes, int]:
    """A page's new records as lines (the output's when streaming, else the spool's).

    A record's rank counts every entry its sort returned, skipped and below-bound ones too. An
    entry below a bound is counted before the duplicate check. A record is new when this sort
    has not returned its id before (a repeat is a duplicate). Each record is serialized once, as
    the line that will be written.
    """
    settings, sort, index = context.settings, walk.sort, walk.index
    repo_type, streaming, add = settings.query.repo_type, context.sink is not None, context.seen.add
    bounds, bound = settings.bounds, walk.bound
    lines = bytearray()
    new = skipped = below = 0
    rank = walk.progress.returned
    for raw in entries:
        rank += 1
        record = normalize(raw, repo_type)
        if record is None:
            skipped += 1
            continue
        if bounds and not bounds.passes(record, bound):
            below += 1
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
    walk.progress.below_bound += below
    return bytes(lines), new


def _advance(progress: SortProgress, page: Page, taken: list[Any], enough: _Enough) -> None:
    progress.returned += len(taken)
    progress.pages += 1
    progress.next_url = page.next_url
    crossed = page.next_url is not None and enough.crossed(taken)
    if crossed and enough.bound is not None:
        progress.stopped_by = enough.bound.option
    progress.reached_end = page.next_url is None and len(taken) == len(page.entries)
    progress.done = page.next_url is None or enough.reached(progress.returned) or crossed


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


def _unbounded(settings: Settings) -> list[str]:
    """The sorts that walk the whole listing: no filter, no --limit, no bound to stop them."""
    query = settings.query
    if query.limit is not None or query.filtered:
        return []
    return [sort for sort in query.sorts if settings.bounds.for_walk(sort) is None]


def _first_unbounded(settings: Settings) -> int | None:
    """The index of the walk that warns of the whole listing's cost, once, if any."""
    unbounded = _unbounded(settings)
    return settings.query.sorts.index(unbounded[0]) if unbounded else None


def whole_listing_warning(settings: Settings, rate_policy: str | None) -> str:
    """What the unbounded walks cost, in pages and, from the quota, in time."""
    query = settings.query
    entries = CATALOG_SIZE[query.repo_type]
    pages = -(-entries // query.page_size)
    requests = pages * len(_unbounded(settings))
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
