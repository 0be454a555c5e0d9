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

from hfharvest.errors import ExitCode, Terminated


def on_signal(signum: int, frame: FrameType | None) -> None:
    """The first SIGTERM or SIGINT ends the run (raised in the main thread, so that files are
    cleaned up on the way out); any later one is ignored, so that nothing cuts the cleanup."""
    ignore_signals()
    raise Terminated if signum == signal.SIGTERM else KeyboardInterrupt


def listen() -> None:
    """The process's signal handling: `on_signal` for SIGTERM and SIGINT, and a signal that a
    finalizer swallowed (Python only prints what a `__del__` raises) delivered again."""
    for name in (signal.SIGTERM, signal.SIGINT):
        signal.signal(name, on_signal)
    sys.unraisablehook = _unraisable


def _unraisable(unraisable: Any) -> None:
    error = unraisable.exc_value
    if isinstance(error, KeyboardInterrupt | Terminated):
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
    except KeyboardInterrupt:
        os._exit(ExitCode.SIGINT)  # nothing begun, nothing to clean up
    except Terminated:
        os._exit(ExitCode.SIGTERM)
    run()
