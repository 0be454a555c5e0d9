"""`Mirror`: the last good harvest of one set of options, kept at a path, served at once.

A gateway asks for its set of models on every request, and the Hub is sometimes slow or down.
So a mirror answers from memory, at once, always: the set its last good walk wrote to disk (a
snapshot `hfharvest fetch` could have written, with its manifest, written all or nothing). Once
the set is older than `max_age`, one refresh starts in a background thread and callers keep the
set they had until the new one is in place. A failed refresh keeps the last good set, is logged
once, and is tried again after growing waits; a refresh that brings far fewer records than the
set served is refused, as `min_count` refuses a short snapshot. Several processes on one path (a
gateway's workers) refresh one at a time, under the lock beside the file (`locks.taken`), and
pick up each other's file. Nothing is printed; warnings go to the `hfharvest` logger.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import math
import os
import threading
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Unpack, cast

from tenacity import RetryCallState, wait_exponential_jitter

from hfharvest.ahead import Cancel, Cancelled
from hfharvest.api import CallingBack, Closing, python_options
from hfharvest.auth import OFFLINE_VARIABLES, offline
from hfharvest.diff import changed_fields, chosen_fields
from hfharvest.errors import (
    HarvestError,
    OutputError,
    SmallerSetError,
    TooFewRecordsError,
    UsageError,
)
from hfharvest.locks import taken
from hfharvest.manifest import Snapshot
from hfharvest.options import Options, PythonOptions, for_type, seconds_of
from hfharvest.records import AnyRecord
from hfharvest.run import run_fetch
from hfharvest.settings import Settings, resolve
from hfharvest.snapshots import newest_made_by, records_of

log = logging.getLogger("hfharvest")

# A refresh must keep at least half the set it replaces. The failures seen give nothing or a
# fraction (an empty listing, a tenth of it, a walk cut short), while a real set moves by a few
# percent a day (a provider adding or retiring models): a half sits far from both.
MIN_RATIO = 0.5
# After a failed refresh: 1 minute, then 2, 4, ... at most 30 (plus up to a minute of jitter, so
# that a fleet of workers does not knock at once). An outage of the Hub rarely lasts hours; the
# set is renewed within half an hour of its end.
REFRESH_BACKOFF = 60.0
REFRESH_BACKOFF_MAX = 1800.0

Clock = Callable[[], float]  # seconds since the epoch, as time.time()


@dataclass(frozen=True)
class Changes:
    """What a refresh changed against the set before it: ids `added` and `removed` (in the
    sets' order), and for each id in both whose record differs, the fields that do (ignoring
    what `hfharvest diff` ignores by default: likes, downloads and the other moving counters,
    `found_by`, `raw`). `unique` is the size of the new set."""

    added: tuple[str, ...]
    removed: tuple[str, ...]
    changed: Mapping[str, tuple[str, ...]]
    unique: int

    def __bool__(self) -> bool:
        return bool(self.added or self.removed or self.changed)


@dataclass(frozen=True)
class _Set:
    """One good set: its records, by id too, and when the walk that made it ended."""

    records: tuple[AnyRecord, ...]
    made_at: float  # seconds since the epoch
    by_id: Mapping[str, AnyRecord] = field(repr=False)


class Mirror(Closing):
    """The last good harvest of one set of options, kept at `path`, served at once.

    `path` names the snapshot's file and format (`.parquet`, `.jsonl`, `.json`, each but Parquet
    also `.gz`); its manifest lies beside it. The options are those of `harvest()`, as keywords,
    an `Options`, or both. `max_age`: seconds, or text as `90s`, `30m`, `1h`, `1d`. `min_ratio`:
    the share of the served set a refresh must bring to be taken. `on_refresh(changes)` is
    called from the background thread after each refresh it made. `refresh_backoff` and
    `refresh_backoff_max`: the first and the longest wait after a failed refresh. `clock`:
    seconds since the epoch (`time.time`; a test's own clock moves time without waiting).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        options: Options | None = None,
        /,
        *,
        max_age: float | str = 3600,
        min_ratio: float = MIN_RATIO,
        on_refresh: Callable[[Changes], None] | None = None,
        refresh_backoff: float = REFRESH_BACKOFF,
        refresh_backoff_max: float = REFRESH_BACKOFF_MAX,
        clock: Clock = time.time,
        **kwargs: Unpack[PythonOptions],
    ) -> None:
        given: dict[str, Any] = dict(kwargs)
        chosen = replace(python_options("Mirror", options, given), output=_path_of(path))
        # Every option checked now, with no request (not even a token's exchange: each refresh
        # resolves its own); offline (HF_HUB_OFFLINE), a mirror still serves its file.
        environ = os.environ if not offline(os.environ) else _online(os.environ)
        self._core = _Core(
            chosen,
            resolve(chosen, environ, exchange=False),
            max_age=_max_age(max_age),
            min_ratio=_ratio(min_ratio),
            on_refresh=on_refresh,
            backoff=wait_exponential_jitter(
                multiplier=refresh_backoff, max=refresh_backoff_max, jitter=refresh_backoff
            ),
            clock=clock,
        )
        self._closing = weakref.finalize(self, self._core.stop)

    @property
    def path(self) -> Path:
        return self._core.path

    @property
    def max_age(self) -> float:
        return self._core.max_age

    def records(self) -> Sequence[AnyRecord]:
        """The last good set, at once (do not change it: every caller shares it). Only when
        there is none yet (no file, or one made with other options) does this walk, blocking,
        and raise if it cannot; once there is one, it never raises because the Hub failed, and
        a set older than `max_age` starts one refresh in the background."""
        return self._core.serve().records

    def get(self, repo_id: str) -> AnyRecord | None:
        """The record of `repo_id` in the last good set, or None; as `records()` otherwise."""
        return self._core.serve().by_id.get(repo_id)

    def refresh(self, *, accept_smaller: bool = False) -> Changes:
        """Walk now, in this thread (one walk per sort), and return what changed. Raises on
        failure, keeping the last good set: `SmallerSetError` when the walk brought fewer than
        `min_ratio` of the set served, unless `accept_smaller`."""
        return self._core.refresh(accept_smaller=accept_smaller)

    @property
    def age(self) -> float | None:
        """Seconds since the walk that made the set served ended; None before there is one."""
        return self._core.age()

    @property
    def fresh(self) -> bool:
        """Whether there is a set, younger than `max_age`."""
        age = self.age
        return age is not None and age < self.max_age

    @property
    def last_error(self) -> BaseException | None:
        """Why the last refresh failed; None once one succeeds."""
        return self._core.last_error

    @property
    def refreshing(self) -> bool:
        """Whether a background refresh is under way."""
        return self._core.running() is not None

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the background refresh under way, if any; False if it outlasts `timeout`."""
        thread = self._core.running()
        if thread is not None:
            thread.join(timeout)
        return self._core.running() is None

    def close(self) -> None:
        """Stop a refresh under way (its sockets are shut) and wait for its thread. The set
        stays served; no refresh starts again."""
        self._closing()
        self._core.join()


def _online(environ: Mapping[str, str]) -> dict[str, str]:
    """The environment as if no offline variable were set."""
    return {k: v for k, v in environ.items() if k not in OFFLINE_VARIABLES}


def _path_of(path: str | os.PathLike[str]) -> str:
    text = os.fspath(path)
    if "{" in text:
        raise UsageError(
            f"Mirror: `path` {text!r} is one file, kept and replaced: no {{date}} or {{time}}",
            parameter="path",
            value=text,
        )
    return text


def _max_age(value: float | str) -> float:
    try:
        seconds = seconds_of(value)
    except (ValueError, TypeError):
        seconds = -1.0
    if seconds <= 0:
        raise UsageError(
            f"Mirror: `max_age` must be seconds or a duration such as '1h', more than 0, not "
            f"{value!r}",
            parameter="max_age",
            value=value,
        )
    return seconds


def _ratio(value: float) -> float:
    if not 0 <= value <= 1:
        raise UsageError(
            f"Mirror: `min_ratio` must be between 0 and 1, not {value!r}",
            parameter="min_ratio",
            value=value,
        )
    return value


class _Core:
    """The mirror's state and work; what its thread holds, never the `Mirror` itself, so that a
    mirror dropped by its caller is collected, and its thread stopped."""

    def __init__(
        self,
        options: Options,
        settings: Settings,
        *,
        max_age: float,
        min_ratio: float,
        on_refresh: Callable[[Changes], None] | None,
        backoff: wait_exponential_jitter,
        clock: Clock,
    ) -> None:
        assert settings.output.path is not None and settings.manifest is not None
        self.options = options
        self.settings = settings
        self.path = settings.output.path
        self.manifest = settings.manifest
        self.max_age = max_age
        self.min_ratio = min_ratio
        self.on_refresh = on_refresh
        self.backoff = backoff
        self.clock = clock
        self.cancel = Cancel()  # set once, on close: ends a walk or a wait under way
        self.state = threading.Lock()  # guards what follows; never held during a walk
        self.current: _Set | None = None
        self.examined: tuple[int, int, int] | None = None  # the manifest last read, by stat
        self.loading = False
        self.last_error: BaseException | None = None
        self.failures = 0
        self.retry_at = -math.inf
        self.thread: threading.Thread | None = None
        self.walking = threading.Lock()  # one walk of this process at a time

    # -- serving ---------------------------------------------------------------------------

    def serve(self) -> _Set:
        current = self._picked_up() or self._first()
        self._refresh_if_stale(current)
        return current

    def age(self) -> float | None:
        current = self.current
        return None if current is None else max(0.0, self.clock() - current.made_at)

    def _picked_up(self) -> _Set | None:
        """The set served, or a newer one another process wrote, read now (by one caller;
        the others meanwhile keep the set they had)."""
        with self.state:
            if self.current is None or self.loading:
                return self.current
            stamp = _stamp(self.manifest)
            if stamp is None or stamp == self.examined:
                return self.current
            self.loading = True
        loaded = None
        try:
            loaded = self._load()
        except (HarvestError, OSError) as exc:  # a set is served: never raise, say it once
            log.warning("mirror %s: cannot read the new file (%s); keeping the set", self.path, exc)
        finally:
            with self.state:
                self.loading = False
                self.examined = stamp
                self._install(loaded)
                current = self.current
        return current

    def _first(self) -> _Set:
        """No set yet: the one on disk, or one walked now, blocking; raises if it cannot."""
        with self.walking:
            loaded = self._loaded_now()
            if loaded is not None:
                return loaded
            with self.state:
                if self.last_error is not None and self.clock() < self.retry_at:
                    raise self.last_error  # tried a moment ago: no walk per call
            with self._taken():
                loaded = self._loaded_now()  # another process may have made it meanwhile
                if loaded is not None:
                    return loaded
                try:
                    self._walk(accept_smaller=True)
                except Exception as exc:
                    self._failed(exc)
                    raise
                assert self.current is not None
                return self.current

    def _loaded_now(self) -> _Set | None:
        stamp = _stamp(self.manifest)
        loaded = self.current or self._load()
        with self.state:
            self.examined = stamp
            self._install(loaded)
            return self.current

    # -- refreshing ------------------------------------------------------------------------

    def _refresh_if_stale(self, current: _Set) -> None:
        now = self.clock()
        if now - current.made_at < self.max_age or offline(os.environ):
            return
        with self.state:
            busy = self.thread is not None and self.thread.is_alive()
            if busy or self.cancel.is_set() or now < self.retry_at:
                return
            self.thread = threading.Thread(
                target=self._in_background, name=f"hfharvest-mirror {self.path}", daemon=True
            )
            self.thread.start()

    def _in_background(self) -> None:
        try:
            with self.walking, self._taken():
                if self._picked_up_fresh():  # another process refreshed while we waited
                    return
                changes = self._walk(accept_smaller=False)
        except Cancelled:
            return  # closed: nothing went wrong
        except Exception as exc:
            self._failed(exc)
            log.warning(
                "mirror %s: refresh failed (%s); serving the last good set (%s records, %.0f s "
                "old); next attempt in %.0f s",
                self.path,
                _cause(exc),
                f"{len(self.current.records):,}" if self.current else "no",
                self.age() or 0.0,
                max(0.0, self.retry_at - self.clock()),
            )
            return
        if self.on_refresh is not None:
            try:
                self.on_refresh(changes)
            except Exception:
                log.exception("mirror %s: the on_refresh callback failed", self.path)

    def _picked_up_fresh(self) -> bool:
        """Serve the file on disk if another process made it within `max_age`."""
        snapshot = newest_made_by(self.settings)
        if snapshot is None or self.clock() - snapshot.ended.timestamp() >= self.max_age:
            return False
        loaded = self._read(snapshot)
        with self.state:
            self._install(loaded)
        return loaded is not None

    def refresh(self, *, accept_smaller: bool) -> Changes:
        if self.cancel.is_set():
            raise UsageError(f"mirror {self.path} is closed: it refreshes no more")
        with self.walking, self._taken():
            self._loaded_now()  # the set on disk is the one a refresh is compared with
            try:
                return self._walk(accept_smaller=accept_smaller)
            except Exception as exc:
                self._failed(exc)
                raise

    def _walk(self, *, accept_smaller: bool) -> Changes:
        """One harvest into the mirror's file, then the set read back and served; the caller
        holds `walking` and the lock beside the file."""
        previous = self.current
        guard = None
        if previous is not None and previous.records and not accept_smaller:
            guard = math.ceil(len(previous.records) * self.min_ratio) or None
        asked = for_type(self.options.min_count, self.settings.query.repo_type)
        min_count = max((n for n in (guard, asked) if n is not None), default=None)
        settings = resolve(replace(self.options, min_count=min_count), os.environ)
        try:
            run_fetch(settings, io.BytesIO(), CallingBack(None), stop=self.cancel)
        except TooFewRecordsError as exc:
            got = exc.outcome.unique if exc.outcome else 0
            if guard is not None and previous is not None and (asked is None or got >= asked):
                raise SmallerSetError(got, len(previous.records), self.min_ratio) from exc
            raise
        written = self._load()
        if written is None:
            raise OutputError(f"{self.path} was written, then could not be read back")
        made = replace(written, made_at=self.clock())  # by the mirror's own clock
        with self.state:
            self.examined = _stamp(self.manifest)
            self.current = made
            self.failures, self.last_error, self.retry_at = 0, None, -math.inf
        return _changes(previous, made)

    def _failed(self, error: BaseException) -> None:
        with self.state:
            self.failures += 1
            self.last_error = error
            attempt = RetryCallState(None, None, (), {})  # type: ignore[arg-type]
            attempt.attempt_number = self.failures
            self.retry_at = self.clock() + float(self.backoff(attempt))

    def _taken(self) -> contextlib.ExitStack:
        """The lock beside the file: this process's walks, one at a time with other processes'."""
        return taken(self.path, self.cancel.sleep)

    # -- the file --------------------------------------------------------------------------

    def _load(self) -> _Set | None:
        """The set on disk, if these options made it and its bytes are the manifest's."""
        snapshot = newest_made_by(self.settings)
        if snapshot is None:
            return None
        return self._read(snapshot)

    def _read(self, snapshot: Snapshot) -> _Set | None:
        try:
            data = self.path.read_bytes()
        except OSError:
            return None
        if hashlib.sha256(data).hexdigest() != snapshot.sha256:
            return None  # replaced between the two reads: the next call reads the new pair
        records = tuple(cast(AnyRecord, each) for each in records_of(self.path, data))
        return _Set(records, snapshot.ended.timestamp(), {r["id"]: r for r in records})

    def _install(self, loaded: _Set | None) -> None:
        """Serve `loaded` if it is newer than the set served (called holding `state`)."""
        if loaded is not None and (self.current is None or loaded.made_at > self.current.made_at):
            self.current = loaded

    # -- ending ----------------------------------------------------------------------------

    def running(self) -> threading.Thread | None:
        thread = self.thread
        return thread if thread is not None and thread.is_alive() else None

    def stop(self) -> None:
        """Cut a refresh under way short; no refresh starts after this."""
        self.cancel.set()

    def join(self) -> None:
        thread = self.running()
        if thread is not None and thread is not threading.current_thread():
            thread.join()


def _stamp(path: Path) -> tuple[int, int, int] | None:
    """Which file is at `path` now (inode, change time, size), to notice a new one cheaply."""
    try:
        info = path.stat()
    except OSError:
        return None
    return info.st_ino, info.st_mtime_ns, info.st_size


def _changes(before: _Set | None, after: _Set) -> Changes:
    compared = chosen_fields(None)
    old: Mapping[str, Any] = before.by_id if before is not None else {}
    new: Mapping[str, Any] = after.by_id
    changed = {}
    for repo_id, record in new.items():
        if repo_id in old:
            fields = changed_fields(old[repo_id], record, compared)
            if fields:
                changed[repo_id] = tuple(fields)
    return Changes(
        added=tuple(repo_id for repo_id in new if repo_id not in old),
        removed=tuple(repo_id for repo_id in old if repo_id not in new),
        changed=changed,
        unique=len(after.records),
    )


def _cause(error: BaseException) -> str:
    if isinstance(error, HarvestError):
        return str(error)
    return f"{type(error).__name__}: {error}"
