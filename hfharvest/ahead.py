"""One page ahead: fetch page k+1 while page k is shaped, and a cancel that wakes every wait.

The Hub takes 1-3 s a page; shaping one takes tens of milliseconds. A walk therefore asks for
its next page as soon as it has the current one, and never more than one page ahead (memory
stays one page, and no page is asked for that a limit or a bound would not use: the page source
decides, page by page, whether there is a next). Waits are on futures, so a cancel from another
walk, or from the caller, wakes them at once instead of being polled for.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, InvalidStateError, wait
from typing import Any, TypeVar

T = TypeVar("T")


class Cancelled(Exception):
    """Raised inside a walk when another walk failed: its work would be thrown away."""


class Stopped(Exception):
    """The caller stopped the walks (through the `stop` it gave `walk_all`)."""


class Cancel:
    """Set once, when a walk fails and the others' work is no longer wanted; wakes every wait."""

    def __init__(self) -> None:
        self.future: Future[None] = Future()

    def set(self) -> None:
        with contextlib.suppress(InvalidStateError):  # already set
            self.future.set_result(None)

    def is_set(self) -> bool:
        return self.future.done()

    def sleep(self, seconds: float) -> None:
        """A retry's or the pacer's wait, cut short (with `Cancelled`) by a cancel."""
        try:
            self.future.result(timeout=seconds)
        except TimeoutError:
            return
        raise Cancelled


def read_ahead(pages: Iterator[T], cancel: Cancel) -> Iterator[T]:
    """Yield `pages`, fetching page k+1 while the caller shapes and writes page k.

    A plain bounded producer: one page ahead at most, each fetched by a short thread of its own
    (the generator is advanced by one thread at a time). The Hub's 1-3 s a page then overlaps the
    work on the page before; a cancel wakes the wait at once, without polling.
    """
    ahead = _next_in_thread(pages)
    while True:
        either: list[Future[Any]] = [ahead, cancel.future]
        done, _ = wait(either, return_when=FIRST_COMPLETED)
        if ahead not in done:
            raise Cancelled  # another walk failed: this one's next page is not needed
        page = ahead.result()  # the fetch's own error, if it failed
        if page is None:
            return
        ahead = _next_in_thread(pages)
        yield page


def _next_in_thread(pages: Iterator[T]) -> Future[T | None]:
    future: Future[T | None] = Future()

    def fetch() -> None:
        try:
            future.set_result(next(pages, None))
        except BaseException as exc:  # handed to the walk, which raises it as its own
            future.set_exception(exc)

    # Daemon: an interrupted run does not wait for a slow read to end.
    threading.Thread(target=fetch, name="fetch", daemon=True).start()
    return future
