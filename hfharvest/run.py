"""One `fetch` from settings to a finished snapshot: walk, guard, write, record.

This is the order of decisions a cron job relies on: the walks end (or fail); `--min-count` is
checked first (exit 4, nothing written); a failed sort fails the run unless `--allow-partial`
(exit 1, nothing written; every sort failed is exit 1 too); then the records are written all or
nothing, the manifest after them, and a `--state` is removed once the run is complete.
"""

from __future__ import annotations

import dataclasses
import logging
from datetime import UTC, datetime

from hfharvest.ahead import Cancel
from hfharvest.errors import TooFewRecordsError
from hfharvest.manifest import Ledger, build_manifest, write_json
from hfharvest.output import RecordWriter, Writable, open_output
from hfharvest.settings import Settings
from hfharvest.state import Spool, StateStore
from hfharvest.walks import (
    Observer,
    Sink,
    SourceFactory,
    Tally,
    Walks,
    walk_all,
)

log = logging.getLogger("hfharvest")

EXIT_COMPLETE = 0
EXIT_PARTIAL = 3


def run_fetch(
    settings: Settings,
    stdout: Writable,
    observer: Observer,
    ledger: Ledger,
    *,
    make_source: SourceFactory | None = None,
    stop: Cancel | None = None,
) -> int:
    """Harvest into `settings.output`; return the exit code of a run that wrote its records."""
    store = _open_state(settings)
    ledger.resumed = store is not None and store.resumed
    if store is not None and store.resumed and store.bounds != settings.bounds:
        log.warning(
            "--state %s began with other bounds (%s); its walks go on with those, not %s",
            settings.state, store.bounds.described(), settings.bounds.described(),
        )  # fmt: skip
        settings = dataclasses.replace(settings, bounds=store.bounds)
    # Records stream out as they come only when nothing must see the whole set first.
    streaming = len(settings.query.sorts) == 1 and store is None and settings.min_count is None
    spool = store.spool if store else None if streaming else Spool.temporary()

    def walk_and_guard(sink: Sink | None) -> Walks:
        walks = walk_all(
            settings, observer, spool=spool, store=store, sink=sink, make_source=make_source,
            stop=stop,
        )  # fmt: skip
        ledger.result = walks.result()
        _guard(settings, walks, ledger.result)
        return walks

    try:
        if streaming:
            with open_output(settings.output, stdout) as writer:
                observer = _FlushEveryPage(observer, writer)
                walks = walk_and_guard(writer.write_lines)
        else:
            # The output's temporary file is made only now: a run killed mid-walk leaves none.
            walks = walk_and_guard(None)
            with open_output(settings.output, stdout) as writer:
                walks.merge(writer.write_lines)
    finally:
        if spool is not None and store is None:
            spool.close()
    ledger.written = writer.written(settings.output.path)
    ledger.ended = datetime.now(UTC)
    if settings.manifest is not None:
        write_json(settings.manifest, build_manifest(settings, ledger))
    if store is not None and not walks.failures:
        store.remove()
    return EXIT_PARTIAL if walks.failures else EXIT_COMPLETE


def _open_state(settings: Settings) -> StateStore | None:
    if settings.state is None:
        return None
    return StateStore.open(settings.state, settings.job(), settings.query.sorts, settings.bounds)


class _FlushEveryPage:
    """Streaming: each page's records leave as the page is done, not when a chunk is full."""

    def __init__(self, observer: Observer, writer: RecordWriter) -> None:
        self._observer = observer
        self._writer = writer

    def page_done(self, sort: str, returned: int, pages: int) -> None:
        self._writer.flush()
        self._observer.page_done(sort, returned, pages)


def _guard(settings: Settings, walks: Walks, result: Tally) -> None:
    """Refuse to write what must not replace yesterday's snapshot."""
    if settings.min_count is not None and result.unique < settings.min_count:
        raise TooFewRecordsError(
            f"only {result.unique:,} unique {settings.query.repo_type}s came back, fewer than "
            f"--min-count {settings.min_count:,}; nothing was written",
            hint="an earlier file is untouched; check the filters, or lower --min-count",
        )
    if walks.failures and (not settings.allow_partial or len(result.failed) == len(result.stats)):
        raise walks.failures[0]
