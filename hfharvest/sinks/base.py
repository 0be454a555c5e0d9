"""The one interface every sink has, and what the file sinks share: a hashing, counting stream.

A sink takes final records one by one (`write(record, found_by)`), may be told a page is done
(`flush`), is finished once (`finish`), then says what it wrote (`written`). The sha256 of the
bytes that reach the disk (or stdout) is taken on the way, for the manifest.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Protocol, TypeVar

from hfharvest.errors import OutputError
from hfharvest.outcome import Written
from hfharvest.records import Final

T = TypeVar("T")


class Sink(Protocol):
    """What every sink does: take records one by one, then finish; then say what it wrote."""

    def write(self, record: Final, found_by: Mapping[str, int]) -> None: ...

    def flush(self) -> None: ...

    def finish(self) -> None: ...

    def written(self) -> Written: ...


class Writable(Protocol):
    """Where stdout's records go: `sys.stdout.buffer`, or any stream that takes bytes."""

    def write(self, data: bytes, /) -> int: ...

    def flush(self) -> None: ...


class Stdout:
    """stdout, whose failures are told as themselves: a closed pipe stays a `BrokenPipeError`
    (a quiet end), a full disk or an I/O error becomes an `OutputError` naming stdout."""

    def __init__(self, target: Writable) -> None:
        self._target = target

    def write(self, data: bytes) -> int:
        return self._told(lambda: self._target.write(data))

    def flush(self) -> None:
        self._told(self._target.flush)

    @staticmethod
    def _told(act: Callable[[], T]) -> T:
        try:
            return act()
        except BrokenPipeError:
            raise
        except OSError as exc:
            raise OutputError(
                f"cannot write to stdout: {exc.strerror or exc}",
                hint="free some space, or write to a file with `output`",
            ) from exc


class Hashing:
    """A write-only stream that hashes and counts what passes through to `target`."""

    def __init__(self, target: Writable) -> None:
        self._target = target
        self.digest = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.digest.update(data)
        self.size += len(data)
        return self._target.write(data)

    def flush(self) -> None:
        self._target.flush()

    def tell(self) -> int:  # what pyarrow asks of a file it writes
        return self.size

    @property
    def closed(self) -> bool:
        return False


class Counted:
    """A file sink's count of records and the hash of the bytes it sent, for `Written`."""

    count: int
    hashing: Hashing
    path: Path | None

    def written(self) -> Written:
        """Call once the bytes are final (after the gzip trailer, if any)."""
        return Written(self.path, self.count, self.hashing.digest.hexdigest(), self.hashing.size)
