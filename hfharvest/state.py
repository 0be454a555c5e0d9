"""Spool and state: where walks keep their records, and what `--state` keeps to resume them.

The spool is an append-only file of tab-separated lines (sort index, rank, id, record, raw; see
`spool_line`), one per new record of a walk, in the walk's page order. Without `--state`
it is an anonymous temporary file. With `--state FILE` it is `FILE.spool`, and `FILE` is a small
JSON document rewritten atomically after every page: the job's parameters, each sort's next URL
and counters, and the spool's committed length. A crash, a `kill -9` or a failure therefore loses
at most the page in flight, and running the same command again goes on from the next URL of each
sort. Neither file holds the token: the URLs never carry it.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any, NamedTuple

import orjson

from hfharvest.bounds import Bounds
from hfharvest.errors import UsageError
from hfharvest.output import atomic_file, remove_leftovers

STATE_VERSION = 3  # 3: the job named as the settings records name it, and the bounds kept


@dataclass
class SortProgress:
    """How far one sort's walk got: enough to go on from there."""

    next_url: str | None = None
    returned: int = 0
    skipped: int = 0
    pages: int = 0
    retries: int = 0
    seconds: float = 0.0
    done: bool = False
    reached_end: bool = False
    below_bound: int = 0
    stopped_by: str | None = None  # the bound where the walk stopped (--min-likes 10, ...)


class SpooledRecord(NamedTuple):
    rank: int
    repo_id: str
    record: bytes  # JSON, without found_by
    raw: bytes | None  # JSON, with --raw


def spool_line(sort_index: int, rank: int, repo_id: str, record: bytes, raw: bytes | None) -> bytes:
    """A line of the spool, tab-separated: sort index, rank, id (a JSON string), record and raw
    (JSON; empty without --raw). JSON as orjson writes it holds no tab or newline outside its
    strings, and escapes them within."""
    return b"%d\t%d\t%s\t%s\t%s\n" % (sort_index, rank, orjson.dumps(repo_id), record, raw or b"")


class Spool:
    """Append-only record lines, tagged with the sort that found them and its rank."""

    def __init__(self, file: IO[bytes], *, durable: bool) -> None:
        self._file = file
        self._durable = durable
        self.length = file.seek(0, os.SEEK_END)

    @classmethod
    def temporary(cls) -> Spool:
        return cls(tempfile.TemporaryFile(prefix="hfharvest-spool-"), durable=False)

    def close(self) -> None:
        self._file.close()

    def append(self, lines: bytes) -> int:
        """Append a page's lines; with `durable`, they are on disk before this returns."""
        self._file.seek(self.length)
        self._file.write(lines)
        self._file.flush()
        if self._durable:
            os.fsync(self._file.fileno())
        self.length = self._file.tell()
        return self.length

    def records(self, sort_index: int) -> Iterator[SpooledRecord]:
        """The records of one sort, in the order its walk found them."""
        prefix = b"%d\t" % sort_index
        for line in self._lines():
            if line.startswith(prefix):
                _, rank, repo_id, record, raw = line[:-1].split(b"\t")
                yield SpooledRecord(int(rank), orjson.loads(repo_id), record, raw or None)

    def ids(self) -> Iterator[tuple[int, int, str]]:
        """(sort index, rank, id) of every line: what a resumed walk already has."""
        for line in self._lines():
            index, rank, repo_id, _ = line.split(b"\t", 3)
            yield int(index), int(rank), orjson.loads(repo_id)

    def _lines(self) -> Iterator[bytes]:
        self._file.seek(0)
        remaining = self.length
        for line in self._file:
            if remaining <= 0:
                return
            remaining -= len(line)
            yield line


class StateStore:
    """The `--state` file and its spool: created, resumed, committed after each page, removed."""

    def __init__(
        self,
        path: Path,
        job: Mapping[str, Any],
        progress: dict[str, SortProgress],
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
            progress = {sort: SortProgress() for sort in sorts}
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
                f"--state {path} belongs to another job (it differs in: {', '.join(differing)})",
                hint="use another --state file, or delete this one to start over",
            )
        spool_file = _open_spool(spool_path)
        committed = int(saved["spool_length"])
        if spool_file.seek(0, os.SEEK_END) < committed:
            raise UsageError(
                f"--state {path}: its spool {spool_path} is shorter than recorded",
                hint=f"delete {path} and {spool_path} to start over",
            )
        spool_file.truncate(committed)  # drop a page that was being written when it stopped
        progress = {sort: SortProgress(**saved["sorts"][sort]) for sort in sorts}
        stored = Bounds(**saved.get("bounds", {}))  # a state written before bounds has none
        return cls(path, job, progress, Spool(spool_file, durable=True), stored)

    def commit(self) -> None:
        """Record the progress and the spool length, all at once (a rename)."""
        document = {
            "version": STATE_VERSION,
            "job": self.job,
            "bounds": asdict(self.bounds),
            "spool_length": self.spool.length,
            "sorts": {sort: asdict(p) for sort, p in self.progress.items()},
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
        missing = {"job", "sorts", "spool_length"} - saved.keys()
        if missing:
            raise ValueError(f"no {', '.join(sorted(missing))}")
    except (OSError, ValueError, AttributeError) as exc:
        raise UsageError(
            f"--state {path} cannot be read ({exc})",
            hint="delete it (and its .spool) to start over",
        ) from exc
    return saved
