"""What a harvest did: per sort what its walk contributed, the unique records, what was written.

One type for the per-sort counts (`SortStats`), filled in by the walk as it goes (and kept by a
`--state` so a walk resumes), completed by the merge (`new`, `duplicates`); one type for the
whole run (`Outcome`), which the run returns and an error raised after the walks began carries.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, Protocol

# What a `--state` keeps of each walk to resume it (the rest is known only once walks end).
RESUME_FIELDS = (
    "next_url",
    "returned",
    "skipped",
    "pages",
    "retries",
    "seconds",
    "done",
    "reached_end",
    "below_bound",
    "stop",
    "resized",
)


@dataclass(frozen=True)
class Stop:
    """Why a walk stopped before the listing's end, as data: a `limit` reached (`limit`,
    `max_pages`) or a `bound` crossed (`min_likes`, `min_downloads`, `since`), with the value.
    `str()` is the documented `stopped_by` form: `limit 1000`, `min_likes 5`."""

    reason: Literal["limit", "bound"]
    parameter: str
    value: int | str

    def __str__(self) -> str:
        return f"{self.parameter} {self.value}"

    def saved(self) -> list[Any]:
        return [self.reason, self.parameter, self.value]


@dataclass(frozen=True)
class SortStats:
    """One sort's walk: returned = new + duplicates + skipped + below_bound.

    `reached_end` is false when the walk stopped before the listing's end: where `stopped_by`
    says (`limit 1000`, or a bound: `min_likes 5`, `min_downloads 100`, `since ...`), or by an
    `error`.
    `next_url` is where the walk would go on; `done` says it will not.
    """

    sort: str
    returned: int = 0
    new: int = 0
    duplicates: int = 0
    skipped: int = 0
    pages: int = 0
    retries: int = 0
    seconds: float = 0.0
    reached_end: bool = False
    error: str | None = None
    below_bound: int = 0
    stop: Stop | None = None
    resized: int = 0  # pages asked again at half the size after a deep timeout (retries too)
    next_url: str | None = None
    done: bool = False

    @property
    def stopped_by(self) -> str | None:
        """Why the walk stopped early, as the manifest and the stats say it (`limit 1000`)."""
        return None if self.stop is None else str(self.stop)

    def summary(self) -> dict[str, Any]:
        """The counts as the manifest and the stats file hold them (no cursor)."""
        kept = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in _UNSAID}
        kept["stopped_by"] = self.stopped_by
        return kept

    def progress(self) -> dict[str, Any]:
        """What a `--state` keeps to resume this walk."""
        kept = {name: getattr(self, name) for name in RESUME_FIELDS}
        kept["stop"] = self.stop.saved() if self.stop else None
        return kept

    @classmethod
    def resumed(cls, sort: str, progress: dict[str, Any]) -> SortStats:
        kept = {name: progress[name] for name in RESUME_FIELDS}
        kept["stop"] = Stop(*kept["stop"]) if kept["stop"] else None
        return cls(sort, **kept)


_UNSAID = frozenset({"next_url", "done", "stop"})  # the cursor, and `stop` said as `stopped_by`


@dataclass(frozen=True)
class Written:
    """What a completed output holds: where (None: stdout, or Python), how many records, and the
    sha256 of its bytes."""

    path: Path | None
    records: int
    sha256: str
    bytes: int


@dataclass(frozen=True)
class Outcome:
    """What one harvest did: per sort its counts, the unique ids in all, and what was written
    (None until the output is complete). `resumed` says a `--state` was taken up."""

    stats: tuple[SortStats, ...]
    unique: int
    written: Written | None = None
    resumed: bool = False
    ended: datetime | None = None
    pages_before: int = 0  # a resumed run: the pages its walks had done before it

    @property
    def failed(self) -> tuple[SortStats, ...]:
        return tuple(s for s in self.stats if s.error is not None)

    @property
    def status(self) -> str:
        if self.written is None:
            return "failed"
        return "partial" if self.failed else "complete"

    def sorts(self) -> list[dict[str, Any]]:
        return [stats.summary() for stats in self.stats]


class Observer(Protocol):
    """Told of each walk's progress after every page (from the walk's own thread)."""

    def page_done(self, sort: str, returned: int, pages: int) -> None: ...
