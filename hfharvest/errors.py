"""The project's exception hierarchy and its exit codes, each defined once.

Modules below the CLI raise these and never print or exit. Their text speaks Python: an option
is named as its parameter, in backquotes (`` `limit` ``), never as a flag; `cli.py` is the one
boundary that turns those names into flags and an error into a one-line message, an optional
hint and its exit code. Errors carry structured fields besides their text: `parameter` and
`value` on a `UsageError`, `status`, `url` and `detail` on a `HubResponseError`, and, once the
walks have begun, the `outcome` so far.
"""

from __future__ import annotations

import json
from enum import IntEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, quote_plus

if TYPE_CHECKING:
    from hfharvest.outcome import Outcome


class ExitCode(IntEnum):
    """Every exit code `hfharvest fetch` can end with (README, `--help`, docs/usage.md)."""

    COMPLETE = 0
    FAILED = 1  # nothing written to a file; an earlier file untouched
    REFUSED = 2  # before any request: a bad option, environment or output path
    PARTIAL = 3  # a sort failed and allow_partial was given
    TOO_FEW = 4  # fewer than min_count records: nothing written
    SIDE_FILE = 5  # the data was written; a side file (manifest, stats) could not be
    SIGINT = 130
    BROKEN_PIPE = 141
    SIGTERM = 143


class Stopped(BaseException):
    """A signal that ends the run, raised in the main thread by the console entry's handler so
    that open files are cleaned up on the way out (not a `KeyboardInterrupt`, which typer turns
    into a silent exit 130)."""

    signal_name = "SIGINT"
    exit_code = ExitCode.SIGINT


class Interrupted(Stopped):
    """SIGINT."""


class Terminated(Stopped):
    """SIGTERM."""

    signal_name = "SIGTERM"
    exit_code = ExitCode.SIGTERM


def signal_of(error: BaseException | None) -> Stopped | None:
    """The signal an exception stands for, if any: the one place a signal becomes an exit code
    (a `KeyboardInterrupt` is SIGINT, as Python raises it where no handler of ours is set). A
    signal that came while a class was being made arrives wrapped in a `RuntimeError` (Python
    3.11 wraps what `__set_name__` raises): it is found as that error's cause."""
    while error is not None:
        if isinstance(error, Stopped):
            return error
        if isinstance(error, KeyboardInterrupt):
            return Interrupted()
        error = error.__cause__ if isinstance(error, RuntimeError) else None
    return None


class HarvestError(Exception):
    """Base of every error hfharvest reports to the user; `str()` is the one-line cause."""

    exit_code: ExitCode = ExitCode.FAILED

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint
        self.outcome: Outcome | None = None  # what the walks did, once they began
        self.outcomes: tuple[Outcome, ...] | None = None  # per listing, once the walks ended


class UsageError(HarvestError, ValueError):
    """Refused before any request: a bad option, environment or output path (exit 2). Also a
    `ValueError`, as Python callers expect of a bad value.

    `parameter` names the option at fault (None for the environment), `value` is what it was
    given.
    """

    exit_code = ExitCode.REFUSED

    def __init__(
        self,
        message: str,
        *,
        parameter: str | None = None,
        value: Any = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.parameter = parameter
        self.value = value


class OptionTypeError(UsageError, TypeError):
    """An option of the wrong type from Python (`limit="10"`): a `TypeError` too."""


class OfflineError(UsageError):
    """`HF_HUB_OFFLINE` forbids any request."""


class HubError(HarvestError):
    """The walk could not go on: the Hub refused, or could not be reached after retries."""


class HubResponseError(HubError):
    """The Hub answered with an error status or an error body."""

    def __init__(self, status: int, url: str, detail: str, *, hint: str | None = None) -> None:
        # The Hub's words first; the URL (whole in `.url`) shortened after them.
        super().__init__(f"{detail} (HTTP {status} from {shortened(url)})", hint=hint)
        self.status = status
        self.url = url
        self.detail = detail


URL_SHOWN = 100  # characters of a URL a one-line message shows


def shortened(url: str) -> str:
    """A URL for a one-line message: whole up to `URL_SHOWN` characters, else cut with `…`."""
    return url if len(url) <= URL_SHOWN else url[: URL_SHOWN - 1] + "…"


class TransientResponseError(HubResponseError):
    """An answer worth retrying (408, 429, 5xx, a 200 that is not a JSON array).

    `demanded_wait` is the wait the Hub asked for (Retry-After or RateLimit), in seconds.
    """

    def __init__(
        self, status: int, url: str, detail: str, *, demanded_wait: float | None = None
    ) -> None:
        super().__init__(status, url, detail)
        self.demanded_wait = demanded_wait


class UnreachableError(HubError):
    """Connection refused, reset or timed out on every attempt."""


class WaitTooLongError(HubError):
    """The Hub asked for a wait longer than `max_wait`."""


class CrossOriginError(HubError):
    """A `Link` or a redirect would take the walk (and the token) to another origin."""


class CursorLoopError(HubError):
    """A `Link` named a page the walk had already fetched: following it would loop forever."""


class NoProgressError(HubError):
    """Pages kept coming with no id new to the walk: a listing that would never end."""


class PageDeadlineError(HubError):
    """One page, across all its retries, took longer than `page_deadline`."""


class MaxTimeError(HubError):
    """The run took longer than `max_time`: the walks still going were stopped."""


class TooFewRecordsError(HarvestError):
    """Fewer unique records than `min_count`: nothing is written (exit 4)."""

    exit_code = ExitCode.TOO_FEW


class SmallerSetError(TooFewRecordsError):
    """A `Mirror`'s refresh came back with far fewer records than its last good set: not taken.
    `got` records came, `previous` were served, `min_ratio` is the share a refresh must keep."""

    def __init__(self, got: int, previous: int, min_ratio: float) -> None:
        super().__init__(
            f"the refresh brought {got:,} records, fewer than `min_ratio` {min_ratio:g} of the "
            f"{previous:,} served; the last good set is kept",
            hint="if the set really shrank, take it with refresh(accept_smaller=True)",
        )
        self.got = got
        self.previous = previous
        self.min_ratio = min_ratio


class OutputError(HarvestError):
    """Writing the output failed after the harvest (disk full, I/O error)."""


class SideFileError(HarvestError):
    """The data file is in place, but a side file (the manifest, the stats) could not be
    written (exit 5). `path` is the side file."""

    exit_code = ExitCode.SIDE_FILE

    def __init__(self, path: Path, error: OSError) -> None:
        reason = error.strerror or str(error)
        super().__init__(
            f"the data was written, {path} not: {reason}",
            hint="free some space or fix the folder; the data file is complete",
        )
        self.path = path


class SnapshotError(HarvestError):
    """A snapshot that cannot be read (exit 2 for `diff`, as diff(1) says of trouble)."""

    exit_code = ExitCode.REFUSED


MASK = "***"


def redact(text: str, secret: str | None) -> str:
    """`text` with the token masked in every form it can take on its way out: as sent, escaped
    (in JSON or a repr), URL-encoded. The one masking step every text leaving the process (stderr,
    the stats, the manifest, the state, an exception handed to Python) passes through."""
    if not secret:
        return text
    for form in secret_forms(secret):
        text = text.replace(form, MASK)
    return text


def redact_tree(value: Any, secret: str | None) -> Any:
    """A document (dicts, lists, strings) with the token masked in every string of it."""
    if not secret:
        return value
    if isinstance(value, str):
        return redact(value, secret)
    if isinstance(value, dict):
        return {key: redact_tree(item, secret) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [redact_tree(item, secret) for item in value]
    return value


def redact_error(error: BaseException, secret: str | None) -> None:
    """Mask the token in an error's text and hint, before it leaves for a Python caller."""
    if secret:
        error.args = tuple(redact_tree(list(error.args), secret))
        if isinstance(error, HarvestError) and error.hint:
            error.hint = redact(error.hint, secret)


def secret_forms(secret: str) -> list[str]:
    """Every form the token can take on its way out (longest first), as `redact` masks them."""
    forms = {
        secret,
        json.dumps(secret)[1:-1],
        repr(secret)[1:-1],
        quote(secret, safe=""),
        quote_plus(secret),
    }
    return sorted(forms, key=len, reverse=True)


_CONTROL = frozenset((*range(0x20), *range(0x7F, 0xA0)))


def printable(text: str, keep: str) -> str:
    """Control characters (escape sequences, carriage returns, newlines) as `\\xNN`."""
    if not any(ord(char) in _CONTROL for char in text):
        return text
    return "".join(
        f"\\x{ord(char):02x}" if ord(char) in _CONTROL and char not in keep else char
        for char in text
    )
