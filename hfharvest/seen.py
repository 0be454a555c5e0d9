"""The id table of a harvest: every id the walks returned, and the rank at which each sort did.

Only this grows with the catalog (records go to the output or to the spool on disk), so it is
kept small: about 200 bytes an id whatever the number of sorts.
"""

from __future__ import annotations

import threading
from array import array
from collections.abc import Sequence


class Seen:
    """Every id the walks returned and the rank at which each sort first did: one table for all.

    Only this grows with the catalog, so it is kept small: each id is stored once whatever the
    number of sorts (a slot in one dict), and each sort's ranks sit in a machine-integer array
    indexed by slot (0: not returned by that sort). Walks add from their own threads; a new slot
    is handed out under a lock, everything else is one sort's own array.
    """

    def __init__(self, sorts: int) -> None:
        self._slots: dict[str, int] = {}
        self._ranks = [array("q") for _ in range(sorts)]
        self._lock = threading.Lock()

    def add(self, index: int, repo_id: str, rank: int) -> bool:
        """Record that sort `index` returned `repo_id` at `rank`; False if it already had."""
        slot = self._slots.get(repo_id)
        if slot is None:
            with self._lock:
                slot = self._slots.setdefault(repo_id, len(self._slots))
        ranks = self._ranks[index]
        if slot >= len(ranks):
            ranks.frombytes(bytes(8 * max(slot + 1 - len(ranks), len(ranks))))  # doubling
        if ranks[slot]:
            return False
        ranks[slot] = rank
        return True

    def found_by(self, repo_id: str, sorts: Sequence[str], first: int) -> dict[str, int] | None:
        """Each sort's rank for `repo_id`, in the order given; None unless sort `first` was the
        first to return it (the merge writes a record once, with the sort that comes first)."""
        slot = self._slots[repo_id]
        found: dict[str, int] = {}
        for index, (sort, ranks) in enumerate(zip(sorts, self._ranks, strict=True)):
            if slot < len(ranks) and ranks[slot]:
                if not found and index != first:
                    return None
                found[sort] = ranks[slot]
        return found

    def new_counts(self) -> list[int]:
        """Per sort, the ids no earlier sort returned."""
        counts = [0] * len(self._ranks)
        for slot in range(len(self._slots)):
            for index, ranks in enumerate(self._ranks):
                if slot < len(ranks) and ranks[slot]:
                    counts[index] += 1
                    break
        return counts
