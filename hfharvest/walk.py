"""One sort's walk: pages in, records out, with the limit, the bounds and the counts.

A walk reads pages from a `PageSource` (`HubClient`, or a few lines of fake in a test), turns
each entry into a record once, and yields per page the records that pass, each with its rank
(the 1-based position among the sort's returned entries), and the walk's counts so far. It asks
for no page it does not need: it stops after the page that reaches `limit` or crosses its bound.
It knows nothing of other sorts, threads or files: the merge decides what is new.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any, NamedTuple, Protocol

from hfharvest.bounds import Bounds, WalkBound
from hfharvest.client import Page
from hfharvest.normalize import normalize
from hfharvest.outcome import SortStats


class PageSource(Protocol):
    """Where a walk's pages come from: `HubClient`, or a few lines of fake in a test."""

    def pages(
        self,
        url: str,
        *,
        label: str = ...,
        on_retry: Callable[[], None] = ...,
        page_size: int | None = ...,
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


@dataclass(frozen=True)
class WalkPlan:
    """What one walk needs to know: where it starts, and when it has enough."""

    sort: str
    first_url: str
    repo_type: str
    limit: int | None
    bounds: Bounds
    page_size: int

    @property
    def bound(self) -> WalkBound | None:
        return self.bounds.for_walk(self.sort)


class Walk:
    """One sort's walk, from its first page or from where a resumed one stopped (`start`).

    Iterating fetches and yields its pages; `retries` counts the retries so far (a failed page's
    too, which is why it lives outside the pages it yields).
    """

    def __init__(self, plan: WalkPlan, source: PageSource, start: SortStats) -> None:
        self.plan = plan
        self.start = start
        self.retries = start.retries
        self._source = source

    def count_retry(self) -> None:
        self.retries += 1

    def __iter__(self) -> Iterator[WalkPage]:
        plan, stats = self.plan, self.start
        url = stats.next_url or plan.first_url
        began = time.monotonic()
        pages = self._source.pages(
            url, label=f"sort {plan.sort}", on_retry=self.count_retry, page_size=plan.page_size
        )
        try:
            for page in pages:
                records, stats = self._take(page, stats)
                seconds = self.start.seconds + time.monotonic() - began  # a resumed walk adds
                stats = replace(stats, retries=self.retries, seconds=seconds)
                yield WalkPage(records, stats, page.rate_policy)
                if stats.done:
                    return
        finally:
            self._source.close()

    def _take(self, page: Page, stats: SortStats) -> tuple[list[Ranked], SortStats]:
        """The page's records that pass, and the walk's counts with them.

        An entry that is not an object with an id is skipped; one below a bound is counted as
        such. Both keep their rank: a rank counts every entry the sort returned.
        """
        plan, bound = self.plan, self.plan.bound
        entries = page.entries
        if plan.limit is not None:
            entries = entries[: max(plan.limit - stats.returned, 0)]
        passed: list[Ranked] = []
        normalized: list[dict[str, Any]] = []  # the bound's crossing is read from them
        skipped = below = 0
        for rank, raw in enumerate(entries, stats.returned + 1):
            record = normalize(raw, plan.repo_type)
            if record is None:
                skipped += 1
                continue
            normalized.append(record)
            if plan.bounds and not plan.bounds.passes(record, bound):
                below += 1
                continue
            passed.append(Ranked(rank, record, raw))
        returned = stats.returned + len(entries)
        crossed = (
            bound is not None and page.next_url is not None and bound.crossed(reversed(normalized))
        )
        reached_limit = plan.limit is not None and returned >= plan.limit
        return passed, replace(
            stats,
            returned=returned,
            skipped=stats.skipped + skipped,
            below_bound=stats.below_bound + below,
            pages=stats.pages + 1,
            resized=stats.resized + page.resized,
            next_url=page.next_url,
            reached_end=page.next_url is None and len(entries) == len(page.entries),
            stopped_by=bound.option if crossed and bound is not None else stats.stopped_by,
            done=page.next_url is None or reached_limit or crossed,
        )
