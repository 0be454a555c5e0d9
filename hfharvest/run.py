"""One fetch from settings to a finished snapshot: walk, guard, write, record.

This is the order of decisions a cron job relies on: the walks run, one thread each, their pages
merged as they come; they end (or fail); a failed sort fails the run unless `allow_partial`
(nothing written; every sort failed fails it too), as itself; `min_count` is checked next, on
what is left (nothing written); then the records are written all or nothing, the manifest after
them, and a `--state` is removed once the run is complete. The run returns one `Outcome`; an
error raised once the walks began carries the outcome so far.

Several listings (`repo_type` several types) are one run: their walks all at once under one
rate-limit budget, one `state` (its walks keyed `type:sort`, its spool shared), the guards above
applied to every listing before any file is written (with `allow_partial`, a listing whose every
walk failed is left out), then a file and a manifest a listing.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

from hfharvest.ahead import Cancel, Cancelled, read_ahead
from hfharvest.client import HubClient
from hfharvest.errors import (
    HarvestError,
    HubResponseError,
    MaxTimeError,
    NoProgressError,
    TooFewRecordsError,
    UsageError,
    redact,
    redact_error,
    redact_tree,
)
from hfharvest.hub import SORTS
from hfharvest.manifest import build_manifest, drop_old_manifest, write_json
from hfharvest.merge import Merge, Spool
from hfharvest.outcome import Observer, Outcome, SortStats, Written
from hfharvest.pacing import Pacer
from hfharvest.plan import first_unbounded, whole_listing_warning
from hfharvest.settings import Settings, walk_names
from hfharvest.sinks.base import Sink, Writable
from hfharvest.sinks.files import remove_empty
from hfharvest.sinks.pick import open_sink
from hfharvest.state import StateStore
from hfharvest.transport import Transport
from hfharvest.urls import UnsafeURL, leaves_listing, origin
from hfharvest.walk import PageSource, Walk, WalkPage

log = logging.getLogger("hfharvest")
STALLED = 3  # pages in a row that bring no id new to their walk: a listing that never ends
# A warning about the result itself (a state resumed or discarded, nothing found): shown even
# when the CLI is told to be quiet.
RESULT = {"result": True}

# Makes a walk's page source, given the walk's sleep (which a cancel cuts short).
SourceFactory = Callable[[Callable[[float], None]], PageSource]
# Told of each file of the run the moment it is in place (the data file, then the manifest), with
# the outcome: a run stopped right after still says what it wrote.
Landed = Callable[[Path, Outcome], None]
# Opens the sink a listing's final records go to, given its settings and what to tell the moment
# its file lands.
OpenSink = Callable[[Settings, Callable[[Written], None]], AbstractContextManager[Sink]]


def run_fetch(
    settings: Settings,
    stdout: Writable | None,
    observer: Observer,
    *,
    make_source: SourceFactory | None = None,
    stop: Cancel | None = None,
    landed: Landed | None = None,
    sink: OpenSink | None = None,
) -> Outcome:
    """Harvest one listing into `settings.output` (or into `sink`, which the Python API opens);
    setting `stop` (from another thread) ends the walks at once, and this raises `Cancelled`.
    `landed` is told of each file as it lands."""
    return run_fetches(
        (settings,), stdout, observer, make_source=make_source, stop=stop, landed=landed, sink=sink
    )[0]


def run_fetches(
    each: Sequence[Settings],
    stdout: Writable | None,
    observer: Observer,
    *,
    make_source: SourceFactory | None = None,
    stop: Cancel | None = None,
    landed: Landed | None = None,
    sink: OpenSink | None = None,
) -> tuple[Outcome, ...]:
    """Harvest several listings (one `Settings` a type, from `settings.resolve_each`) side by side
    under one rate-limit budget and one `state`: every walk of every listing runs at once, the
    guards see them all before any file is written, then each listing is written to its own
    output, its manifest after it. Returns an `Outcome` a listing, in the order given."""
    store = _open_state(each)
    if store is not None and store.resumed and store.bounds != each[0].bounds:
        log.warning(
            "`state` %s began with other bounds (%s); its walks go on with those, not %s",
            each[0].state,
            store.bounds.described(),
            each[0].bounds.described(),
        )
        each = [dataclasses.replace(settings, bounds=store.bounds) for settings in each]
    walks = _Walks(each, observer, store, make_source, stop, landed)
    secret = _secret(each[0])

    def to_output(
        settings: Settings, on_landed: Callable[[Written], None]
    ) -> AbstractContextManager[Sink]:
        return open_sink(settings.output, _given(stdout), on_landed)

    try:
        outcomes = walks.walk_and_write(sink or to_output)
        for listing in walks.listings:
            listing.write_manifest(secret)
    except BaseException as exc:
        redact_error(exc, secret)  # whatever the server echoed, the token leaves in no error
        if isinstance(exc, HarvestError):
            exc.outcomes = exc.outcomes or walks.outcomes()
            if exc.outcome is None and len(walks.listings) == 1:
                exc.outcome = walks.listings[0].outcome
        raise
    finally:
        if store is not None:
            store.close()
        for listing in walks.listings:  # nothing written: no folder made for it is left
            if listing.outcome is None or listing.outcome.written is None:
                remove_empty(listing.settings.made)
    return outcomes


def _given(stdout: Writable | None) -> Writable:
    if stdout is None:
        raise ValueError("run_fetch needs `stdout` or a `sink`")
    return stdout


def _secret(settings: Settings) -> str | None:
    token = settings.transport.token
    return token.value if token else None


def _open_state(each: Sequence[Settings]) -> StateStore | None:
    """The one `--state` of the run, whatever its listings, or the one its job left, said."""
    first = each[0]
    if first.state is None:
        return None
    keys = tuple(key for settings in each for key in walk_names(settings, len(each)))
    job: Mapping[str, Any] = (
        first.job() if len(each) == 1 else {s.query.repo_type: s.job() for s in each}
    )
    store = StateStore.open(
        first.state,
        job,
        keys,
        first.bounds,
        now=first.started,
        max_age=first.state_max_age,
        secret=_secret(first),
    )
    try:
        for settings in each:
            for sort, key in zip(
                settings.query.sorts, walk_names(settings, len(each)), strict=True
            ):
                next_url = store.progress[key].next_url
                if next_url is not None:
                    _check_resumed(settings, sort, next_url)
    except UsageError:
        store.close()  # refused: the lock is not kept
        raise
    if store.discarded is not None:
        log.warning(
            "`state` %s not resumed: %s; the walks start over",
            first.state,
            store.discarded,
            extra=RESULT,
        )
    elif store.resumed:
        done = ", ".join(f"{key} {p.pages:,}" for key, p in store.progress.items())
        log.warning(
            "resuming `state` %s: pages done before this run: %s",
            first.state,
            done,
            extra=RESULT,
        )
    return store


def _check_resumed(settings: Settings, sort: str, url: str) -> None:
    """A state's cursor is followed only where a next link would be: the endpoint's origin, read
    one way, and the walk's own listing (a state file can be edited by hand, or by another)."""
    try:
        same = origin(url) == origin(settings.transport.endpoint)
        why = None if same else "it names another origin than `endpoint`"
    except UnsafeURL as exc:
        why = f"it cannot be read one way only: {exc}"
    why = why or leaves_listing(settings.first_url(sort), url)
    if why is not None:
        raise UsageError(
            f"`state` {settings.state}: the cursor of sort {sort} is not one to follow ({why})",
            parameter="state",
            value=settings.state,
            hint=f"delete {settings.state} and its .spool to start over",
        )


class _Walks:
    """Every walk of a fetch, one thread each, whatever its listing: one cancel that stops them
    all, one rate-limit budget, one `max_time`; the guards see every listing before any is
    written."""

    def __init__(
        self,
        each: Sequence[Settings],
        observer: Observer,
        store: StateStore | None,
        make_source: SourceFactory | None,
        stop: Cancel | None,
        landed: Landed | None,
    ) -> None:
        self._stop = stop
        self._store = store
        self.cancel = Cancel()
        if stop is not None:
            stop.future.add_done_callback(lambda _: self.cancel.set())
        transport = each[0].transport  # one rate-limit budget for every walk:
        pacer = Pacer(transport.max_rps, transport.retry.max_wait)
        source = make_source or (lambda sleep: self._client(transport, pacer, sleep))
        self.lock = threading.Lock()  # a page's spool lines and the state's commit, together
        self._warning = threading.Lock()  # the whole-listing warning, once for the run
        self._cost_warned = False
        self.listings: list[_Listing] = []
        first = 0
        for settings in each:
            listing = _Listing(settings, len(each), observer, store, source, self, first, landed)
            self.listings.append(listing)
            first += len(settings.query.sorts)

    def warn_cost(self, rate_policy: str | None) -> None:
        """Warn, once for the run, of what its whole-listing walks cost under the one quota they
        share (the first of them to have a page asks)."""
        with self._warning:
            if self._cost_warned:
                return
            self._cost_warned = True
        each = [listing.settings for listing in self.listings]
        log.warning("%s", whole_listing_warning(each, rate_policy))

    def outcomes(self) -> tuple[Outcome, ...] | None:
        """Each listing's outcome, once the walks have ended."""
        outcomes = tuple(listing.outcome for listing in self.listings)
        return None if any(o is None for o in outcomes) else cast(tuple[Outcome, ...], outcomes)

    def _client(
        self, transport: Transport, pacer: Pacer, sleep: Callable[[float], None]
    ) -> HubClient:
        """A walk's client, whose answer under way a cancel cuts short (a page in flight from a
        server that takes its time does not hold a stopping run)."""
        client = HubClient(transport, sleep=sleep, pacer=pacer)
        self.cancel.future.add_done_callback(lambda _: client.abort())
        return client

    def walk_and_write(self, open_sink: OpenSink) -> tuple[Outcome, ...]:
        # Records stream out as they come only when nothing must see the whole set first.
        listings, store = self.listings, self._store
        if len(listings) == 1 and listings[0].streams(store):
            listing = listings[0]
            with open_sink(listing.settings, listing.landed) as sink:
                self.walk([listing.merge_into(sink)], sink)
            return (listing.wrote(sink.written()),)
        spool = store.spool if store else Spool.temporary()
        try:
            merges = [listing.merge(spool, self.lock) for listing in listings]
            self.walk(merges, None)
            # The outputs' temporary files are made only now: a run killed mid-walk leaves none.
            for listing, merge in zip(listings, merges, strict=True):
                if listing.to_write:
                    with open_sink(listing.settings, listing.landed) as sink:
                        merge.write(sink)
                    listing.wrote(sink.written())
        finally:
            if store is None:
                spool.close()
        return tuple(cast(Outcome, listing.outcome) for listing in listings)

    def walk(self, merges: list[Merge], sink: Sink | None) -> None:
        """Every walk, to its end or its failure; then the guards."""
        threads = []
        for listing, merge in zip(self.listings, merges, strict=True):
            listing.warn_unstoppable()
            threads += listing.threads(merge, sink)
        try:
            for thread in threads:
                thread.start()
            self._join(threads)
        except BaseException:  # a signal: no page is committed after this, none left half done
            self.cancel.set()
            merges[0].hold()  # one lock: a streamed run's one merge, or the spool's, shared
            raise
        finally:
            self.cancel.set()
        if self._stop is not None and self._stop.is_set():
            raise Cancelled
        if self._store is not None and all(listing.done for listing in self.listings):
            self._store.remove()  # whatever the guards decide: the next run walks afresh
        for listing, merge in zip(self.listings, merges, strict=True):
            listing.counted(merge)
        self._guard()

    def _join(self, threads: list[threading.Thread]) -> None:
        """Wait for the walks; past `max_time`, fail those still going and stop them."""
        limit = self.listings[0].settings.max_time
        ends = None if limit is None else time.monotonic() + limit
        for thread in threads:
            thread.join(None if ends is None else max(ends - time.monotonic(), 0.0))
        if all(not thread.is_alive() for thread in threads):
            return
        assert limit is not None, "a walk still going with no `max_time`"
        for listing in self.listings:
            listing.out_of_time(limit)
        self.cancel.set()
        for thread in threads:
            thread.join()

    def _guard(self) -> None:
        """Refuse to write what must not replace yesterday's snapshot: for any listing, nothing
        is written."""
        listings = self.listings
        for listing in listings:
            fatal = listing.fatal_error()
            if fatal is not None:
                raise listing.told(fatal)
        failing = [listing for listing in listings if listing.failures]
        partial = listings[0].settings.allow_partial
        # A failure is told as itself: "only 0 came back" would hide that the Hub was down.
        if failing and (not partial or all(listing.all_failed for listing in listings)):
            raise failing[0].told(failing[0].failures[0][1])
        for listing in listings:
            listing.to_write = not listing.all_failed
            if listing.to_write:
                listing.check_count()


class _Listing:
    """The walks of one listing (one type): their plans, counts and failures, and its outcome."""

    def __init__(
        self,
        settings: Settings,
        listings: int,
        observer: Observer,
        store: StateStore | None,
        make_source: SourceFactory,
        walks: _Walks,
        first: int,
        landed: Landed | None,
    ) -> None:
        self.settings = settings
        self._landed = landed
        self._observer = observer
        self._walks = walks
        self._make_source = make_source
        self._first = first
        self._store = store
        query = settings.query
        # What each sort's walk is called: in messages, and as its key in the state.
        self._names = dict(zip(query.sorts, walk_names(settings, listings), strict=True))
        self.plans = [
            dataclasses.replace(plan, name=self._names[plan.sort]) for plan in settings.plans()
        ]
        self._stalled = [0] * len(query.sorts)  # pages in a row with no id new to each walk
        # Each walk's counts, page by page: where a resumed walk starts, then its latest page's.
        self.last = [
            dataclasses.replace(store.progress[name], sort=sort) if store else SortStats(sort)
            for sort, name in self._names.items()
        ]
        self.resumed = store is not None and store.resumed
        self.pages_before = sum(stats.pages for stats in self.last) if store else 0
        self.failures: list[tuple[int, BaseException]] = []  # (walk, error), in their order
        self.outcome: Outcome | None = None  # once the walks have ended
        self.to_write = True  # false once the guards find every walk of it failed
        self._lock = threading.Lock()
        self._warns_cost = first_unbounded(settings)

    def streams(self, store: StateStore | None) -> bool:
        """Whether its records can go out as their page comes: nothing must see the whole set."""
        settings = self.settings
        return len(settings.query.sorts) == 1 and store is None and settings.min_count is None

    def merge_into(self, sink: Sink) -> Merge:
        """Its merge straight into `sink` (one sort: each record final as its page comes)."""
        return Merge(self.settings.query.sorts, raw=self.settings.raw, sink=sink)

    def merge(self, spool: Spool, lock: threading.Lock) -> Merge:
        """Its merge into the run's spool, its sorts numbered from `first` there."""
        settings = self.settings
        commit = None if self._store is None else self._commit
        return Merge(
            settings.query.sorts,
            raw=settings.raw,
            spool=spool,
            commit=commit,
            first=self._first,
            lock=lock,
        )

    def _commit(self, stats: SortStats) -> None:
        assert self._store is not None
        self._store.commit(stats, self._names[stats.sort])

    @property
    def done(self) -> bool:
        return all(stats.done for stats in self.last)

    @property
    def all_failed(self) -> bool:
        return len(self.failures) == len(self.last)

    def warn_unstoppable(self) -> None:
        for sort in self.settings.bounds.unstoppable(self.settings.query.sorts):
            log.warning(
                "sort %s cannot stop early at the bounds: it walks to the end (its entries below "
                "them are counted, not written)",
                self._names[sort],
            )

    def threads(self, merge: Merge, sink: Sink | None) -> list[threading.Thread]:
        """A thread a walk that has not ended. Daemon threads: an interrupted run must be able
        to exit without waiting for a read."""
        return [
            threading.Thread(target=self._run, args=(i, merge, sink), name=plan.sort, daemon=True)
            for i, plan in enumerate(self.plans)
            if not self.last[i].done
        ]

    def out_of_time(self, limit: float) -> None:
        """The run reached `max_time`: each walk still going fails."""
        with self._lock:
            for index, stats in enumerate(self.last):
                if not stats.done and not any(i == index for i, _ in self.failures):
                    error = MaxTimeError(
                        f"sort {self._names[stats.sort]} had not ended when the run reached "
                        f"`max_time` {limit:g} s ({stats.pages:,} pages done); stopped there",
                        hint="raise `max_time`; with `state`, the next run goes on from here",
                    )
                    self.last[index] = dataclasses.replace(stats, error=str(error))
                    self.failures.append((index, error))

    def counted(self, merge: Merge) -> None:
        stats, unique = merge.counted(self.last)
        self.outcome = Outcome(stats, unique, resumed=self.resumed, pages_before=self.pages_before)

    def landed(self, written: Written) -> None:
        """The data file is in place: the outcome says so from now on, whatever comes next."""
        outcome = self.wrote(written)
        if self._landed is not None and written.path is not None:
            self._landed(written.path, outcome)

    def wrote(self, written: Written) -> Outcome:
        """The outcome, once the output is complete."""
        assert self.outcome is not None, "the walks have not ended"
        self.outcome = dataclasses.replace(self.outcome, written=written, ended=datetime.now(UTC))
        return self.outcome

    def write_manifest(self, secret: str | None) -> None:
        settings, outcome = self.settings, self.outcome
        if settings.manifest is None or outcome is None or outcome.written is None:
            return
        write_json(settings.manifest, redact_tree(build_manifest(settings, outcome), secret))
        drop_old_manifest(settings)
        if self._landed is not None:
            self._landed(settings.manifest, outcome)

    def _run(self, index: int, merge: Merge, sink: Sink | None) -> None:
        cancel = self._walks.cancel
        walk = Walk(self.plans[index], self._make_source(cancel.sleep), self.last[index])
        try:
            for fetched in read_ahead(walk.fetched(), cancel):
                self._took(index, walk.take(fetched), merge, sink)
        except Cancelled:
            return
        except BaseException as exc:  # handed to the caller, which decides what it means
            error = redact(str(exc), _secret(self.settings))  # counts a caller sees, too
            self.last[index] = dataclasses.replace(
                self.last[index], retries=walk.retries, error=error
            )
            with self._lock:
                self.failures.append((index, exc))
            if not self.settings.allow_partial or self._fatal(exc, index):
                cancel.set()  # a closed stdout ends the run, partial or not
            return

    def _fatal(self, error: BaseException, index: int) -> bool:
        """What ends the run even with `allow_partial`: a closed stdout, and the Hub refusing a
        sort hfharvest does not know on its first page (a typo must not become a partial
        snapshot)."""
        refused = isinstance(error, HubResponseError) and error.status == 400
        unknown = self.plans[index].sort not in SORTS and self.last[index].pages == 0
        return isinstance(error, BrokenPipeError) or (refused and unknown)

    def fatal_error(self) -> BaseException | None:
        return next((error for i, error in self.failures if self._fatal(error, i)), None)

    def told(self, error: BaseException) -> BaseException:
        """`error`, carrying this listing's outcome, to be raised."""
        if isinstance(error, HarvestError) and error.outcome is None:
            error.outcome = self.outcome
        return error

    def _took(self, index: int, page: WalkPage, merge: Merge, sink: Sink | None) -> None:
        fresh = merge.take(index, page)
        if sink is not None:
            sink.flush()  # streaming: a page's records leave as the page is done
        stats = self.last[index] = page.stats
        self._stalled[index] = 0 if fresh else self._stalled[index] + 1
        if self._stalled[index] >= STALLED and not stats.done:
            raise NoProgressError(
                f"sort {self._names[stats.sort]}: {STALLED} pages in a row brought no id new to "
                f"the walk (next link: {redact(stats.next_url or '', _secret(self.settings))}); "
                "stopping: such a listing never ends",
                hint="the server at `endpoint` is not behaving as the Hub does; try later",
            )
        self._observer.page_done(self._names[stats.sort], stats.returned, stats.pages)
        if stats.pages == 1 and index == self._warns_cost:
            self._walks.warn_cost(page.rate_policy)

    def check_count(self) -> None:
        """A listing to be written: nothing came back is said; fewer than `min_count` refused."""
        settings, outcome = self.settings, self.outcome
        assert outcome is not None
        if outcome.unique == 0 and not self.failures:
            if settings.bounds and any(s.below_bound for s in outcome.stats):
                # A quiet day for a bounded job: no mistake, so `-q` does not show it.
                below = sum(s.below_bound for s in outcome.stats)
                log.warning(
                    "%s (the walks returned %s, none within the bound)",
                    settings.bounds.nothing_passed(),
                    f"{below:,} entr{'y' if below == 1 else 'ies'}",
                )
            else:
                log.warning("%s", _nothing_found(settings), extra=RESULT)
        if settings.min_count is not None and outcome.unique < settings.min_count:
            raise self.told(
                TooFewRecordsError(
                    f"only {outcome.unique:,} unique {settings.query.repo_type}s came back, "
                    f"fewer than `min_count` {settings.min_count:,}; nothing was written",
                    hint="an earlier file is untouched; check the filters, or lower `min_count`",
                )
            )


def _nothing_found(settings: Settings) -> str:
    """The empty result's warning: what was asked, so that a typo shows."""
    query = settings.query
    asked = [
        (name, value)
        for name, value in (
            ("search", query.search),
            ("author", query.author),
            ("filter", ", ".join(query.filters)),
            ("pipeline_tag", query.pipeline_tag),
            ("inference_provider", ", ".join(query.inference_providers)),
        )
        if value
    ]
    sent = "; ".join(f"`{name}` {value}" for name, value in asked) or "no filter"
    return (
        f"no {query.repo_type}s came back ({sent}): check the names; `min_count` makes an "
        "empty result a failure"
    )
