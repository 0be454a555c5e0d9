"""The console script's entry: the signal handlers first, then the CLI.

The CLI's imports take a moment; a SIGTERM or SIGINT that comes during them must end the process
as one that comes later does (143 or 130, no traceback), not with Python's defaults.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from types import FrameType
from typing import Any, NoReturn

from hfharvest.errors import Interrupted, Stopped, Terminated, stopped_by


def on_signal(signum: int, frame: FrameType | None) -> None:
    """The first SIGTERM or SIGINT ends the run (raised in the main thread, so that files are
    cleaned up on the way out); any later one is ignored, so that nothing cuts the cleanup."""
    ignore_signals()
    raise Terminated if signum == signal.SIGTERM else Interrupted


def listen() -> None:
    """The process's signal handling: `on_signal` for SIGTERM and SIGINT, and a signal that a
    finalizer swallowed (Python only prints what a `__del__` raises) delivered again."""
    for name in (signal.SIGTERM, signal.SIGINT):
        signal.signal(name, on_signal)
    sys.unraisablehook = _unraisable


def _unraisable(unraisable: Any) -> None:
    error = unraisable.exc_value
    if isinstance(error, OSError) and "ignored due to race condition" in str(error):
        return  # a second signal that came as the first was being handled: it changes nothing
    if isinstance(error, KeyboardInterrupt | Stopped):
        for name in (signal.SIGTERM, signal.SIGINT):
            signal.signal(name, on_signal)
        signum = signal.SIGTERM if isinstance(error, Terminated) else signal.SIGINT
        # Sent from another thread: it arrives once this hook has returned, where it can end
        # the run (sent from here, it would be raised, and swallowed, in the hook itself).
        threading.Thread(target=os.kill, args=(os.getpid(), signum), daemon=True).start()
        return
    sys.__unraisablehook__(unraisable)


def ignore_signals() -> None:
    """Once the run has ended, a late signal changes nothing: it is ignored."""
    for name in (signal.SIGTERM, signal.SIGINT):
        signal.signal(name, signal.SIG_IGN)


def main() -> NoReturn:
    listen()
    try:
        from hfharvest.cli import main as run
    except (KeyboardInterrupt, Stopped) as error:  # nothing begun, nothing to clean up
        stopped = stopped_by(error)
        assert stopped is not None
        told = (
            f"hfharvest: error: stopped by {stopped.signal_name} at start-up; no file was written"
        )
        os.write(2, f"{told}\n".encode())
        os._exit(stopped.exit_code)
    run()
