"""The console script's entry: the signal handlers first, then the CLI.

The CLI's imports take a moment; a SIGTERM or SIGINT that comes during them must end the process
as one that comes later does (143 or 130, no traceback), not with Python's defaults.
"""

from __future__ import annotations

import os
import signal
from types import FrameType
from typing import NoReturn

from hfharvest.errors import ExitCode, Terminated


def on_signal(signum: int, frame: FrameType | None) -> None:
    """The first SIGTERM or SIGINT ends the run (raised in the main thread, so that files are
    cleaned up on the way out); any later one is ignored, so that nothing cuts the cleanup."""
    for name in (signal.SIGTERM, signal.SIGINT):
        signal.signal(name, signal.SIG_IGN)
    raise Terminated if signum == signal.SIGTERM else KeyboardInterrupt


def main() -> NoReturn:
    for name in (signal.SIGTERM, signal.SIGINT):
        signal.signal(name, on_signal)
    try:
        from hfharvest.cli import main as run
    except KeyboardInterrupt:
        os._exit(ExitCode.SIGINT)  # nothing begun, nothing to clean up
    except Terminated:
        os._exit(ExitCode.SIGTERM)
    run()
