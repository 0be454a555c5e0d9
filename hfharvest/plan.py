"""What a fetch will ask before it asks: each walk's first request and the pages expected (a dry
run), and what walking the whole listing costs (a warning, from the Hub's announced quota)."""

from __future__ import annotations

from collections.abc import Sequence

from hfharvest.hub import CATALOG_SIZE, SORTS
from hfharvest.pacing import ratelimit_policy
from hfharvest.settings import Settings


def first_requests(settings: Settings) -> list[dict[str, object]]:
    """What a run would ask first, walk by walk (for a dry run): the URL (the token is never in
    it) and the pages expected: known with a limit, estimated for a whole listing, else null."""
    query, unbounded = settings.query, unbounded_sorts(settings)
    planned: list[dict[str, object]] = []
    for sort in query.sorts:
        pages: int | None = None
        if query.limit is not None:
            pages = -(-query.limit // query.page_size_sent)
            if settings.max_pages is not None:
                pages = min(pages, settings.max_pages)
        elif settings.max_pages is not None:
            pages = settings.max_pages
        elif sort in unbounded:
            pages = -(-CATALOG_SIZE[query.repo_type] // query.page_size)
        url = settings.first_url(sort)
        planned.append({"sort": sort, "url": url, "pages": pages, "estimate": sort in unbounded})
    return planned


def unbounded_sorts(settings: Settings) -> list[str]:
    """The sorts that walk the whole listing: no filter, no limit, no bound to stop them."""
    query = settings.query
    if query.limit is not None or settings.max_pages is not None or query.filtered:
        return []
    known = [sort for sort in query.sorts if sort in SORTS]  # an estimate for the sorts it knows
    return [sort for sort in known if settings.bounds.for_walk(sort) is None]


def first_unbounded(settings: Settings) -> int | None:
    """The index of the walk that warns of the whole listing's cost, once, if any."""
    unbounded = unbounded_sorts(settings)
    return settings.query.sorts.index(unbounded[0]) if unbounded else None


def whole_listing_warning(each: Sequence[Settings], rate_policy: str | None) -> str:
    """What the unbounded walks of every listing cost, in pages and, from the quota (one for
    them all), in time."""
    parts, requests = [], 0
    for settings in each:
        query, sorts = settings.query, len(unbounded_sorts(settings))
        if sorts:
            entries = CATALOG_SIZE[query.repo_type]
            pages = -(-entries // query.page_size)
            parts.append(f"about {entries:,} {query.repo_type}s: about {pages:,} pages per sort")
            requests += pages * sorts
    listings = "the whole listing" if len(parts) == 1 else "whole listings"
    text = (
        f"no filter and no `limit`: this walks {listings} (on the Hub, {'; '.join(parts)}, "
        f"{requests:,} requests in all)"
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
