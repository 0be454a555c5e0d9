"""The harvest: one walk per sort, run concurrently, merged into one set unique by id.

Each walk runs in its own thread with its own `HubClient`. With one sort (and nothing that must
see the whole set first) records go to the sink as their page arrives. Otherwise a record is
final only when every walk has ended (its `found_by` must be complete), so each walk appends its
new records to the spool and memory holds only ids and ranks; `Walks.merge` then reads the spool
in the order the sorts were given. The output depends only on the Hub's answers, never on which
walk finished first. With a `StateStore`, every page is committed so that a later run resumes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import queue
import threading
import time
from array import array
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

from hfharvest.client import HubClient, Page
from hfharvest.errors import HubResponseError
from hfharvest.pacing import Pacer
from hfharvest.pageworker import PageReader
from hfharvest.retry import ratelimit_policy
from hfharvest.settings import Settings
from hfharvest.shaping import BodyError, Shaped, Shaper, WalkShape, output_line
from hfharvest.state import SortProgress, Spool, StateStore

log = logging.getLogger("hfharvest")

# Where records go: JSONL lines (each ending in a newline) and how many records they hold.
Sink = Callable[[bytes, int], None]
ClientFactory = Callable[[Callable[[float], None]], HubClient]


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


@dataclass
class _Walk:
    """One sort's walk while it runs; only its own thread writes to it."""

    sort: str
    index: int
    progress: SortProgress
    seen: Seen
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


def walk_all(
    settings: Settings,
    observer: Observer,
    *,
    spool: Spool | None,
    store: StateStore | None = None,
    sink: Sink | None = None,
    make_client: ClientFactory | None = None,
) -> Walks:
    """Walk every sort; stream to `sink` if given, else append new records to `spool`."""
    progress = store.progress if store else {s: SortProgress() for s in settings.sorts}
    seen = Seen(len(settings.sorts))
    walks = [
        _Walk(sort, index, dataclasses.replace(progress[sort]), seen)
        for index, sort in enumerate(settings.sorts)
    ]
    if store is not None:
        for index, rank, repo_id in store.spool.ids():
            seen.add(index, repo_id, rank)
    outcome = Walks(walks, seen, spool)
    cancel = threading.Event()
    commit_lock = threading.Lock()
    pacer = Pacer(settings.max_rps)  # one rate-limit budget for every walk

    def client_for_walk() -> HubClient:
        sleep = _cancellable_sleep(cancel)
        if make_client:
            return make_client(sleep)
        return HubClient(settings, sleep=sleep, pacer=pacer)

    context = _WalkContext(settings, observer, spool, store, sink, commit_lock, cancel)

    def run(walk: _Walk) -> None:
        try:
            _walk(walk, client_for_walk(), context)
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


@dataclass(frozen=True)
class _WalkContext:
    """What every walk shares: settings, where records go, and the lock around commits."""

    settings: Settings
    observer: Observer
    spool: Spool | None
    store: StateStore | None
    sink: Sink | None
    commit_lock: threading.Lock
    cancel: threading.Event


def _cancellable_sleep(cancel: threading.Event) -> Callable[[float], None]:
    def sleep(seconds: float) -> None:
        if cancel.wait(seconds):
            raise _Cancelled

    return sleep


def _walk(walk: _Walk, client: HubClient, context: _WalkContext) -> None:
    progress = walk.progress
    limit = context.settings.limit
    started, seconds_before = time.monotonic(), progress.seconds  # a resumed walk adds to its time
    reader = _reader(walk, context)
    pages = client.pages(walk.sort, reader, on_retry=walk.count_retry, start=progress.next_url)
    try:
        for page in _prefetched(pages, context.cancel):
            shaped = _take(reader, page)
            progress.returned += shaped.returned
            progress.skipped += shaped.skipped
            stopped = limit is not None and progress.returned >= limit
            _advance(progress, page, reached_end=shaped.returned == shaped.entries, stopped=stopped)
            progress.seconds = seconds_before + time.monotonic() - started
            _deliver(walk, shaped, context)
            context.observer.page_done(walk.sort, progress.returned, progress.pages)
            if walk.index == 0 and progress.pages == 1 and _walks_everything(context.settings):
                log.warning("%s", whole_hub_warning(context.settings, page.rate_policy))
            if progress.done:
                break
            if context.cancel.is_set():  # after the commit: a page that came is never lost
                raise _Cancelled
    finally:
        client.close()
        reader.close()
    if not progress.reached_end and context.settings.limit is not None:
        log.warning(
            "sort %s stopped at --limit %d; the Hub had more", walk.sort, context.settings.limit
        )


# Orders of magnitude, for a warning only (hub-api.md, "Scale"; the Hub gives no total count).
CATALOG_SIZE = {
    "model": "over 2 million",
    "dataset": "about 1.5 million",
    "space": "about 1.5 million",
}
_CATALOG_ENTRIES = {"model": 2_000_000, "dataset": 1_500_000, "space": 1_500_000}


def _walks_everything(settings: Settings) -> bool:
    return settings.limit is None and not settings.filtered


def whole_hub_warning(settings: Settings, rate_policy: str | None) -> str:
    """What an unfiltered walk without --limit costs, in pages and, from the quota, in time."""
    pages = -(-_CATALOG_ENTRIES[settings.repo_type] // settings.page_size)
    requests = pages * len(settings.sorts)
    size = CATALOG_SIZE[settings.repo_type]
    text = (
        f"no filter and no --limit: this walks the whole listing (on the Hub, {size} "
        f"{settings.repo_type}s: about {pages:,} pages per sort, {requests:,} requests in all)"
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


class _End:
    """What the fetching thread hands over last: the walk's end, or the error that ended it."""

    def __init__(self, error: BaseException | None = None) -> None:
        self.error = error


def _prefetched(pages: Iterator[Page], cancel: threading.Event) -> Iterator[Page]:
    """Fetch page k+1 in a thread of its own while the caller works on page k.

    The network wait and the Hub's own work then overlap the shaping and writing of the page
    before (and with a page worker, the fetching does not wait for the shaping at all).
    """
    handover: queue.Queue[Page | _End] = queue.Queue(maxsize=1)
    stop = threading.Event()

    def put(item: Page | _End) -> None:
        while not stop.is_set():  # the walk has gone: nobody will take it
            with contextlib.suppress(queue.Full):
                handover.put(item, timeout=0.1)
                return

    def fetch() -> None:
        try:
            for page in pages:
                put(page)
        except BaseException as exc:  # handed to the walk, which raises it as its own
            put(_End(exc))
        else:
            put(_End())

    threading.Thread(target=fetch, name="prefetch", daemon=True).start()
    try:
        while True:
            try:
                item = handover.get(timeout=0.1)
            except queue.Empty:
                if cancel.is_set():  # another walk failed; this one's next page is not needed
                    raise _Cancelled from None
                continue
            if isinstance(item, _End):
                if item.error is not None:
                    raise item.error
                return
            yield item
    finally:
        stop.set()


def _advance(progress: SortProgress, page: Page, *, reached_end: bool, stopped: bool) -> None:
    progress.pages += 1
    progress.next_url = page.next_url
    progress.reached_end = page.next_url is None and reached_end
    progress.done = stopped or page.next_url is None


def _take(reader: PageReader, page: Page) -> Shaped:
    try:
        return reader.take()
    except BodyError as exc:  # found by the page worker, once the walk had gone on
        raise HubResponseError(
            200,
            page.url,
            f"the body had the shape of a JSON array but is no page of entries ({exc})",
            hint="run again; with --state the walk goes on from this page",
        ) from None


def _reader(walk: _Walk, context: _WalkContext) -> PageReader:
    settings = context.settings
    shape = WalkShape(
        repo_type=settings.repo_type,
        sort=walk.sort,
        sort_index=walk.index,
        streaming=context.sink is not None,
        with_raw=settings.raw,
    )
    shaper = Shaper(shape, returned=walk.progress.returned, limit=settings.limit)
    return PageReader(shaper, offload=settings.page_worker)


def _deliver(walk: _Walk, shaped: Shaped, context: _WalkContext) -> None:
    """Send a page's new records on: to the output (streaming), or durably to the spool.

    A record is new when this sort has not returned its id before (a repeat is a duplicate).
    """
    add, index = walk.seen.add, walk.index
    new = [add(index, id_, rank) for id_, rank in zip(shaped.ids, shaped.ranks, strict=True)]
    lines = shaped.kept(new)
    if context.sink is not None:
        context.sink(lines, sum(new))
    with context.commit_lock:  # the page's records and progress together: a resume never sees half
        if lines and context.spool is not None:
            context.spool.append(lines)
        if context.store is not None:
            context.store.progress[walk.sort] = dataclasses.replace(walk.progress)
            context.store.commit()
