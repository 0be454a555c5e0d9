"""The Python API's sink: final records handed to the caller's thread as dicts, never encoded.

Records go in batches (a page's, or `BATCH`) through a queue of `AHEAD` batches at most: past
them the walks wait, so memory stays bounded however slowly the caller reads. Once the caller
has left (`closed`), a write raises `Left`, which ends the walks.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Mapping

from hfharvest.outcome import Written
from hfharvest.records import Final, Record

BATCH = 1_000  # records handed over at once when no page ends sooner
AHEAD = 16  # batches that may wait for the caller
POLL = 0.1  # seconds between two looks at whether the caller has left, while the queue is full

Item = list[Record] | BaseException | None  # a batch, the run's error, or the end


class Left(Exception):
    """The caller left: the walks stop."""


class HandOver:
    """Takes records as a sink does; `get` gives them to the caller, a batch at a time."""

    def __init__(self) -> None:
        self._queue: queue.Queue[Item] = queue.Queue(AHEAD)
        self.closed = threading.Event()
        self._batch: list[Record] = []
        self.count = 0

    def write(self, record: Final, found_by: Mapping[str, int]) -> None:
        value = record.value()  # the record made by `normalize`, or decoded once from the spool
        value["found_by"] = dict(found_by)
        if record.has_raw:
            value["raw"] = record.raw()
        self._batch.append(value)
        self.count += 1
        if len(self._batch) >= BATCH:
            self.flush()

    def flush(self) -> None:
        if self._batch:
            self.put(self._batch)
            self._batch = []

    def finish(self) -> None:
        self.flush()

    def written(self) -> Written:
        return Written(None, self.count, "", 0)

    def put(self, item: Item) -> None:
        """Hand `item` over, waiting while the caller has enough; `Left` once it has gone."""
        while True:
            if self.closed.is_set():
                raise Left
            try:
                self._queue.put(item, timeout=POLL)
            except queue.Full:
                continue
            return

    def get(self) -> Item:
        return self._queue.get()
