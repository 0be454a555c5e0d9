"""One fetch from settings to a finished snapshot: walk, guard, write, record.

This is the order of decisions a cron job relies on: the walks run, one thread each, their pages
merged as they come; they end (or fail); a failed sort fails the run unless `allow_partial`
(nothing written; every sort failed fails it too), as itself; `min_count` is checked next, on
what is left (nothing written); then the records are written all or nothing, the manifest after
them, and a `--state` is removed once the run is complete. The run returns one `Outcome`; an
error raised once the walks began carries the outcome so far.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from pathlib import Path

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
from hfharvest.settings import Settings
from hfharvest.sinks.base import Sink, Writable
from hfharvest.sinks.files import remove_empty
from hfharvest.sinks.pick import open_sink
from hfharvest.state import StateStore
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
# Opens the sink a run's final records go to, given what to tell the moment its file lands.
OpenSink = Callable[[Callable[[Written], None]], AbstractContextManager[Sink]]


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
    """Harvest into `settings.output` (or into `sink`, which the Python API opens); setting
    `stop` (from another thread) ends the walks at once, and this raises `Cancelled`. `landed`
    is told of each file as it lands."""
    store = _open_state(settings)
    if store is not None and store.resumed and store.bounds != settings.bounds:
        log.warning(
            "`state` %s began with other bounds (%s); its walks go on with those, not %s",
            settings.state,
            store.bounds.described(),
            settings.bounds.described(),
        )
        settings = dataclasses.replace(settings, bounds=store.bounds)
    runs = _Runs(settings, observer, store, make_source, stop, landed)
    secret = _secret(settings)
    opened = sink or (lambda on_landed: open_sink(settings.output, _given(stdout), on_landed))
    try:
        outcome = _walk_and_write(settings, runs, opened, store)
        if settings.manifest is not None:
            write_json(settings.manifest, redact_tree(build_manifest(settings, outcome), secret))
            drop_old_manifest(settings)
            if landed is not None:
                landed(settings.manifest, outcome)
    except BaseException as exc:
        redact_error(exc, secret)  # whatever the server echoed, the token leaves in no error
        if isinstance(exc, HarvestError) and exc.outcome is None:
            exc.outcome = runs.outcome
        raise
    finally:
        if store is not None:
            store.close()
        if runs.outcome is None or runs.outcome.written is None:
            remove_empty(settings.made)  # nothing written: no folder made for it is left
    return outcome


def _walk_and_write(
    settings: Settings, runs: _Runs, open_sink: OpenSink, store: StateStore | None
) -> Outcome:
    # Records stream out as they come only when nothing must see the whole set first.
    sorts = settings.query.sorts
    if len(sorts) == 1 and store is None and settings.min_count is None:
        with open_sink(runs.landed) as sink:
            runs.walk(Merge(sorts, raw=settings.raw, sink=sink), sink)
        return runs.wrote(sink.written())
    spool = store.spool if store else Spool.temporary()
    try:
        merge = Merge(sorts, raw=settings.raw, spool=spool, commit=store.commit if store else None)
        runs.walk(merge, None)
        # The output's temporary file is made only now: a run killed mid-walk leaves none.
        with open_sink(runs.landed) as sink:
            merge.write(sink)
    finally:
        if store is None:
            spool.close()
    return runs.wrote(sink.written())


def _given(stdout: Writable | None) -> Writable:
    if stdout is None:
        raise ValueError("run_fetch needs `stdout` or a `sink`")
    return stdout


def _secret(settings: Settings) -> str | None:
    token = settings.transport.token
    return token.value if token else None


def _open_state(settings: Settings) -> StateStore | None:
    """The `--state` to walk with: a fresh one, or the one its job left, said on stderr."""
    if settings.state is None:
        return None
    store = StateStore.open(
        settings.state,
        settings.job(),
        settings.query.sorts,
        settings.bounds,
        now=settings.started,
        max_age=settings.state_max_age,
        secret=_secret(settings),
    )
    try:
        for sort, progress in store.progress.items():
            if progress.next_url is not None:
                _check_resumed(settings, sort, progress.next_url)
    except UsageError:
        store.close()  # refused: the lock is not kept
        raise
    if store.discarded is not None:
        log.warning(
            "`state` %s not resumed: %s; the walks start over",
            settings.state,
            store.discarded,
            extra=RESULT,
        )
    elif store.resumed:
        done = ", ".join(f"{sort} {p.pages:,}" for sort, p in store.progress.items())
        log.warning(
            "resuming `state` %s: pages done before this run: %s",
            settings.state,
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


class _Runs:
    """The walks of one fetch, one thread each, and what they leave: counts and failures."""

    def __init__(
        self,
        settings: Settings,
        observer: Observer,
        store: StateStore | None,
        make_source: SourceFactory | None,
        stop: Cancel | None,
        landed: Landed | None = None,
    ) -> None:
        self.settings = settings
        self._landed = landed
        self._observer = observer
        self._stop = stop
        self._cancel = Cancel()
        if stop is not None:
            stop.future.add_done_callback(lambda _: self._cancel.set())
        transport = settings.transport  # one rate-limit budget for every walk:
        pacer = Pacer(transport.max_rps, transport.retry.max_wait)
        self._make_source = make_source or (lambda sleep: self._client(pacer, sleep))
        query = settings.query
        self.plans = settings.plans()
        self._stalled = [0] * len(query.sorts)  # pages in a row with no id new to each walk
        self._store = store
        self.resumed = store is not None and store.resumed
        self.pages_before = store.pages_before if store else 0
        # Each walk's counts, page by page: where a resumed walk starts, then its latest page's.
        self.last = [store.progress[s] if store else SortStats(s) for s in query.sorts]
        self.failures: list[tuple[int, BaseException]] = []  # (walk, error), in their order
        self.outcome: Outcome | None = None  # once the walks have ended
        self._lock = threading.Lock()
        self._warns_cost = first_unbounded(settings)

    def walk(self, merge: Merge, sink: Sink | None) -> None:
        """Every walk, to its end or its failure; then the guards."""
        for sort in self.settings.bounds.unstoppable(self.settings.query.sorts):
            log.warning(
                "sort %s cannot stop early at the bounds: it walks to the end (its entries below "
                "them are counted, not written)",
                sort,
            )
        # Daemon threads: an interrupted run must be able to exit without waiting for a read.
        threads = [
            threading.Thread(target=self._run, args=(i, merge, sink), name=plan.sort, daemon=True)
            for i, plan in enumerate(self.plans)
            if not self.last[i].done
        ]
        try:
            for thread in threads:
                thread.start()
            self._join(threads)
        except BaseException:  # a signal: no page is committed after this, none left half done
            self._cancel.set()
            merge.hold()
            raise
        finally:
            self._cancel.set()
        if self._stop is not None and self._stop.is_set():
            raise Cancelled
        if self._store is not None and all(stats.done for stats in self.last):
            self._store.remove()  # whatever the guards decide: the next run walks afresh
        stats, unique = merge.counted(self.last)
        self.outcome = Outcome(stats, unique, resumed=self.resumed, pages_before=self.pages_before)
        self._guard(self.outcome)

    def _client(self, pacer: Pacer, sleep: Callable[[float], None]) -> HubClient:
        """A walk's client, whose answer under way a cancel cuts short (a page in flight from a
        server that takes its time does not hold a stopping run)."""
        client = HubClient(self.settings.transport, sleep=sleep, pacer=pacer)
        self._cancel.future.add_done_callback(lambda _: client.abort())
        return client

    def _join(self, threads: list[threading.Thread]) -> None:
        """Wait for the walks; past `max_time`, fail those still going and stop them."""
        limit = self.settings.max_time
        ends = None if limit is None else time.monotonic() + limit
        for thread in threads:
            thread.join(None if ends is None else max(ends - time.monotonic(), 0.0))
        if all(not thread.is_alive() for thread in threads):
            return
        with self._lock:
            for index, stats in enumerate(self.last):
                if not stats.done and not any(i == index for i, _ in self.failures):
                    error = MaxTimeError(
                        f"sort {stats.sort} had not ended when the run reached `max_time` "
                        f"{limit:g} s ({stats.pages:,} pages done); stopped there",
                        hint="raise `max_time`; with `state`, the next run goes on from here",
                    )
                    self.last[index] = dataclasses.replace(stats, error=str(error))
                    self.failures.append((index, error))
        self._cancel.set()
        for thread in threads:
            thread.join()

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

    def _run(self, index: int, merge: Merge, sink: Sink | None) -> None:
        walk = Walk(self.plans[index], self._make_source(self._cancel.sleep), self.last[index])
        try:
            for fetched in read_ahead(walk.fetched(), self._cancel):
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
                self._cancel.set()  # a closed stdout ends the run, partial or not
            return

    def _fatal(self, error: BaseException, index: int) -> bool:
        """What ends the run even with `allow_partial`: a closed stdout, and the Hub refusing a
        sort hfharvest does not know on its first page (a typo must not become a partial
        snapshot)."""
        refused = isinstance(error, HubResponseError) and error.status == 400
        unknown = self.plans[index].sort not in SORTS and self.last[index].pages == 0
        return isinstance(error, BrokenPipeError) or (refused and unknown)

    def _took(self, index: int, page: WalkPage, merge: Merge, sink: Sink | None) -> None:
        fresh = merge.take(index, page)
        if sink is not None:
            sink.flush()  # streaming: a page's records leave as the page is done
        stats = self.last[index] = page.stats
        self._stalled[index] = 0 if fresh else self._stalled[index] + 1
        if self._stalled[index] >= STALLED and not stats.done:
            raise NoProgressError(
                f"sort {stats.sort}: {STALLED} pages in a row brought no id new to the walk "
                f"(next link: {redact(stats.next_url or '', _secret(self.settings))}); stopping: "
                "such a listing never ends",
                hint="the server at `endpoint` is not behaving as the Hub does; try later",
            )
        self._observer.page_done(stats.sort, stats.returned, stats.pages)
        if stats.pages == 1 and index == self._warns_cost:
            log.warning("%s", whole_listing_warning(self.settings, page.rate_policy))

    def _guard(self, outcome: Outcome) -> None:
        """Refuse to write what must not replace yesterday's snapshot."""
        settings = self.settings
        fatal = [error for index, error in self.failures if self._fatal(error, index)]
        if fatal:
            raise fatal[0]
        # A failure is told as itself: "only 0 came back" would hide that the Hub was down.
        all_failed = len(outcome.failed) == len(outcome.stats)
        if self.failures and (not settings.allow_partial or all_failed):
            raise self.failures[0][1]
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
            raise TooFewRecordsError(
                f"only {outcome.unique:,} unique {settings.query.repo_type}s came back, fewer "
                f"than `min_count` {settings.min_count:,}; nothing was written",
                hint="an earlier file is untouched; check the filters, or lower `min_count`",
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
