"""One page ahead: never more than one page fetched beyond the one being worked on; cancels wake."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from hfharvest.ahead import Cancel, Cancelled, read_ahead


def test_one_page_ahead_and_no_further() -> None:
    fetched: list[int] = []
    arrived = threading.Semaphore(0)

    def pages() -> Iterator[int]:
        for number in range(1, 6):
            fetched.append(number)
            arrived.release()
            yield number

    seen = []
    for page in read_ahead(pages(), Cancel()):
        assert arrived.acquire(timeout=5)  # this page's fetch
        if page < 5:
            assert arrived.acquire(timeout=5)  # the next page's, done while this one is used
            arrived.release()  # counted again as that page's own, next time round
        seen.append((page, max(fetched)))
    assert seen == [(1, 2), (2, 3), (3, 4), (4, 5), (5, 5)]


def test_a_cancel_wakes_a_walk_waiting_for_its_next_page() -> None:
    release = threading.Event()

    def slow() -> Iterator[int]:
        yield 1
        release.wait(10)  # a page that takes long to come
        yield 2

    cancel = Cancel()
    walk = read_ahead(slow(), cancel)
    assert next(walk) == 1
    threading.Timer(0.05, cancel.set).start()
    started = time.monotonic()
    with pytest.raises(Cancelled):
        next(walk)
    assert time.monotonic() - started < 2  # woken, not polled nor waited out
    release.set()


def test_a_cancel_cuts_a_wait_short() -> None:
    cancel = Cancel()
    cancel.sleep(0)  # not set: returns
    threading.Timer(0.05, cancel.set).start()
    started = time.monotonic()
    with pytest.raises(Cancelled):
        cancel.sleep(30)
    assert time.monotonic() - started < 2
