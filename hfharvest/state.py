"""The `--state` file: what a run keeps so that the same command, run again, resumes its walks.

`FILE` is a small JSON document rewritten atomically after every page: the job's parameters,
each sort's progress (next URL and counts) and the committed length of the spool, `FILE.spool`,
which holds the walks' records (see `merge.Spool`). A crash, a `kill -9` or a failure therefore
loses at most the page in flight, and running the same command again goes on from the next URL
of each sort. Neither file holds the token: the URLs never carry it.

A live run holds `FILE.lock` (`locks.held`): a second run on the same state is refused at once.
Neither file is ever opened through a symbolic link, and a spool's content is read and checked
before anything in it is cut.
"""

from __future__ import annotations

import contextlib
import glob
import os
import re
from collections.abc import Mapping
from dataclasses import asdict
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import orjson

from hfharvest.bounds import Bounds
from hfharvest.errors import OutputError, UsageError, redact_tree
from hfharvest.locks import Locked, NotRegular, held, open_private, read_private
from hfharvest.merge import Spool
from hfharvest.outcome import SortStats
from hfharvest.sinks.files import atomic_file
from hfharvest.version import __version__

STATE_VERSION = 5  # 5: why a walk stopped, as data (`stop`); 4: when it was begun, by whom
CLOCK_SKEW = timedelta(minutes=5)  # a state begun later than now by more than this is not trusted


class StateStore:
    """The `--state` file and its spool: created, resumed, committed after each page, removed.

    A state never outlives its walks: once every walk is done it is removed, whatever the run
    then decides. One too old to trust (`max_age`, counted from its creation) or written by
    another hfharvest is not resumed: `discarded` says why, and the walks start over.
    """

    def __init__(
        self,
        path: Path,
        job: Mapping[str, Any],
        progress: dict[str, SortStats],
        spool: Spool,
        bounds: Bounds,
        created: datetime,
        secret: str | None = None,
    ) -> None:
        self.path = path
        self.secret = secret  # the token: never written, whatever a URL or an error carries
        self.job = dict(job)
        self.progress = progress
        self.spool = spool
        self.bounds = bounds  # those the walks began with: a resumed walk keeps them
        self.created = created
        self.discarded: str | None = None  # why an earlier state was not resumed
        self.lock = contextlib.ExitStack()  # the lock on the state, held until `close`

    @property
    def resumed(self) -> bool:
        return any(p.pages for p in self.progress.values())

    @property
    def pages_before(self) -> int:
        """The pages the walks had done before this run (0 unless resumed)."""
        return sum(p.pages for p in self.progress.values())

    @classmethod
    def open(
        cls,
        path: Path,
        job: Mapping[str, Any],
        sorts: tuple[str, ...],
        bounds: Bounds,
        *,
        now: datetime,
        max_age: timedelta,
        secret: str | None = None,
    ) -> StateStore:
        """Start a new state, or take up the one at `path` if it belongs to the same job; the
        state is locked until `close` (`UsageError` when a live run holds it)."""
        with contextlib.ExitStack() as lock:
            try:
                lock.enter_context(held(path))
            except Locked:
                raise UsageError(
                    f"`state` {path} is in use: a live run holds it ({path}.lock)",
                    parameter="state",
                    value=path,
                    hint="wait for that run to end, or give this one another `state`",
                ) from None
            if not path.exists() and not path.is_symlink():
                store = cls._fresh(path, job, sorts, bounds, now, secret)
            else:
                saved = _load(path)
                differing = _differing(job, saved["job"])
                # Another job's state: its own job's runs would have taken it up by now (a
                # crontab changed since), so it is set aside, or refused while it may yet be.
                why = (
                    _set_aside(path, saved, now, max_age, differing)
                    if differing
                    else _stale(saved, now, max_age)
                )
                if why is None:
                    store = cls._resumed(path, job, sorts, saved, secret)
                else:
                    store = cls._fresh(path, job, sorts, bounds, now, secret)
                    store.discarded = why
            store.lock = lock.pop_all()  # held from here until `close`
            return store

    @classmethod
    def _resumed(
        cls,
        path: Path,
        job: Mapping[str, Any],
        sorts: tuple[str, ...],
        saved: dict[str, Any],
        secret: str | None,
    ) -> StateStore:
        """The state its job left at `path`, read and checked, its spool with it."""
        spool_path = spool_path_for(path)
        try:
            progress = {sort: SortStats.resumed(sort, saved["sorts"][sort]) for sort in sorts}
            created = _created(saved)
            bounds_kept = Bounds(**saved["bounds"])
            committed = int(saved["spool_length"])
        except (KeyError, TypeError, ValueError) as exc:
            raise UsageError(
                f"`state` {path} cannot be read (it is not a state of this job: {exc!r})",
                parameter="state",
                value=path,
                hint=f"delete {path} and {spool_path} to start over",
            ) from exc
        spool_file = _open_spool(spool_path, path)
        if spool_file.seek(0, os.SEEK_END) < committed:
            spool_file.close()
            raise UsageError(
                f"`state` {path}: its spool {spool_path} is shorter than recorded",
                parameter="state",
                value=path,
                hint=f"delete {path} and {spool_path} to start over",
            )
        # Past `committed` lies a page that was being written when the run stopped: the spool
        # reads only to `committed`, and cuts the rest at its first append, once its content
        # has been read (and checked) by the merge.
        spool = Spool(spool_file, durable=True, length=committed)
        return cls(path, job, progress, spool, bounds_kept, created, secret)

    @classmethod
    def _fresh(
        cls,
        path: Path,
        job: Mapping[str, Any],
        sorts: tuple[str, ...],
        bounds: Bounds,
        now: datetime,
        secret: str | None,
    ) -> StateStore:
        spool_path = spool_path_for(path)
        spool_path.unlink(missing_ok=True)  # a spool with no state, or a discarded one's
        progress = {sort: SortStats(sort) for sort in sorts}
        spool = Spool(_open_spool(spool_path, path), durable=True)
        store = cls(path, job, progress, spool, bounds, now, secret)
        try:
            store.commit()
        except BaseException:
            store.close()
            spool_path.unlink(missing_ok=True)  # no state without its spool, nor the reverse
            raise
        return store

    def commit(self, stats: SortStats | None = None, key: str | None = None) -> None:
        """Record a walk's progress (if given; under `key`, its sort by default) and the spool
        length, all at once (a rename)."""
        if stats is not None:
            self.progress[key or stats.sort] = stats
        document = {
            "version": STATE_VERSION,
            "hfharvest": __version__,
            "created": self.created.isoformat(),
            "job": self.job,
            "bounds": asdict(self.bounds),
            "spool_length": self.spool.length,
            "sorts": {sort: self._kept(p) for sort, p in self.progress.items()},
        }
        try:
            with atomic_file(self.path, mode=0o600) as stream:
                kept = redact_tree(document, self.secret)
                stream.write(orjson.dumps(kept, option=orjson.OPT_INDENT_2))
        except OSError as exc:
            raise OutputError(
                f"cannot write `state` {self.path}: {exc.strerror or exc}",
                hint="free some space or choose another `state`",
            ) from exc

    def _kept(self, stats: SortStats) -> dict[str, Any]:
        """A walk's progress as the state keeps it: a URL without a credential in its query."""
        progress = stats.progress()
        if progress["next_url"] is not None:
            progress["next_url"] = without_credentials(progress["next_url"], self.secret)
        return progress

    def remove(self) -> None:
        """Once every walk is done: nothing is left to resume. The spool's file stays open (and
        readable) until `close`, for the merge to write from."""
        spool_path_for(self.path).unlink(missing_ok=True)
        self.path.unlink(missing_ok=True)

    def close(self) -> None:
        try:
            self.spool.close()
        finally:
            self.lock.close()


def same_job(job: Mapping[str, Any], saved: Mapping[str, Any]) -> bool:
    """Whether a state's job is this run's."""
    return not _differing(job, saved)


SET_ASIDE_KEPT = 3  # the newest states set aside that are kept beside the path


def _set_aside(
    path: Path, saved: dict[str, Any], now: datetime, max_age: timedelta, differing: list[str]
) -> str:
    """A state of another job, older than `max_age`, renamed beside `path` with the time it was
    begun (its spool too), the newest `SET_ASIDE_KEPT` kept; why, for the warning. One younger
    may still be its own job's, to resume: refused."""
    created = _created(saved)
    another = f"it belongs to another job (it differs in: {', '.join(differing)})"
    if now - created <= max_age:
        raise UsageError(
            f"`state` {path}: {another}",
            parameter="state",
            value=path,
            hint="use another `state` file, or delete this one to start over (once older than "
            "`state_max_age`, it is set aside by itself)",
        )
    stamp = created.strftime("%Y%m%dT%H%M%SZ")
    aside = path.with_name(f"{path.name}.{stamp}")
    path.replace(aside)
    spool = spool_path_for(path)
    if spool.exists():
        spool.replace(spool.with_name(f"{spool.name}.{stamp}"))
    _prune_set_aside(path)
    hours = (now - created).total_seconds() / 3600
    return f"{another}, begun {hours:.1f} hours ago; set aside as {aside}"


def _prune_set_aside(path: Path) -> None:
    """Only the newest `SET_ASIDE_KEPT` states set aside stay, with their spools."""
    stamps = sorted(
        {each.name.rsplit(".", 1)[1] for each in path.parent.glob(f"{glob.escape(path.name)}.*")},
        reverse=True,
    )
    for stamp in [s for s in stamps if _SET_ASIDE.fullmatch(s)][SET_ASIDE_KEPT:]:
        for each in (path, spool_path_for(path)):
            each.with_name(f"{each.name}.{stamp}").unlink(missing_ok=True)


_SET_ASIDE = re.compile(r"\d{8}T\d{6}Z")


def _differing(job: Mapping[str, Any], saved: Mapping[str, Any]) -> list[str]:
    """The job's keys that differ; a key at its default (None, empty) and a key missing are the
    same, so that a field added to the query later keeps today's states resumable."""

    def value(of: Mapping[str, Any], key: str) -> Any:
        found = of.get(key)
        return None if found in ([], ()) else found

    return sorted(k for k in set(job) | set(saved) if value(job, k) != value(saved, k))


# Query parameters that carry a credential, by their usual names.
CREDENTIALS = frozenset(
    {
        "token",
        "access_token",
        "hf_token",
        "api_key",
        "apikey",
        "key",
        "auth",
        "authorization",
        "password",
        "secret",
        "signature",
        "sig",
    }
)


def without_credentials(url: str, secret: str | None) -> str:
    """`url` less every query parameter that carries a credential (by its name, or the token as
    its value)."""
    parts = urlsplit(url)
    kept = [
        (name, value)
        for name, value in parse_qsl(parts.query, keep_blank_values=True)
        if name.lower() not in CREDENTIALS and not (secret and secret in value)
    ]
    if len(kept) == len(parse_qsl(parts.query, keep_blank_values=True)):
        return url  # nothing to drop: the URL as the Hub wrote it
    return urlunsplit(parts._replace(query=urlencode(kept)))


def spool_path_for(state: Path) -> Path:
    return state.with_name(state.name + ".spool")


def _open_spool(path: Path, state: Path) -> IO[bytes]:
    try:
        return open_private(path, create=True)
    except NotRegular as exc:
        raise UsageError(
            f"`state` {state}: its spool {path} is {exc.strerror}",
            parameter="state",
            value=state,
            hint=f"remove {path} (hfharvest never writes through a link)",
        ) from None


def _created(saved: dict[str, Any]) -> datetime:
    created = datetime.fromisoformat(saved["created"])
    if created.tzinfo is None:
        raise ValueError(f"`created` {saved['created']!r} has no time zone")
    return created


def _stale(saved: dict[str, Any], now: datetime, max_age: timedelta) -> str | None:
    """Why a state of this job must not be resumed, if it must not."""
    if saved.get("version") != STATE_VERSION or saved.get("hfharvest") != __version__:
        written_by = saved.get("hfharvest") or "an earlier hfharvest"
        return f"it was written by {written_by}, not hfharvest {__version__}"
    created = _created(saved)
    if created - now > CLOCK_SKEW:
        return f"it says it was begun at {created.isoformat()}, later than now"
    if now - created > max_age:
        hours = (now - created).total_seconds() / 3600
        return f"it was begun {hours:.1f} hours ago, more than `state_max_age` allows"
    return None


def _load(path: Path) -> dict[str, Any]:
    try:
        saved: dict[str, Any] = orjson.loads(read_private(path))
        missing = {"job", "sorts", "spool_length", "bounds", "created"} - saved.keys()
        if missing:
            raise ValueError(f"no {', '.join(sorted(missing))}")
        _created(saved)
    except NotRegular as exc:
        raise UsageError(
            f"`state` {path} is {exc.strerror}",
            parameter="state",
            value=path,
            hint=f"remove {path} (hfharvest never reads a state through a link)",
        ) from None
    except (OSError, ValueError, TypeError, AttributeError) as exc:
        raise UsageError(
            f"`state` {path} cannot be read ({exc})",
            parameter="state",
            value=path,
            hint="delete it (and its .spool) to start over",
        ) from exc
    return saved
