"""The one error boundary: every way a command can end, turned into one message and an exit code.

A failure is one line naming the cause and at most one line of hint, through `Report` (so the
token is masked and options are named as flags); no traceback unless `--debug`. The project's own
errors carry their exit code; a signal, a closed stdout and anything unexpected get theirs here.
Used by `cli.py` alone.
"""

from __future__ import annotations

import contextlib
import os
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hfharvest.errors import (
    ExitCode,
    HarvestError,
    SideFileError,
    UsageError,
    signal_of,
)
from hfharvest.flags import as_flags
from hfharvest.manifest import write_json
from hfharvest.report import Report
from hfharvest.signals import settle


def guarded(
    report: Report,
    body: Callable[[], int],
    *,
    debug: bool,
    command: str,
    on_stop: Callable[[], str | None] = lambda: None,
) -> tuple[int, str | None]:
    """Run `body`; turn every way it can end badly into one message. Returns (exit code, error).

    Once `body` has returned, the outcome is final: a later signal is ignored (`settle`), and one
    that comes before that is told as what it stopped (the files in place named)."""
    try:
        code = body()
        settle()
        return code, None
    except HarvestError as exc:
        _show_traceback(report, debug)
        usage_hint = f"see 'hfharvest {command} --help'" if isinstance(exc, UsageError) else None
        failed = exc.exit_code == ExitCode.FAILED
        report.failure(str(exc), exc.hint or (on_stop() if failed else usage_hint))
        return exc.exit_code, as_flags(str(exc))
    except BrokenPipeError:
        # The reader went away (`| head`): nothing more can be said on stdout, so stop quietly.
        _silence_stdout()
        return ExitCode.BROKEN_PIPE, "stdout was closed"
    except BaseException as exc:
        stopped = signal_of(exc)  # a signal (Python wraps one that came as it made a class)
        if stopped is not None:
            message = report.stopped(stopped.signal_name)
            report.failure(message, None if report.landed else on_stop())
            return stopped.exit_code, message
        if not isinstance(exc, Exception):
            raise
        _show_traceback(report, debug)
        report.failure(
            f"unexpected {type(exc).__name__}: {exc}",
            "this is a bug in hfharvest; run again with --debug and report what it prints",
        )
        return ExitCode.FAILED, f"{type(exc).__name__}: {exc}"


def _show_traceback(report: Report, debug: bool) -> None:
    if debug:
        report.line(traceback.format_exc().rstrip(), lines=True)


def _silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush cannot raise again."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def write_stats_file(
    report: Report, path: Path, document: dict[str, Any], code: int, *, debug: bool
) -> int:
    """The stats file, on every exit: when it fails after data was written, exit 5; after a
    failure, the failure's own code stands (and the stats file's trouble is said)."""

    def write_stats() -> int:
        write_json(path, document)
        return code

    wrote_data = code in (ExitCode.COMPLETE, ExitCode.PARTIAL)
    if wrote_data:
        return guarded(report, write_stats, debug=debug, command="fetch")[0]
    with contextlib.suppress(SideFileError):
        write_json(path, document)
        return code
    report.failure(f"cannot write `stats_json` {path} either")
    return code
