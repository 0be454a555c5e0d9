"""The id table (`merge.Seen`): flat, exact, and small whatever the catalog's size."""

from __future__ import annotations

import threading

import pytest

from hfharvest import merge
from hfharvest.merge import Seen


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
