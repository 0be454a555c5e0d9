"""One page ahead: a fetching thread per walk hands pages over, and a cancel that wakes every wait.

The Hub takes 1-3 s a page; turning one into records takes tens of milliseconds. So while a walk's
records of page k are merged, its thread fetches page k+1, and no further: it fetches the next
only once the page before has been taken (memory stays one page, and a walk that has enough stops
asking). A cancel, from a walk that failed or from the caller, wakes the taker at once and cuts
every retry or pacing wait short.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, InvalidStateError
from typing import Generic, TypeVar

T = TypeVar("T")


class Cancelled(Exception):
    """Raised inside a walk when the walks are cancelled: its work would be thrown away."""


class Cancel:
    """Set once, when a walk fails or the caller stops the run; wakes every wait."""

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


class _End:
    """What the fetching thread hands over last: nothing more, or the error that ended it."""

    def __init__(self, error: BaseException | None = None) -> None:
        self.error = error


class _Handoff(Generic[T]):
    def __init__(self) -> None:
        self.items: queue.SimpleQueue[T | _End] = queue.SimpleQueue()  # a cancel never blocks
        self.taken = threading.Semaphore(0)
        self.left = False  # the taker stopped taking: the thread ends


def read_ahead(items: Iterable[T], cancel: Cancel) -> Iterator[T]:
    """Yield `items`, the next one fetched by a thread of its own while the caller works on this.

    Raises `Cancelled` as soon as `cancel` is set, and the fetching thread's error as its own.
    """
    handoff: _Handoff[T] = _Handoff()
    cancel.future.add_done_callback(lambda _: handoff.items.put(_End(Cancelled())))
    # Daemon: an interrupted run does not wait for a slow read to end.
    fetching = threading.Thread(target=_fetch, args=(items, handoff, cancel), daemon=True)
    fetching.start()
    try:
        while not isinstance(item := handoff.items.get(), _End):
            handoff.taken.release()  # taken: the thread fetches the next while this is worked on
            yield item
        if item.error is not None:
            raise item.error
    finally:
        handoff.left = True
        handoff.taken.release()  # a taker that left early: the thread sees it and ends


def _fetch(items: Iterable[T], handoff: _Handoff[T], cancel: Cancel) -> None:
    try:
        for item in items:
            handoff.items.put(item)
            handoff.taken.acquire()
            if cancel.is_set() or handoff.left:
                return
    except Cancelled:
        return
    except BaseException as exc:  # handed to the taker, which raises it as its own
        handoff.items.put(_End(exc))
        return
    handoff.items.put(_End())
