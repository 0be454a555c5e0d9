"""The console script's entry: the one place the process is set up, and ended.

The signal handlers come first: the CLI's imports take a moment, and a SIGTERM or SIGINT during
them must end the process as one that comes later does (143 or 130, one line, no traceback).
Then the process is tuned for a walk (the garbage collector, the switch interval, Arrow's
allocator) and the command line runs; a run a signal stopped ends with `os._exit`, whatever a
walk's thread is still doing. `cli.main`, which tests and embedding programs call in-process,
does none of this.
"""

from __future__ import annotations

import contextlib
import gc
import os
import sys
from typing import NoReturn

from hfharvest.errors import ExitCode, signal_of
from hfharvest.signals import listen


def main() -> NoReturn:
    listen()
    try:
        from hfharvest.cli import run
    except BaseException as error:  # a signal: nothing begun, nothing to clean up
        stopped = signal_of(error)
        if stopped is None:
            raise
        told = (
            f"hfharvest: error: stopped by {stopped.signal_name} at start-up; no file was written"
        )
        os.write(2, f"{told}\n".encode())
        os._exit(stopped.exit_code)
    _tune_process(sys.argv[1:])
    code = run(sys.argv[1:])
    if code in (ExitCode.SIGINT, ExitCode.SIGTERM):
        # Stopped by a signal, the cleanup done: leave now, whatever a walk's thread is doing
        # (a read can take `timeout` to give up, and the interpreter would wait on nothing else).
        with contextlib.suppress(OSError):
            sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


# The commands that never hand Arrow data to numpy (`schema --as features` needs `datasets`, which
# needs numpy and pandas).
WITHOUT_NUMPY = frozenset({"fetch", "diff"})


def _tune_process(argv: list[str]) -> None:
    """Tune the interpreter for this process (the process's business, never the library's).

    A walk allocates millions of short-lived, acyclic objects: at the default threshold the cyclic
    collector rescans them without end (about 7 % of a 100,000-model run). A thread reading an
    answer waits for the one shaping a page to hand over the interpreter lock, 5 ms at a time by
    default; at 1 ms two sorts' pages wait less (0.86 -> 0.83 s, 1,377 models, 0.2 s a page).
    Arrow, when Parquet is written, uses the system allocator (184 -> 148 MB at 200k models),
    and, for `fetch` and `diff`, runs as where numpy is not installed (`hfharvest[parquet]`
    needs none): where it is, pyarrow imports it (200k models to Parquet peaked at 124 MB beside
    it, 113 without).
    """
    gc.freeze()
    gc.set_threshold(100_000, 50, 100)
    # Arrow (Parquet) keeps what its own allocator freed, for later; the system's gives it back.
    os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")
    if argv[:1] and argv[0] in WITHOUT_NUMPY:
        sys.modules.setdefault("numpy", None)  # type: ignore[arg-type]  # how imports are refused
    sys.setswitchinterval(0.001)
