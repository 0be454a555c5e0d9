"""A Python core with the command line as one of its clients (#25): records flow as Python
objects to a sink, and a stream left early cleans up after itself."""

from __future__ import annotations

import gc
import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
import responses

import hfharvest
from conftest import ENDPOINT, link, models

LIST = f"{ENDPOINT}/api/models"


class Counting:
    """orjson's calls on records (dicts with an `id`: not a manifest or a file's provenance):
    records encoded, and JSON decoded into records."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.encoded = self.decoded = self.pages = 0
        dumps, loads = orjson.dumps, orjson.loads
        # Walks count from their own threads: `+=` is a read and a write, and a thread switched
        # out between them would lose what the other counted meanwhile (a page's 1,000).
        lock = threading.Lock()

        def counting_dumps(value: Any, *args: Any, **kwargs: Any) -> bytes:
            with lock:
                self.encoded += isinstance(value, dict) and "id" in value
            return dumps(value, *args, **kwargs)

        def counting_loads(text: Any) -> Any:
            value = loads(text)
            with lock:
                self.decoded += isinstance(value, dict) and "id" in value
                self.pages += isinstance(value, list)
            return value

        monkeypatch.setattr(orjson, "dumps", counting_dumps)
        monkeypatch.setattr(orjson, "loads", counting_loads)


def three_pages(mock: responses.RequestsMock, sort: str) -> None:
    first = f"{LIST}?sort={sort}&limit=1000&full=true"
    for page in range(3):
        url = first if page == 0 else f"{first}&cursor={page}"
        following = link(f"{first}&cursor={page + 1}") if page < 2 else {}
        body = json.dumps(models(page * 1000, 1000)).encode()  # made before anything is counted
        mock.get(url, body=body, headers=following)


def test_one_sort_hands_records_over_unencoded(
    unordered: responses.RequestsMock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """3,000 models in 3 pages: JSON is parsed 3 times, for the pages, and no record is encoded
    or decoded between `normalize` and the caller."""
    three_pages(unordered, "likes")
    counting = Counting(monkeypatch)
    result = hfharvest.harvest(sort="likes", endpoint=ENDPOINT, token=False)
    assert len(result.records) == 3000 and result.records[0]["found_by"] == {"likes": 1}
    assert (counting.pages, counting.encoded, counting.decoded) == (3, 0, 0)


def test_several_sorts_encode_each_record_once_and_decode_it_once(
    unordered: responses.RequestsMock, monkeypatch: pytest.MonkeyPatch
) -> None:
    three_pages(unordered, "likes")
    three_pages(unordered, "downloads")
    counting = Counting(monkeypatch)
    result = hfharvest.harvest(sort=["likes", "downloads"], endpoint=ENDPOINT, token=False)
    assert result.unique == 3000 and result.records[0]["found_by"] == {"likes": 1, "downloads": 1}
    # Each walk spools the records new to it, each encoded once, but for those the likes walk
    # returned first, which the downloads walk spools as id and rank only (the likes copy is
    # the one written, whichever walk came first): 3,000 to 6,000 encodings as the walks' pages
    # interleave; each record written is decoded once.
    assert (counting.pages, counting.decoded) == (6, 3000)
    assert 3000 <= counting.encoded <= 6000


def slow_emulator() -> Iterator[str]:
    """The emulator in a process of its own (its threads are not this one's), its second page
    answered after 10 s."""
    command = [sys.executable, "-m", "hfharvest.testing", "--models", "500", "--fault", "slow:10@2"]
    server = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    assert server.stdout is not None
    try:
        yield server.stdout.readline().strip()
    finally:
        server.kill()
        server.wait()


@pytest.fixture
def slow_hub() -> Iterator[str]:
    yield from slow_emulator()


def left_early(url: str, how: str) -> None:
    records = hfharvest.stream(sort="likes", page_size=100, endpoint=url, token=False)
    if how == "break":
        for _ in records:
            break
    elif how == "raise":
        with pytest.raises(KeyError):
            for _ in records:
                raise KeyError("the caller's own")
    else:
        next(records)
        records.close()
    del records


@pytest.mark.slow
@pytest.mark.parametrize("how", ["break", "raise", "close"])
def test_a_stream_left_early_stops_its_threads_a_page_in_flight_too(
    slow_hub: str, how: str
) -> None:
    before = set(threading.enumerate())
    started = time.monotonic()
    left_early(slow_hub, how)  # the first page came; the second is in flight for 10 s
    gc.collect()
    time.sleep(1)
    assert set(threading.enumerate()) == before
    assert time.monotonic() - started < 5


def test_a_stream_is_an_iterator(hub: Any) -> None:
    records = hfharvest.stream(sort="likes", limit=3, endpoint=hub.url, token=False)
    assert iter(records) is records
    first = next(records)
    assert first["found_by"] == {"likes": 1}
    assert len([first, *records]) == 3 and records.unique == 3
    with pytest.raises(StopIteration):
        next(records)
