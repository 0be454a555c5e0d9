"""Bounds on the sort key: `min_likes`, `min_downloads`, `since`. Pure.

Every Hub sort is descending, so a walk whose question is "downloads >= 100" or "changed since
yesterday" can stop at the first entry below the bound: what follows can only be lower. Two kinds:

- `min_likes` and `min_downloads` filter every sort's entries, and stop the walk sorted by that
  key where the bound is crossed;
- `since` bounds each walk by its own key (a `createdAt` walk by `created_at`, a `lastModified`
  walk by `last_modified`) and is refused with any other sort.

An entry whose bounded field is null is below the bound, and never stops a walk (it says nothing
of where the entries after it stand). A repo with the "unknown" creation date never passes a
`createdAt` bound.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from hfharvest.errors import UsageError
from hfharvest.normalize import timestamp
from hfharvest.outcome import Stop

Record = Mapping[str, Any]

# sort -> (the record's key it orders by, the listing field that carries it)
_SINCE_KEYS = {
    "createdAt": ("created_at", "createdAt"),
    "lastModified": ("last_modified", "lastModified"),
}


@dataclass(frozen=True)
class Bounds:
    """The bounds of a fetch; `since` is an ISO-8601 UTC stamp in the record's own form."""

    min_likes: int | None
    min_downloads: int | None
    since: str | None

    def __bool__(self) -> bool:
        return self.min_likes is not None or self.min_downloads is not None or bool(self.since)

    def fields(self, sorts: tuple[str, ...]) -> tuple[str, ...]:
        """The listing fields the bounds read: always asked for, whatever else is asked."""
        fields = []
        if self.min_likes is not None:
            fields.append("likes")
        if self.min_downloads is not None:
            fields.append("downloads")
        if self.since:
            fields.extend(_SINCE_KEYS[sort][1] for sort in sorts if sort in _SINCE_KEYS)
        return tuple(fields)

    def fields_read(self) -> tuple[tuple[str, str], ...]:
        """(bound, listing field) for the count bounds given: their field must exist."""
        given = (
            ("min_likes", "likes", self.min_likes),
            ("min_downloads", "downloads", self.min_downloads),
        )
        return tuple((name, field) for name, field, value in given if value is not None)

    def default_sorts(self) -> tuple[str, ...]:
        """The walks to make when bounds are given and no --sort: those the bounds can stop."""
        if self.since:
            return ("lastModified",)  # new or changed repos
        return tuple(
            sort
            for sort, bound in (("likes", self.min_likes), ("downloads", self.min_downloads))
            if bound is not None
        )

    def check_sorts(self, sorts: tuple[str, ...]) -> None:
        if self.since and any(sort not in _SINCE_KEYS for sort in sorts):
            others = ", ".join(sort for sort in sorts if sort not in _SINCE_KEYS)
            raise UsageError(
                f"`since` bounds a walk by its own date: it applies to `sort` createdAt and "
                f"`sort` lastModified, not {others}",
                parameter="since",
                value=self.since,
                hint="drop the other sorts, or drop `since`",
            )

    def unstoppable(self, sorts: tuple[str, ...]) -> tuple[str, ...]:
        """The sorts given that no bound can stop early: they walk to the end."""
        if not (self.min_likes is not None or self.min_downloads is not None):
            return ()
        return tuple(sort for sort in sorts if self.for_walk(sort) is None)

    def nothing_passed(self) -> str:
        """What a bounded walk that kept nothing says: "nothing since 2026-12-01...", "nothing
        with at least 5 likes"."""
        parts = [
            *([f"with at least {self.min_likes:,} likes"] if self.min_likes is not None else []),
            *(
                [f"with at least {self.min_downloads:,} downloads"]
                if self.min_downloads is not None
                else []
            ),
            *([f"since {self.since}"] if self.since else []),
        ]
        return f"nothing {' and '.join(parts)}"

    def described(self) -> str:
        """Every bound given, for a message (`` `min_likes` 5``); "none" when there is none."""
        given = [f.name for f in fields(self) if getattr(self, f.name) is not None]
        return " ".join(f"`{name}` {getattr(self, name)}" for name in given) or "none"

    def for_walk(self, sort: str) -> WalkBound | None:
        """The bound that can stop the walk sorted by `sort`, if any."""
        if sort == "likes" and self.min_likes is not None:
            return WalkBound(sort, "likes", self.min_likes, "min_likes")
        if sort == "downloads" and self.min_downloads is not None:
            return WalkBound(sort, "downloads", self.min_downloads, "min_downloads")
        if sort in _SINCE_KEYS and self.since:
            return WalkBound(sort, _SINCE_KEYS[sort][0], self.since, "since")
        return None

    def passes(self, record: Record, walk: WalkBound | None) -> bool:
        """Whether a record of the walk bounded by `walk` passes every bound that applies."""
        if self.min_likes is not None and not _at_least(record["likes"], self.min_likes):
            return False
        if self.min_downloads is not None and not _at_least(
            record["downloads"], self.min_downloads
        ):
            return False
        return walk is None or _at_least(record[walk.key], walk.bound)


@dataclass(frozen=True)
class WalkBound:
    """The bound on a walk's own sort key: where it crosses, the walk ends."""

    sort: str
    key: str  # the record's key that the sort orders by
    bound: int | str
    parameter: str  # the option that set it (`min_likes`)

    @property
    def stop(self) -> Stop:
        """Where this bound stops a walk, as the walk's counts keep it."""
        return Stop("bound", self.parameter, self.bound)

    def crossed(self, last_first: Iterable[Record]) -> bool:
        """Whether a page reached entries below the bound, given its records from the last on.

        The last entry with a value decides: the sort is descending, so all that follows it is
        lower. Entries without a value (null) cannot tell, and never stop the walk. Records are
        read lazily: the caller may make them as they are asked for.
        """
        for record in last_first:
            value = record[self.key]
            if value is not None:
                return not _at_least(value, self.bound)
        return False


def _at_least(value: Any, bound: int | str) -> bool:
    """Counts (ints) and ISO-8601 UTC stamps in one form (strings, ordered as the times are)."""
    if isinstance(bound, int):
        return type(value) is int and value >= bound
    return type(value) is str and value >= bound


def parse_since(text: str, now: datetime) -> str:
    """A date or an ISO timestamp (UTC when no zone is given), in the record's own form."""
    since = timestamp(text.strip())
    if since is None:
        raise UsageError(
            f"`since` {text!r} is not a date or an ISO-8601 timestamp",
            parameter="since",
            value=text,
            hint="for example `since` 2026-11-30 or `since` 2026-11-30T06:00:00Z",
        )
    present = timestamp(now.isoformat())
    if present is not None and since > present:
        raise UsageError(
            f"`since` {text} is in the future: no repo can pass it", parameter="since", value=text
        )
    return since
