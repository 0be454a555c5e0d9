"""The merge: every walk's records into one set unique by id, written in the order sorts were given.

Each walk hands its pages to `Merge.take` (from its own thread). The id table (`Seen`) says
whether the sort returned the id before (a duplicate) and keeps the rank at which each sort did.
With one sort a record is final as its page arrives and goes straight to the writer. Otherwise it
is final only when every walk has ended (its `found_by` must be complete): it is appended to the
spool (only its id and rank when an earlier sort returned it first: that sort's line holds it),
and `write` reads the spool back, sorts in the order given, each in page order, and writes each
id once with every sort's rank. Memory holds only the ids and their ranks; the output depends
only on the Hub's answers, never on which walk finished first.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import struct
import sys
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import replace
from typing import IO, Literal

import orjson

from hfharvest.errors import OutputError, UsageError
from hfharvest.outcome import SortStats
from hfharvest.records import Final
from hfharvest.sinks.base import Sink
from hfharvest.sinks.files import CacheLeaving
from hfharvest.walk import Ranked, WalkPage

HOLD = 1.0  # seconds a stopping run waits for a commit under way
READ_BLOCK = 1 << 20  # bytes of the spool read back at a time

# Told after a page's records are in the spool, under the merge's lock: a `--state` commits here,
# so that a resume never sees a page's records without its progress, nor the reverse.
Commit = Callable[[SortStats], None]


# Linux doubles a map in place (mremap); elsewhere (macOS, Windows) a bigger map is made and the
# old one copied into it, once a doubling.
IN_PLACE = sys.platform.startswith("linux")


def _anonymous(size: int) -> mmap.mmap:
    """Zeroed memory of its own, from the OS. Private on Unix: a shared anonymous map is a file
    of its first size, past which it cannot grow."""
    if hasattr(mmap, "MAP_PRIVATE"):
        return mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    return mmap.mmap(-1, size)


class _Pages:
    """A machine array in memory pages of its own (an anonymous map), zeroed by the OS, doubled in
    place by it (`mremap`: never copied) and given back whole: a table that lives as long as the
    walks never sits among the pages' short-lived objects, so their churn cannot fragment it
    (grown by `realloc` in the heap, 400,000 ids cost 50 bytes more each in peak RSS)."""

    def __init__(self, kind: Literal["B", "I", "i"], length: int) -> None:
        self._kind: Literal["B", "I", "i"] = kind
        self._map = _anonymous(length * struct.calcsize(kind))
        self._bytes = memoryview(self._map)
        self.items = self._bytes.cast(kind)

    def doubled(self) -> memoryview[int]:
        """Twice the room, the items kept; the views handed out before are no longer valid."""
        self.items.release()
        self._bytes.release()
        if IN_PLACE:
            self._map.resize(2 * len(self._map))
        else:
            old, self._map = self._map, _anonymous(2 * len(self._map))
            self._map.write(old)
            old.close()
        self._bytes = memoryview(self._map)
        self.items = self._bytes.cast(self._kind)
        return self.items


class Seen:
    """Every id the walks returned and the rank at which each sort first did: one table for all.

    Only this grows with the catalog (2 million models and counting), so it is kept flat, in
    machine arrays rather than Python objects, each in pages of its own (`_Pages`): per id, its
    UTF-8 bytes in one buffer and where they end (4 bytes), 32 bits of its hash (4), a bucket of
    an open-addressing table (4 bytes, a quarter to three quarters full: 5 to 16) and, per sort,
    its rank (4; 0: not returned by that sort, -1: returned below the bounds, so that such an id
    is known to the walk and never a record). About 50 bytes for an id of 30 characters, where a
    dict of str would take 180. A hash is only a shortcut: two ids are the same only when their
    bytes are, so ids whose hashes collide are never merged. Walks add from their own threads,
    under one lock. The buffer holds 4 GB of ids (100 million of them).
    """

    def __init__(self, sorts: int, *, key: Callable[[str], int] = hash) -> None:
        self._key = key  # a test gives one that collides
        self._ids = _Pages("B", 1 << 20)  # every id's UTF-8, one after another
        self._ends = _Pages("I", 1 << 14)  # per slot: where its id ends in `_ids`
        self._hashes = _Pages("I", 1 << 14)  # per slot: 32 bits of `key` of its id
        self._ranks = [_Pages("i", 1 << 14) for _ in range(sorts)]  # per slot and sort
        self._buckets = _Pages("i", 1 << 15)  # slot + 1, or 0: an empty bucket
        self._count = 0  # slots taken
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return self._count

    def add(self, index: int, repo_id: str, rank: int) -> int:
        """Record that sort `index` returned `repo_id` at `rank` (-1: below the bounds); return
        what it held before: 0 if the sort had not returned it, its rank, or -1."""
        return self.add_each(index, ((repo_id, rank),))[0]

    def add_each(
        self, index: int, returned: Iterable[tuple[str, int]], claims: list[bool] | None = None
    ) -> list[int]:
        """`add` for each (id, rank) of a page, in one hold of the lock: a page's ids are most
        of what a walk does per model, so the probing is written out here, once. With `claims`,
        appends to it, per id, whether a sort before `index` returned it."""
        befores = []
        with self._lock:
            key, ids, ends = self._key, self._ids.items, self._ends.items
            hashes, ranks = self._hashes.items, self._ranks[index].items
            earlier = [sort.items for sort in self._ranks[:index]]
            buckets = self._buckets.items
            mask = len(buckets) - 1
            for repo_id, rank in returned:
                hashed = key(repo_id) & 0xFFFF_FFFF
                bucket = hashed & mask
                encoded = None
                while entry := buckets[bucket]:
                    slot = entry - 1
                    if hashes[slot] == hashed:
                        encoded = encoded or repo_id.encode("utf-8", "surrogatepass")
                        if ids[ends[slot - 1] if slot else 0 : ends[slot]] == encoded:
                            break
                    bucket = (bucket + 1) & mask
                else:  # a new id: a new slot
                    slot = self._count
                    if slot == len(ends):
                        ends, hashes, ranks = self._more_slots(index)
                        earlier = [sort.items for sort in self._ranks[:index]]
                    encoded = encoded or repo_id.encode("utf-8", "surrogatepass")
                    start = ends[slot - 1] if slot else 0
                    while start + len(encoded) > len(ids):
                        ids = self._ids.doubled()
                    ids[start : start + len(encoded)] = encoded
                    ends[slot], hashes[slot] = start + len(encoded), hashed
                    buckets[bucket] = slot + 1
                    self._count = slot + 1
                    if 4 * (slot + 1) > 3 * len(buckets):
                        buckets = self._grow()
                        mask = len(buckets) - 1
                before = ranks[slot]
                if before <= 0 and rank != before:  # below the bounds before, it may pass now
                    ranks[slot] = rank
                befores.append(before)
                if claims is not None:
                    claims.append(any(sort[slot] > 0 for sort in earlier))
        return befores

    def _more_slots(self, index: int) -> tuple[memoryview[int], memoryview[int], memoryview[int]]:
        """Twice the slots in every per-slot array; the views of `add_each`, anew."""
        for ranks in self._ranks:
            ranks.doubled()
        return self._ends.doubled(), self._hashes.doubled(), self._ranks[index].items

    def _slot(self, repo_id: str) -> int:
        """The slot of an id the table holds (linear probing, as `add_each` does)."""
        hashed = self._key(repo_id) & 0xFFFF_FFFF
        buckets, ends = self._buckets.items, self._ends.items
        ids, hashes, mask = self._ids.items, self._hashes.items, len(buckets) - 1
        encoded = repo_id.encode("utf-8", "surrogatepass")
        bucket = hashed & mask
        while entry := buckets[bucket]:
            slot = entry - 1
            same = hashes[slot] == hashed
            if same and ids[ends[slot - 1] if slot else 0 : ends[slot]] == encoded:
                return slot
            bucket = (bucket + 1) & mask
        raise KeyError(repo_id)

    def _grow(self) -> memoryview[int]:
        """Twice the buckets, every slot placed again by its hash (each id once: none is equal
        to another, so no bytes are compared); the old buckets' pages given back."""
        grown = _Pages("i", 2 * len(self._buckets.items))
        buckets, hashes = grown.items, self._hashes.items
        mask = len(buckets) - 1
        for slot in range(self._count):
            bucket = hashes[slot] & mask
            while buckets[bucket]:
                bucket = (bucket + 1) & mask
            buckets[bucket] = slot + 1
        self._buckets = grown
        return buckets

    def found_by(self, repo_id: str, sorts: Sequence[str], first: int) -> dict[str, int] | None:
        """Each sort's rank for `repo_id`, in the order given; None unless sort `first` was the
        first to return it (the merge writes a record once, with the sort that comes first)."""
        slot = self._slot(repo_id)
        found: dict[str, int] = {}
        for index, (sort, ranks) in enumerate(zip(sorts, self._ranks, strict=True)):
            rank = ranks.items[slot]
            if rank > 0:
                if not found and index != first:
                    return None
                found[sort] = rank
        return found

    def new_counts(self) -> list[int]:
        """Per sort, the ids no earlier sort returned."""
        counts = [0] * len(self._ranks)
        every = [ranks.items for ranks in self._ranks]
        for slot in range(self._count):
            for index, ranks in enumerate(every):
                if ranks[slot] > 0:
                    counts[index] += 1
                    break
        return counts


def spool_line(sort_index: int, rank: int, repo_id: str, record: Final | None) -> bytes:
    """A line of the spool, tab-separated: sort index, rank, id (a JSON string), record and raw
    (empty without `raw`); without `record` (an earlier sort's line holds it), both empty.
    JSON as orjson writes it holds no tab or newline outside its strings, and escapes them
    within."""
    if record is None:
        return b"%d\t%d\t%s\t\t\n" % (sort_index, rank, orjson.dumps(repo_id))
    raw = record.raw_json() or b""
    return b"%d\t%d\t%s\t%s\t%s\n" % (sort_index, rank, orjson.dumps(repo_id), record.json(), raw)


def read_spool_line(line: bytes) -> tuple[int, int, str, Final]:
    """(sort index, rank, id, record) of a spool line."""
    index, rank, repo_id, record, raw = line.rstrip(b"\n").split(b"\t")
    return int(index), int(rank), orjson.loads(repo_id), Final.spooled(record, raw or None)


class Spool:
    """Append-only spool lines (`spool_line`): each walk's new records, in page order. Written
    once and read back once a sort at the end, its pages leave the page cache every
    `WRITTEN_BACK` bytes appended and read (`CacheLeaving`): a whole-Hub spool of gigabytes
    never fills the cache (in this VM, 1.5-2.0 us of system time a model instead of 4.1-5.2 at
    1,000,000 models and two sorts).

    Without `--state` an anonymous temporary file; with it, `STATE.spool`, made durable after
    every page.
    """

    def __init__(self, file: IO[bytes], *, durable: bool, length: int | None = None) -> None:
        self._file = file
        self._durable = durable
        end = file.seek(0, os.SEEK_END)
        self.length = end if length is None else length  # the lines that count end here
        self._cut = self.length == end  # what lies past `length` is cut at the first append
        self._leaving = CacheLeaving(file, synced=durable)  # read back only at the end

    @classmethod
    def temporary(cls) -> Spool:
        return cls(tempfile.TemporaryFile(prefix="hfharvest-spool-"), durable=False)

    def close(self) -> None:
        # A write that failed (a full disk) left its bytes in the buffer, which closing would
        # try, and fail, to write again: that failure was told once, by `append`.
        with contextlib.suppress(OSError):
            self._file.close()

    def append(self, lines: bytes) -> None:
        """Append a page's lines; with `durable`, they are on disk before this returns."""
        try:
            if not self._cut:
                self._file.truncate(self.length)
                self._cut = True
            self._file.seek(self.length)
            self._file.write(lines)
            self._file.flush()
            if self._durable:
                os.fsync(self._file.fileno())
            self._leaving.passed(len(lines))
        except OSError as exc:
            raise OutputError(
                f"cannot write the spool of the walks' records: {exc.strerror or exc}",
                hint="free some space (the spool is beside `state`, or in TMPDIR)",
            ) from exc
        self.length = self._file.tell()

    def lines(self, sort_index: int | None = None) -> Iterator[tuple[int, int, str, Final]]:
        """(sort index, rank, id, record) of every line (or of one sort's), in the order they
        were appended; read `READ_BLOCK` bytes at a time (line by line, a file reads 8 KB at a
        time, and a read and a seek each: 168,000 system calls for 100k models and two sorts)."""
        prefix = b"" if sort_index is None else b"%d\t" % sort_index
        self._file.seek(0)
        remaining, rest = self.length, b""
        leaving = CacheLeaving(self._file, synced=True)  # read once a pass: the pages behind go
        while remaining > 0 and (block := self._file.read(min(READ_BLOCK, remaining))):
            remaining -= len(block)
            leaving.passed(len(block))
            *whole, rest = (rest + block).split(b"\n")  # `length` ends a line: `rest` ends empty
            for line in whole:
                if line.startswith(prefix):
                    yield read_spool_line(line)


class Merge:
    """The records of every walk, merged. `sink` set: one sort, streamed; else spooled."""

    def __init__(
        self,
        sorts: Sequence[str],
        *,
        raw: bool,
        sink: Sink | None = None,
        spool: Spool | None = None,
        commit: Commit | None = None,
        first: int = 0,
        lock: threading.Lock | None = None,
    ) -> None:
        """`first`: the spool index of the first sort (listings of several types share one spool,
        their sorts numbered one after another), and `lock` the one its appends are made under."""
        self.sorts = tuple(sorts)
        self.seen = Seen(len(sorts))
        self._raw = raw
        self._sink = sink
        self._spool = spool
        self._commit = commit
        self._first = first
        self._lock = lock or threading.Lock()
        if spool is not None:  # a resumed state: what its walks already returned
            try:
                for index, rank, repo_id, _ in spool.lines():
                    if first <= index < first + len(self.sorts):
                        self.seen.add(index - first, repo_id, rank)
            except (ValueError, IndexError) as exc:
                raise UsageError(
                    f"the spool of `state` cannot be read ({exc})",
                    parameter="state",
                    hint="delete the state and its .spool to start over",
                ) from exc

    def take(self, index: int, page: WalkPage) -> int:
        """A page of walk `index`: its new records to the sink as they are, or to the spool as
        their JSON (encoded once). Returns how many ids the page brought that the walk had not
        returned before."""
        sort, sink, raw = self.sorts[index], self._sink, self._raw
        if sink is not None:
            fresh, new = self._new_records(index, page, claiming=False)
            for (rank, record, entry), _ in new:
                sink.write(Final.made(record, entry, keep_raw=raw), {sort: rank})
            return fresh
        # The whole page under the lock: an id an earlier sort returned has that sort's line in
        # the spool before this one, which can therefore leave the record out (the merge writes
        # it from the earlier sort's line; a resume reads both lines, or the earlier alone).
        # Each record is encoded as its line is made (kept encoded for a whole page, the
        # records' JSON cost 15 MB more peak at 200k models and two sorts).
        with self._lock:
            fresh, new = self._new_records(index, page, claiming=index > 0)
            lines = bytearray()
            for (rank, record, entry), claimed in new:
                final = None if claimed else Final.made(record, entry, keep_raw=raw)
                lines += spool_line(self._first + index, rank, record["id"], final)
            if lines and self._spool is not None:
                self._spool.append(bytes(lines))
            if self._commit is not None:
                self._commit(page.stats)
        return fresh

    def _new_records(
        self, index: int, page: WalkPage, *, claiming: bool
    ) -> tuple[int, list[tuple[Ranked, bool]]]:
        """How many ids the page brought that walk `index` had not returned, and the records it
        had not returned as records, each with whether a sort before `index` returned it (asked
        only when `claiming`)."""
        records, below = page.records, page.below
        returned = [(repo_id, -1) for repo_id in below]
        returned += [(record["id"], rank) for rank, record, _ in records]
        claims: list[bool] | None = [] if claiming else None
        befores = self.seen.add_each(index, returned, claims)
        claimed = claims[len(below) :] if claims is not None else [False] * len(records)
        fresh = befores[: len(below)].count(0)
        new = []
        for ranked, before, earlier in zip(records, befores[len(below) :], claimed, strict=True):
            if before > 0:
                continue  # this sort returned it before
            fresh += before == 0
            new.append((ranked, earlier))
        return fresh, new

    def hold(self) -> None:
        """Take the commit lock for good (a run stopped by a signal): a commit under way ends
        first, and none begins after, so that no state or spool is left half written."""
        self._lock.acquire(timeout=HOLD)

    def counted(self, stats: Sequence[SortStats]) -> tuple[tuple[SortStats, ...], int]:
        """Each walk's counts completed with its new and duplicate ids; the unique ids in all."""
        new = self.seen.new_counts()
        done = []
        for walk, fresh in zip(stats, new, strict=True):
            duplicates = walk.returned - walk.skipped - walk.below_bound - fresh
            done.append(
                replace(walk, new=fresh, duplicates=duplicates, seconds=round(walk.seconds, 3))
            )
        return tuple(done), sum(new)

    def write(self, sink: Sink) -> None:
        """Every unique record from the spool: sorts in the order given, each in page order."""
        assert self._spool is not None, "a streamed merge has no spool to write"
        found_by, sorts = self.seen.found_by, self.sorts
        for index in range(len(sorts)):
            for _, _, repo_id, record in self._spool.lines(self._first + index):
                ranks = found_by(repo_id, sorts, index)
                if ranks is not None:  # else an earlier sort writes it
                    sink.write(record, ranks)
