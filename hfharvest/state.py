"""The `--state` file: what a run keeps so that the same command, run again, resumes its walks.

`FILE` is a small JSON document rewritten atomically after every page: the job's parameters,
each sort's progress (next URL and counts) and the committed length of the spool, `FILE.spool`,
which holds the walks' records (see `merge.Spool`). A crash, a `kill -9` or a failure therefore
loses at most the page in flight, and running the same command again goes on from the next URL
of each sort. Neither file holds the token: the URLs never carry it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import IO, Any

import orjson

from hfharvest.bounds import Bounds
from hfharvest.errors import UsageError
from hfharvest.files import atomic_file, remove_leftovers
from hfharvest.merge import Spool
from hfharvest.outcome import SortStats

STATE_VERSION = 3  # 3: the job named as the settings records name it, and the bounds kept


class StateStore:
    """The `--state` file and its spool: created, resumed, committed after each page, removed."""

    def __init__(
        self,
        path: Path,
        job: Mapping[str, Any],
        progress: dict[str, SortStats],
        spool: Spool,
        bounds: Bounds,
    ) -> None:
        self.path = path
        self.job = dict(job)
        self.progress = progress
        self.spool = spool
        self.bounds = bounds  # those the walks began with: a resumed walk keeps them

    @property
    def resumed(self) -> bool:
        return any(p.pages for p in self.progress.values())

    @classmethod
    def open(
        cls, path: Path, job: Mapping[str, Any], sorts: tuple[str, ...], bounds: Bounds
    ) -> StateStore:
        """Start a new state, or take up the one at `path` if it belongs to the same job."""
        remove_leftovers(path)  # a commit cut short by kill -9
        spool_path = spool_path_for(path)
        if not path.exists():
            spool_path.unlink(missing_ok=True)  # a spool with no state is a leftover
            progress = {sort: SortStats(sort) for sort in sorts}
            spool = Spool(_open_spool(spool_path), durable=True)
            store = cls(path, job, progress, spool, bounds)
            store.commit()
            return store
        saved = _load(path)
        differing = sorted(
            k for k in set(job) | set(saved["job"]) if job.get(k) != saved["job"].get(k)
        )
        if differing:
            raise UsageError(
                f"`state` {path} belongs to another job (it differs in: {', '.join(differing)})",
                parameter="state",
                value=path,
                hint="use another `state` file, or delete this one to start over",
            )
        spool_file = _open_spool(spool_path)
        committed = int(saved["spool_length"])
        if spool_file.seek(0, os.SEEK_END) < committed:
            raise UsageError(
                f"`state` {path}: its spool {spool_path} is shorter than recorded",
                parameter="state",
                value=path,
                hint=f"delete {path} and {spool_path} to start over",
            )
        spool_file.truncate(committed)  # drop a page that was being written when it stopped
        progress = {sort: SortStats.resumed(sort, saved["sorts"][sort]) for sort in sorts}
        stored = Bounds(**saved["bounds"])
        return cls(path, job, progress, Spool(spool_file, durable=True), stored)

    def commit(self, stats: SortStats | None = None) -> None:
        """Record a walk's progress (if given) and the spool length, all at once (a rename)."""
        if stats is not None:
            self.progress[stats.sort] = stats
        document = {
            "version": STATE_VERSION,
            "job": self.job,
            "bounds": asdict(self.bounds),
            "spool_length": self.spool.length,
            "sorts": {sort: p.progress() for sort, p in self.progress.items()},
        }
        with atomic_file(self.path) as stream:
            stream.write(orjson.dumps(document, option=orjson.OPT_INDENT_2))

    def remove(self) -> None:
        """After a successful run: nothing is left to resume."""
        self.spool.close()
        spool_path_for(self.path).unlink(missing_ok=True)
        self.path.unlink(missing_ok=True)


def spool_path_for(state: Path) -> Path:
    return state.with_name(state.name + ".spool")


def _open_spool(path: Path) -> IO[bytes]:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    return open(fd, "r+b")  # noqa: PTH123 (a file descriptor, not a path)


def _load(path: Path) -> dict[str, Any]:
    try:
        saved: dict[str, Any] = orjson.loads(path.read_bytes())
        if saved.get("version") != STATE_VERSION:
            version = saved.get("version")
            raise ValueError(f"state version {version}; this hfharvest reads {STATE_VERSION}")
        missing = {"job", "sorts", "spool_length", "bounds"} - saved.keys()
        if missing:
            raise ValueError(f"no {', '.join(sorted(missing))}")
    except (OSError, ValueError, AttributeError) as exc:
        raise UsageError(
            f"`state` {path} cannot be read ({exc})",
            parameter="state",
            value=path,
            hint="delete it (and its .spool) to start over",
        ) from exc
    return saved
