"""One sort's walk: pages in, records out, with the limit, the bounds and the counts.

A walk reads pages from a `PageSource` (`HubClient`, or a few lines of fake in a test), turns
each entry into a record once, and yields per page the records that pass, each with its rank
(the 1-based position among the sort's returned entries), and the walk's counts so far. It asks
for no page it does not need: it stops after the page that reaches `limit` or crosses its bound.
It knows nothing of other sorts, threads or files: the merge decides what is new.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any, NamedTuple, Protocol

from hfharvest.bounds import Bounds, WalkBound
from hfharvest.client import Page
from hfharvest.normalize import OUT_OF_RANGE, emissions, normalize, oversized
from hfharvest.outcome import SortStats, Stop

log = logging.getLogger("hfharvest")
OVERSIZED = (
    "an entry of sort %s (%s) has %s past what a record holds (64 bits, a finite number): "
    "skipped, as no record holds it exactly"
)
NULLED = (
    "an entry of sort %s (%s) has %s past what a record holds (64 bits, a finite number): "
    "written as null"
)
WITHHELD = (
    "sort %s, page %d: %d entr%s carried the token (the server echoes it): skipped, never written"
)


class PageSource(Protocol):
    """Where a walk's pages come from: `HubClient`, or a few lines of fake in a test."""

    def pages(
        self,
        url: str,
        *,
        label: str = ...,
        on_retry: Callable[[], None] = ...,
        page_size: int | None = ...,
        listing: str | None = ...,
    ) -> Iterator[Page]: ...

    def close(self) -> None: ...


class Ranked(NamedTuple):
    """A record that passed, the rank its sort returned it at, and the API object it came from."""

    rank: int
    record: dict[str, Any]
    raw: Any


@dataclass(frozen=True)
class WalkPage:
    """What one page gave a walk: the records that pass, and the walk's counts with this page."""

    records: list[Ranked]
    stats: SortStats
    rate_policy: str | None  # the RateLimit-Policy header: the quota and its window
    below: list[str] = field(default_factory=list)  # the ids of the records below the bounds


def _emitted(raw: Any, thresholds: tuple[float, float]) -> bool:
    """Whether an entry's card gives CO2 emissions within `emissions_thresholds`."""
    low, high = thresholds
    value = emissions(raw)
    return value is not None and low <= value <= high


@dataclass(frozen=True)
class WalkPlan:
    """What one walk needs to know: where it starts, and when it has enough."""

    sort: str
    first_url: str
    repo_type: str
    limit: int | None
    bounds: Bounds
    page_size: int
    max_pages: int | None
    emissions: tuple[float, float] | None  # `emissions_thresholds`: (MIN, MAX) kept
    name: str  # what messages call the walk: its sort, or beside other types `type:sort`

    @property
    def bound(self) -> WalkBound | None:
        return self.bounds.for_walk(self.sort)


@dataclass(frozen=True)
class Fetched:
    """A page as the fetching side hands it over: the entries the walk takes (the limit applied),
    the records of its last entries already made (for the bound), and whether it is the last."""

    page: Page
    entries: list[Any]
    made: dict[int, dict[str, Any] | None]  # entry index -> its record, for those already made
    crossed: bool  # the walk's bound is crossed on this page
    limited: Stop | None  # the walk's `limit` or `max_pages`, reached with this page
    last: bool


class Walk:
    """One sort's walk, from its first page or from where a resumed one stopped (`start`).

    `fetched()` fetches its pages and decides after each whether the next is needed (the limit,
    the bound): it runs one page ahead, in a thread of its own. `take()` turns a fetched page
    into records and counts, in the walk's own thread. Each entry becomes a record once: those
    the bound's check made are handed over, not made again. `retries` counts the retries so far
    (a failed page's too, which is why it lives outside the pages).
    """

    def __init__(self, plan: WalkPlan, source: PageSource, start: SortStats) -> None:
        self.plan = plan
        self.start = start
        self.stats = start
        self.retries = start.retries
        self._source = source
        self._began = time.monotonic()

    def count_retry(self) -> None:
        self.retries += 1

    def fetched(self) -> Iterator[Fetched]:
        """The walk's pages, as long as they are needed: to the end, to the limit (of entries,
        and of pages: a page brings one entry at least, so no more pages than entries asked for),
        to `max_pages`, or to the bound."""
        plan, returned, pages_done = self.plan, self.start.returned, self.start.pages
        pages = self._source.pages(
            self.start.next_url or plan.first_url,
            label=f"sort {plan.name}",
            on_retry=self.count_retry,
            page_size=plan.page_size,
            listing=plan.first_url,
        )
        try:
            for page in pages:
                entries = page.entries
                if plan.limit is not None:
                    entries = entries[: max(plan.limit - returned, 0)]
                returned += len(entries)
                pages_done += 1
                made: dict[int, dict[str, Any] | None] = {}
                crossed = page.next_url is not None and self._crossed(entries, made)
                limited = self._limited(returned, pages_done)
                last = page.next_url is None or limited is not None or crossed
                yield Fetched(page, entries, made, crossed, limited, last)
                if last:
                    return
        finally:
            self._source.close()

    def _limited(self, returned: int, pages: int) -> Stop | None:
        """Which of `limit` and `max_pages` this many entries and pages reach, if one does."""
        plan = self.plan
        if plan.limit is not None and (returned >= plan.limit or pages >= plan.limit):
            return Stop("limit", "limit", plan.limit)
        if plan.max_pages is not None and pages >= plan.max_pages:
            return Stop("limit", "max_pages", plan.max_pages)
        return None

    def _crossed(self, entries: list[Any], made: dict[int, dict[str, Any] | None]) -> bool:
        """Whether the page reaches below the walk's bound: its records from the last on, made
        only as far as needed (and kept in `made`)."""
        bound = self.plan.bound
        if bound is None:
            return False

        def last_first() -> Iterator[dict[str, Any]]:
            for index in range(len(entries) - 1, -1, -1):
                record = made[index] = normalize(entries[index], self.plan.repo_type)
                if record is not None:
                    yield record

        return bound.crossed(last_first())

    def take(self, fetched: Fetched) -> WalkPage:
        """The page's records that pass, and the walk's counts with them.

        An entry that is not an object with an id is skipped; one below a bound is counted as
        such. Both keep their rank: a rank counts every entry the sort returned.
        """
        plan, stats, bounds = self.plan, self.stats, self.plan.bounds
        bound, entries, made = plan.bound, fetched.entries, fetched.made
        passed: list[Ranked] = []
        below: list[str] = []
        skipped = 0
        for index, raw in enumerate(entries):
            record = made[index] if index in made else normalize(raw, plan.repo_type)
            if record is None:
                skipped += 1
                if (key := oversized(raw)) is not None:
                    log.warning(OVERSIZED, plan.sort, raw.get("id"), key)
                continue
            if OUT_OF_RANGE in record:
                log.warning(NULLED, plan.sort, record["id"], ", ".join(record.pop(OUT_OF_RANGE)))
            if (bounds and not bounds.passes(record, bound)) or (
                plan.emissions is not None and not _emitted(raw, plan.emissions)
            ):
                below.append(record["id"])
            else:
                passed.append(Ranked(stats.returned + index + 1, record, raw))
        page = fetched.page
        if page.withheld:
            plural = "ies" if page.withheld > 1 else "y"
            log.warning(WITHHELD, plan.sort, stats.pages + 1, page.withheld, plural)
        reached_end = page.next_url is None and len(entries) == len(page.entries)
        stop = (
            bound.stop
            if fetched.crossed and bound is not None
            else fetched.limited
            if fetched.limited and not reached_end
            else stats.stop
        )
        self.stats = replace(
            stats,
            returned=stats.returned + len(entries),
            skipped=stats.skipped + skipped,
            below_bound=stats.below_bound + len(below),
            pages=stats.pages + 1,
            resized=stats.resized + page.resized,
            retries=self.retries,
            seconds=self.start.seconds + time.monotonic() - self._began,  # a resumed walk adds
            next_url=page.next_url,
            reached_end=reached_end,
            stop=stop,
            done=fetched.last,
        )
        return WalkPage(passed, self.stats, page.rate_policy, below)
