"""The process's signal handling, which only the console entry installs (`entry.main`).

The first SIGTERM or SIGINT raises `Terminated` or `Interrupted` in the main thread, so that files
are cleaned up on the way out; any later one is ignored; a signal that a finalizer swallowed is
delivered again. Once a command's outcome is final (`settle`), a late signal changes nothing. A
program that runs the command line in-process keeps its own handlers: `settle` touches only ours.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from types import FrameType
from typing import Any

from hfharvest.errors import Interrupted, Stopped, Terminated


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


def settle() -> None:
    """The command's outcome is final: a signal from now on is ignored, if the handlers are ours
    (a host program running the command line in-process keeps its own)."""
    if (
        signal.getsignal(signal.SIGINT) is on_signal
        or signal.getsignal(signal.SIGTERM) is on_signal
    ):
        ignore_signals()
