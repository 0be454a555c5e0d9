"""The id table (`merge.Seen`): flat, exact, and small whatever the catalog's size."""

from __future__ import annotations

import tempfile
import threading
from collections.abc import Mapping
from typing import cast

import pytest

from hfharvest import merge
from hfharvest.merge import Merge, Seen, Spool
from hfharvest.outcome import SortStats
from hfharvest.records import Final
from hfharvest.sinks.base import Sink
from hfharvest.walk import Ranked, WalkPage


def test_ids_whose_keys_collide_are_never_merged() -> None:
    # Every id has the same key: the table must tell them apart by their bytes alone.
    seen = Seen(2, key=lambda repo_id: 42)
    ids = [f"org/model-{i}" for i in range(200)] + ["modèle-ünï", "\ud800lone"]
    assert [seen.add(0, repo_id, rank) for rank, repo_id in enumerate(ids, 1)] == [0] * len(ids)
    assert len(seen) == len(ids)
    assert [seen.add(0, repo_id, 999) for repo_id in ids] == list(range(1, len(ids) + 1))
    assert seen.add(1, ids[7], 3) == 0
    assert seen.found_by(ids[7], ("likes", "downloads"), 0) == {"likes": 8, "downloads": 3}
    assert seen.found_by(ids[8], ("likes", "downloads"), 0) == {"likes": 9}
    assert seen.new_counts() == [len(ids), 0]


def test_keys_that_differ_only_in_their_high_bits_share_a_bucket_and_stay_apart() -> None:
    seen = Seen(1, key=lambda repo_id: int(repo_id.rsplit("-", 1)[1]) << 40)
    for rank in range(1, 5000):
        assert seen.add(0, f"org/m-{rank}", rank) == 0
    assert all(seen.add(0, f"org/m-{rank}", 1) == rank for rank in range(1, 5000))


def test_the_table_grows_and_keeps_every_rank() -> None:
    seen = Seen(1)
    for rank in range(1, 100_001):
        seen.add(0, f"org-{rank % 97}/model-{rank}", rank)
    assert len(seen) == 100_000
    assert seen.found_by("org-3/model-100", ("likes",), 0) == {"likes": 100}
    assert seen.add(0, f"org-{99_943 % 97}/model-99943", 5) == 99_943


def test_below_the_bounds_then_passing() -> None:
    seen = Seen(1)
    assert seen.add(0, "a/b", -1) == 0
    assert seen.add(0, "a/b", 7) == -1  # known to the walk, and now a record
    assert seen.add(0, "a/b", 9) == 7
    assert seen.new_counts() == [1]


def test_walks_adding_from_their_own_threads_lose_no_id() -> None:
    seen = Seen(2)

    def walk(index: int) -> None:
        for rank in range(1, 20_001):
            seen.add(index, f"org/model-{rank}", rank)

    threads = [threading.Thread(target=walk, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(seen) == 20_000
    assert seen.new_counts() == [20_000, 0]


def test_where_maps_cannot_grow_in_place_they_are_copied(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(merge, "IN_PLACE", False)  # as on macOS and Windows
    seen = Seen(2)
    for rank in range(1, 50_001):
        seen.add(rank % 2, f"org/model-{rank}", rank)
    assert len(seen) == 50_000
    assert seen.found_by("org/model-49999", ("likes", "downloads"), 1) == {"downloads": 49_999}
    assert seen.add(0, "org/model-2", 1) == 2


def test_claims_say_which_ids_a_sort_before_returned_also_across_a_growth() -> None:
    seen = Seen(3)
    seen.add(0, "a/first", 1)
    seen.add(1, "b/second", 1)
    seen.add(0, "d/below", -1)  # below the bounds: not returned as a record
    claims: list[bool] = []
    returned = [("a/first", 1), ("b/second", 2), ("c/new", 3), ("d/below", 4)]
    seen.add_each(2, returned, claims)
    assert claims == [True, True, False, False]
    # Enough new ids in one page to double every per-slot array midway (16,384 slots at first).
    many = [(f"org/model-{rank}", rank) for rank in range(1, 20_001)]
    seen.add_each(0, many[::2])
    claims = []
    seen.add_each(1, many, claims)
    assert claims == [rank % 2 == 1 for rank in range(1, 20_001)]


class Gathered:
    """A sink that keeps what it is given: each record's JSON and its ranks."""

    def __init__(self) -> None:
        self.records: list[tuple[bytes, dict[str, int]]] = []

    def write(self, record: Final, found_by: Mapping[str, int]) -> None:
        self.records.append((record.json(), dict(found_by)))


def _page(sort: str, ids: list[str]) -> WalkPage:
    ranked = [Ranked(rank, {"id": i, "likes": rank}, None) for rank, i in enumerate(ids, 1)]
    return WalkPage(ranked, SortStats(sort), None)


def test_a_later_sort_spools_no_record_an_earlier_one_returned_and_the_merge_is_whole() -> None:
    with tempfile.TemporaryFile() as file:
        spool = Spool(file, durable=False)
        merge = Merge(("likes", "downloads"), raw=False, spool=spool)
        merge.take(0, _page("likes", ["a/x", "b/y"]))
        merge.take(1, _page("downloads", ["b/y", "c/z"]))
        file.seek(0)
        lines = [line.split(b"\t") for line in file.read().splitlines()]
        assert [(line[0], line[2], line[3] != b"") for line in lines] == [
            (b"0", b'"a/x"', True),
            (b"0", b'"b/y"', True),
            (b"1", b'"b/y"', False),  # the likes line holds its record
            (b"1", b'"c/z"', True),
        ]
        expected = [
            (b'{"id":"a/x","likes":1}', {"likes": 1}),
            (b'{"id":"b/y","likes":2}', {"likes": 2, "downloads": 1}),
            (b'{"id":"c/z","likes":2}', {"downloads": 2}),
        ]
        for merged in (merge, Merge(("likes", "downloads"), raw=False, spool=spool)):  # and resumed
            sink = Gathered()
            merged.write(cast(Sink, sink))
            assert sink.records == expected
