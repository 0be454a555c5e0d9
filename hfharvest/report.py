"""Everything hfharvest shows a person, all of it on stderr: progress, the table, warnings, errors.

stdout is for data alone, so `hfharvest fetch | jq` always parses. Messages are plain lines,
so a one-line error stays one line however narrow the terminal; rich is loaded only for what it
draws (the progress and the tables), which keeps it out of the start-up of every run.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress
    from rich.table import Table

from hfharvest.diff import DiffSummary
from hfharvest.errors import printable, redact
from hfharvest.manifest import Snapshot
from hfharvest.outcome import Observer, Outcome
from hfharvest.settings import Settings, walk_names


class _Tracker:
    """Remembers how far each walk got, to say where a run stopped and how fast; draws nothing."""

    def __init__(self, sorts: tuple[str, ...] = (), limit: int | None = None) -> None:
        self.latest: dict[str, tuple[int, int]] = dict.fromkeys(sorts, (0, 0))  # in sort order
        self._limit = limit
        self._began = time.monotonic()

    def page_done(self, sort: str, returned: int, pages: int) -> None:
        self.latest[sort] = (returned, pages)

    def pace(self, sort: str) -> str:
        """The walk's rate, and with a limit how far along it is and when it should be done."""
        returned, _ = self.latest[sort]
        elapsed = max(time.monotonic() - self._began, 1e-9)
        rate = returned / elapsed
        text = f"{rate:,.0f}/s"
        if self._limit:
            share = min(returned / self._limit, 1.0)
            left = (self._limit - returned) / rate if rate and share < 1 else 0.0
            text += f", {share:.0%}, ETA {_clock(left)}"
        return text


class _Lines(_Tracker):
    """A progress line every `every` seconds, for a log file (cron): stderr is no terminal."""

    def __init__(self, report: Report, every: float, sorts: tuple[str, ...], limit: int | None):
        super().__init__(sorts, limit)
        self._report, self._every = report, every
        self._next = time.monotonic() + every
        self._lock = threading.Lock()

    def page_done(self, sort: str, returned: int, pages: int) -> None:
        super().page_done(sort, returned, pages)
        with self._lock:
            now = time.monotonic()
            if now < self._next:
                return
            self._next = now + self._every
            walks = "; ".join(
                f"{name} {count:,} returned, {done:,} pages ({self.pace(name)})"
                for name, (count, done) in self.latest.items()
            )
            self._report.line(f"hfharvest: progress {_clock(now - self._began)}: {walks}")


class _ProgressObserver(_Tracker):
    """A live line per walk, on a terminal."""

    def __init__(self, progress: Progress, sorts: tuple[str, ...], limit: int | None) -> None:
        super().__init__(sorts, limit)
        self._progress = progress
        self._tasks = {
            sort: progress.add_task(sort, total=limit, returned=0, pages=0, pace="")
            for sort in sorts
        }

    def page_done(self, sort: str, returned: int, pages: int) -> None:
        super().page_done(sort, returned, pages)
        self._progress.update(
            self._tasks[sort],
            completed=returned,
            returned=returned,
            pages=pages,
            pace=self.pace(sort),
        )


class Report:
    """The one voice of hfharvest on stderr."""

    def __init__(
        self,
        stream: TextIO | None = None,
        *,
        quiet: bool = False,
        render: Callable[[str], str] | None = None,
    ) -> None:
        self._stream = stream  # None: whatever sys.stderr is when something is said
        self.quiet = quiet
        self.secret: str | None = None  # the token, once known: masked in every line printed
        # How a line names options: the library names them `in_backquotes`; the CLI shows flags.
        self.render: Callable[[str], str] = render or (lambda text: text)
        self._tracker = _Tracker()
        self._console: Console | None = None
        self.landed: dict[Path, Outcome] = {}  # the run's files in place, and the outcome then
        self._side_files: tuple[Path, ...] = ()  # the files a run writes after its data
        self._data_files: tuple[Path, ...] = ()  # a file a listing (several with several types)

    @property
    def stream(self) -> TextIO:
        return self._stream or sys.stderr

    @property
    def console(self) -> Console:
        if self._console is None:
            from rich.console import Console

            self._console = Console(file=self.stream, highlight=False)
        return self._console

    def line(self, text: str, *, lines: bool = False) -> None:
        """One line (a traceback, with `lines`, may hold several): text the Hub sent, with control
        characters that a terminal would obey, shown escaped; the token masked, last of all.
        Where stderr is no terminal (a cron log), the line begins with the UTC time it was said,
        `2026-12-06T03:17:02Z `; the tables are not stamped."""
        shown = printable(self.render(text), keep="\n" if lines else "")
        if not self.stream.isatty():
            shown = f"{datetime.now(UTC).strftime('%Y-%m-%dT%H:%M:%SZ')} {shown}"
        self.stream.write(redact(shown, self.secret) + "\n")
        self.stream.flush()

    def failure(self, message: str, hint: str | None = None) -> None:
        """An error is always shown, `--quiet` or not: one line of cause, one of hint."""
        self.line(f"hfharvest: error: {message}")
        if hint:
            self.line(f"hint: {hint}")

    def warning(self, message: str, *, always: bool = False) -> None:
        """A warning; `always`: one about the result itself, which `--quiet` does not hide."""
        if always or not self.quiet:
            self.line(f"hfharvest: warning: {message}")

    @contextmanager
    def capturing_logs(self, *, debug: bool) -> Iterator[None]:
        """Route the `hfharvest` logger (retries, and with --debug every request) here for the
        block; then the loggers are as they were (a command run in-process leaves no handler)."""
        handler = _ReportHandler(self)
        saved = []
        for name in ("hfharvest", "urllib3"):
            logger = logging.getLogger(name)
            saved.append((logger, logger.handlers, logger.level, logger.propagate))
            routed = debug or name == "hfharvest"
            logger.handlers = [handler] if routed else []
            logger.setLevel(
                logging.DEBUG if debug else logging.WARNING if routed else logging.NOTSET
            )
            logger.propagate = not routed
        try:
            yield
        finally:
            for logger, handlers, level, propagate in saved:
                logger.handlers, logger.propagate = handlers, propagate
                logger.setLevel(level)

    @contextmanager
    def walking(
        self, each: Sequence[Settings], *, every: float, beside_records: bool
    ) -> Iterator[Observer]:
        """Progress while walking (each listing's walks), unless `--quiet`: live lines on a
        terminal, else a line every `every` seconds (0: none). `beside_records`: the records go
        to this same terminal, where progress would land among them, so there is none."""
        sorts = tuple(name for settings in each for name in walk_names(settings, len(each)))
        limits = {settings.query.limit for settings in each}
        limit = limits.pop() if len(limits) == 1 else None  # the ETA only when one limit holds
        self._side_files = tuple(s.manifest for s in each if s.manifest is not None)
        self._data_files = tuple(s.output.path for s in each if s.output.path is not None)
        if self.quiet or beside_records or not (self.stream.isatty() or every):
            self._tracker = _Tracker(sorts, limit)
            yield self._tracker
            return
        if not self.stream.isatty():
            self._tracker = _Lines(self, every, sorts, limit)
            yield self._tracker
            return
        from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        progress = Progress(
            SpinnerColumn(),
            TextColumn("[bold]{task.description:<14}"),
            TextColumn("{task.fields[returned]:>9,} returned"),
            TextColumn("{task.fields[pages]:>6,} pages"),
            TextColumn("{task.fields[pace]}"),
            TimeElapsedColumn(),
            console=self.console,
            transient=True,
        )
        with progress:
            self._tracker = _ProgressObserver(progress, sorts, limit)
            yield self._tracker

    def fresh(self, snapshot: Snapshot, age: float, fresh_for: float) -> None:
        """The run was not needed: one line, unless `--quiet`."""
        if not self.quiet:
            self.line(
                f"hfharvest: {snapshot.data} is fresh: the same request made it {_clock(age)} "
                f"ago (`fresh_for` {_clock(fresh_for)}); no request made"
            )

    def file_landed(self, path: Path, outcome: Outcome) -> None:
        """A file of the run is in place (the data, then the manifest)."""
        self.landed[path] = outcome

    def stopped(self, signal_name: str) -> str:
        """What a signal stopped, told truly: before a data file was in place, nothing was
        written; after, the data files that were, and the files (data, side) that were not."""
        if not self.landed:
            where = self.where_stopped()
            during = f" during {where}" if where else ""
            untouched = "no file was written, an earlier one is untouched"
            return f"stopped by {signal_name}{during}; {untouched}"
        data = [path for path in self._data_files if path in self.landed]
        written = ", ".join(
            f"{path} was written ({self._records(path):,} records)" for path in data
        )
        files = [*self._data_files, *self._side_files]
        missing = [str(path) for path in files if path not in self.landed]
        told = f"; not written: {', '.join(missing)}" if missing else ""
        return f"stopped by {signal_name} once {written}{told}"

    def _records(self, path: Path) -> int:
        written = self.landed[path].written
        return written.records if written else 0

    def where_stopped(self) -> str:
        """How far each walk got, e.g. "likes: 12 pages, 12,000 returned"."""
        return "; ".join(
            f"{sort}: {pages:,} pages, {returned:,} returned"
            for sort, (returned, pages) in self._tracker.latest.items()
        )

    def diff_summary(self, summary: DiffSummary) -> None:
        if self.quiet:
            return
        self.line(
            f"added {summary.added:,} · removed {summary.removed:,} · changed {summary.changed:,}"
            f" · unchanged {summary.unchanged:,}"
        )
        for counter, movers in summary.movers.items():
            if movers:
                self.console.print(_movers_table(counter, movers))

    def summary(self, result: Outcome, settings: Settings) -> None:
        if self.quiet:
            return
        # The box's own divider leaves a space between columns: with no padding, nine fit in 80.
        table = _table(f"{settings.query.repo_type}s per sort", padding=0)
        bounded = bool(settings.bounds)  # the column only where it can count something
        resized = any(stats.resized for stats in result.stats)
        columns = [
            "returned",
            "new",
            "duplicates",
            "skipped",
            *(["below"] if bounded else []),
            "pages",
            *(["resized"] if resized else []),
            "retries",
            "seconds",
        ]
        # The longest sort name whole, so that nine columns still fit in 80 characters uncut.
        table.add_column("sort", no_wrap=True, min_width=len("trendingScore"))
        for name in columns:
            table.add_column(name, justify="right")
        for stats in result.stats:
            below = [stats.below_bound] if bounded else []
            smaller = [stats.resized] if resized else []
            counts = [
                stats.returned,
                stats.new,
                stats.duplicates,
                stats.skipped,
                *below,
                stats.pages,
                *smaller,
                stats.retries,
            ]
            table.add_row(stats.sort, *(f"{n:,}" for n in counts), f"{stats.seconds:.1f}")
        table.add_section()
        table.add_row("unique", "", f"{result.unique:,}", *[""] * (len(columns) - 2))
        self.console.print(table)
        for stats in result.stats:
            if stats.stop is not None:
                stop = stats.stop
                why = "the Hub had more" if stop.reason == "limit" else "what follows is lower"
                self.line(f"{stats.sort}: stopped at `{stop.parameter}` {stop.value} ({why})")
        for stats in result.failed:
            self.warning(f"sort {stats.sort} failed: {stats.error}")
        if result.resumed:
            now = sum(stats.pages for stats in result.stats) - result.pages_before
            self.line(f"resumed: {result.pages_before:,} pages done before this run, {now:,} in it")
        written, seconds = result.written, (datetime.now(UTC) - settings.started).total_seconds()
        if written is not None:
            where = str(written.path) if written.path else "stdout"
            self.line(
                f"wrote {where}: {written.records:,} records, {_size(written.bytes)} "
                f"in {_clock(seconds)}"
            )


def _size(count: int) -> str:
    """A size as a person reads it: 812 bytes, 4.2 MB."""
    if count < 1000:
        return f"{count:,} bytes"
    value, unit = count / 1000, "KB"
    for larger in ("MB", "GB"):
        if value < 1000:
            break
        value, unit = value / 1000, larger
    return f"{value:,.1f} {unit}"


def _clock(seconds: float) -> str:
    """h:mm:ss, as a person reads a duration."""
    whole = round(seconds)
    return f"{whole // 3600}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


def _table(title: str, **style: Any) -> Table:
    """A table as every table on stderr looks: its title on the left, one rule under the head."""
    from rich import box
    from rich.table import Table

    return Table(
        title=title,
        title_justify="left",
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
        **style,
    )


def _movers_table(counter: str, movers: list[tuple[int, str, int, int]]) -> Table:
    table = _table(f"biggest moves in {counter}")
    table.add_column("id", overflow="fold")
    for name in ("before", "after", "change"):
        table.add_column(name, justify="right")
    for _, repo_id, old, new in sorted(movers, reverse=True):
        table.add_row(repo_id, f"{old:,}", f"{new:,}", f"{new - old:+,}")
    return table


class _ReportHandler(logging.Handler):
    def __init__(self, report: Report) -> None:
        super().__init__()
        self._report = report

    def emit(self, record: logging.LogRecord) -> None:
        message = self.format(record)
        if record.levelno >= logging.WARNING:
            self._report.warning(message, always=getattr(record, "result", False))
        else:
            self._report.line(f"hfharvest: debug: {message}")
