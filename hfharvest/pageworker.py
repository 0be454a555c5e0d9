"""Where a walk's pages are parsed and shaped: in the walk's process, or in a page worker.

Parsing, normalizing and serializing a page is pure Python work. Done in the walk's own process it
holds the GIL that the fetching needs too, so the two run by turns. Once a walk proves longer than
two pages, `PageReader` therefore starts a page worker, a child process of its own (`python -P -m
hfharvest.pageworker`), and hands it each body from then on: the walk's process fetches and
writes while the worker shapes, on another core. The first two pages are always shaped here:
a walk of a page or two (most filtered ones) never pays for starting a process, and a long walk
loses next to nothing. A walk with `--limit` is shaped here too, as it must count each page's
entries at once to ask for no page beyond the limit. `HFHARVEST_PAGE_WORKER=0` keeps everything
in one process.

The fetching thread does not wait for the worker: it checks that a body has the shape of a JSON
array (an HTML page, an empty or cut body or the Hub's error object is caught there, and retried
or reported as before), sends it, and asks for the next page. The worker parses and shapes the
bodies in order and sends back each page shaped, which the walk's thread reads in the same order.
A body shaped like an array that still does not parse can no longer be fetched again (the walk
has moved on): it stops the walk, which `--state` resumes.

Both pipes carry frames: a kind byte, a 4-byte length, the payload. To the worker, on its stdin:
the walk's shape once (`S`), then bodies (`B`). Back, on its stdout: a page shaped (`K`), or
(`J`, `A`, `E`) why a body was no page. The worker ignores Ctrl-C (it is in a session of its own)
and ends when its stdin closes, so it never outlives the walk.
"""

from __future__ import annotations

import contextlib
import logging
import os
import struct
import subprocess
import sys
from collections import deque
from dataclasses import asdict
from pathlib import Path
from typing import IO, Any

import orjson

from hfharvest import tune_gc
from hfharvest.errors import HarvestError
from hfharvest.shaping import (
    BodyError,
    ErrorBody,
    NotAnArray,
    NotJSON,
    Shaped,
    Shaper,
    WalkShape,
    check_array,
    parse_entries,
)

log = logging.getLogger("hfharvest")

PAGES_BEFORE_WORKER = 2  # pages shaped in-process before a walk's worker is started
_PIPE_SIZE = 1 << 20  # Linux's default pipe-max-size; a page of 1,000 full models is ~0.7 MB
_HEADER = struct.Struct("!cI")
_SHAPE, _BODY = b"S", b"B"
_SHAPED = b"K"
# A body that is no page after all: why, with the Hub's words for an error body.
_REFUSALS: dict[bytes, type[BodyError]] = {b"J": NotJSON, b"A": NotAnArray, b"E": ErrorBody}
_REFUSAL_KIND = {error: kind for kind, error in _REFUSALS.items()}


class PageWorkerError(HarvestError):
    """The page worker stopped before the walk ended: the pages it held are lost."""


class PageReader:
    """Checks a walk's bodies as they arrive and shapes them, in order, here or in a worker.

    `read` is called by the fetching thread, for each 200 body: it raises a `BodyError` for a
    body that is not a page (the page is then fetched again). `take` is called by the walk's
    thread once per page read, in the same order: the page shaped.
    """

    def __init__(self, shaper: Shaper, *, offload: bool) -> None:
        self._shaper = shaper  # shapes the pages read here
        self._offload = offload and shaper.limit is None
        self._worker: PageWorker | None = None
        self._entries_read = shaper.returned  # counted here only: a worker means no --limit
        self._pages_read = 0
        self._pending: deque[list[Any] | None] = deque()  # per page: its entries, None: worker's

    def read(self, body: bytes, *, more: bool) -> None:
        """Check a page's body; `more` tells whether the walk will fetch another page after it."""
        if self._worker is not None:
            check_array(body)
            self._worker.send(body)
            self._pending.append(None)
            return
        entries = parse_entries(body)
        self._pending.append(entries)
        self._entries_read += len(entries)
        self._pages_read += 1
        if more and self._offload and self._pages_read >= PAGES_BEFORE_WORKER:
            self._offload = False  # one worker per walk, and one try at starting it
            self._worker = PageWorker.start(self._shaper.shape, self._entries_read)
            sort = self._shaper.shape.sort
            if self._worker is None:
                log.debug("sort %s: no page worker could start; its pages stay in-process", sort)
            else:
                log.debug("sort %s: page worker %d shapes its next pages", sort, self._worker.pid)

    @property
    def enough(self) -> bool:
        """Whether the pages read hold the --limit's entries: no other page is needed."""
        limit = self._shaper.limit
        return limit is not None and self._entries_read >= limit

    def take(self) -> Shaped:
        """The next page read, shaped; a `BodyError` if the worker found it was no page."""
        entries = self._pending.popleft()
        if entries is not None:
            return self._shaper.take(entries)
        assert self._worker is not None
        return self._worker.result()

    def close(self) -> None:
        if self._worker is not None:
            self._worker.close()


class PageWorker:
    """The parent's handle on one page worker process."""

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        assert process.stdin is not None and process.stdout is not None
        self._process = process
        self._bodies = process.stdin
        self._shaped = process.stdout

    @property
    def pid(self) -> int:
        return self._process.pid

    @classmethod
    def start(cls, shape: WalkShape, returned: int) -> PageWorker | None:
        """A worker that goes on from entry `returned`; None where no process can be started."""
        try:
            process = subprocess.Popen(
                # -P: not the working folder first on the path, where any orjson.py would do
                [sys.executable, "-P", "-m", "hfharvest.pageworker"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                start_new_session=True,  # Ctrl-C is the walk's to handle, not the worker's
                env=_worker_environment(),
            )
        except OSError:
            return None  # e.g. no process may be started here: the pages are shaped in-process
        worker = cls(process)
        for pipe in (worker._bodies, worker._shaped):
            _widen(pipe.fileno())
        worker.send(orjson.dumps({"shape": asdict(shape), "returned": returned}), kind=_SHAPE)
        return worker

    def send(self, body: bytes, *, kind: bytes = _BODY) -> None:
        try:
            write_frame(self._bodies, kind, body)
        except (BrokenPipeError, ValueError):  # ValueError: the pipe was closed by close()
            raise self._stopped() from None

    def result(self) -> Shaped:
        try:
            kind, payload = read_frame(self._shaped)
        except (EOFError, ValueError):
            raise self._stopped() from None
        if kind != _SHAPED:
            raise _REFUSALS[kind](payload.decode())
        return Shaped.decode(payload)

    def close(self) -> None:
        """Stop the worker now: what it still holds is not wanted (the walk ended or stopped)."""
        self._process.kill()
        self._process.wait()
        for stream in (self._bodies, self._shaped):
            with contextlib.suppress(OSError):  # a body still buffered for the killed worker
                stream.close()

    def _stopped(self) -> PageWorkerError:
        try:
            code: int | None = self._process.wait(timeout=1)  # its pipes closed: it is ending
        except subprocess.TimeoutExpired:
            code = None
        how = "is gone" if code is None else f"exited with code {code}"
        return PageWorkerError(
            f"the page worker (pid {self._process.pid}) {how}; the pages it held are lost",
            hint="run again (with --state to keep what came); HFHARVEST_PAGE_WORKER=0 keeps all "
            "work in one process",
        )


def _widen(pipe: int) -> None:
    """Make room in a pipe for a whole page (Linux): one write, instead of one per 64 KB read."""
    if sys.platform == "linux":
        import fcntl  # POSIX only: imported where it is used

        with contextlib.suppress(OSError):  # above /proc/sys/fs/pipe-max-size: stays as it was
            fcntl.fcntl(pipe, fcntl.F_SETPIPE_SZ, _PIPE_SIZE)


def _worker_environment() -> dict[str, str]:
    """The parent's environment, with this package importable even when it is not installed."""
    environ = dict(os.environ)
    package_root = str(Path(__file__).resolve().parent.parent)
    environ["PYTHONPATH"] = os.pathsep.join(
        p for p in (package_root, environ.get("PYTHONPATH")) if p
    )
    return environ


def write_frame(stream: IO[bytes], kind: bytes, payload: bytes) -> None:
    stream.write(_HEADER.pack(kind, len(payload)))
    stream.write(payload)
    stream.flush()


def read_frame(stream: IO[bytes]) -> tuple[bytes, bytes]:
    """The next frame; EOFError when the stream ends, even within one."""
    header = stream.read(_HEADER.size)
    if len(header) < _HEADER.size:
        raise EOFError
    kind, size = _HEADER.unpack(header)
    payload = stream.read(size)
    if len(payload) < size:
        raise EOFError
    return kind, payload


def serve(bodies: IO[bytes], shaped: IO[bytes]) -> None:
    """The worker's loop: every body in turn, shaped, or why it is no page."""
    _, start = read_frame(bodies)
    config = orjson.loads(start)
    shaper = Shaper(WalkShape(**config["shape"]), returned=config["returned"], limit=None)
    while True:
        _, body = read_frame(bodies)
        try:
            entries = parse_entries(body)
        except BodyError as exc:
            write_frame(shaped, _REFUSAL_KIND[type(exc)], str(exc).encode())
            continue
        write_frame(shaped, _SHAPED, shaper.take(entries).encode())


def main() -> None:
    tune_gc()
    # EOF: the walk ended; a broken pipe: its process is gone. Nothing is left to do either way.
    with contextlib.suppress(EOFError, BrokenPipeError):
        serve(sys.stdin.buffer, sys.stdout.buffer)
    os._exit(0)  # no final flush: the other end may be closed


if __name__ == "__main__":
    main()
