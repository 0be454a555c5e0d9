"""The project's exception hierarchy: every failure a user can meet, each with its exit code.

Modules below the CLI raise these and never print or exit; `cli.py` is the one boundary that
turns them into a one-line message, an optional hint and the exit code documented in the README.
"""

from __future__ import annotations


class HarvestError(Exception):
    """Base of every error hfharvest reports to the user; `str()` is the one-line cause."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint


class UsageError(HarvestError):
    """Refused before any request: a bad option, environment or output path (exit 2)."""

    exit_code = 2


class OfflineError(UsageError):
    """`HF_HUB_OFFLINE` forbids any request."""


class HubError(HarvestError):
    """The walk could not go on: the Hub refused, or could not be reached after retries."""


class HubResponseError(HubError):
    """The Hub answered with an error status or an error body."""

    def __init__(self, status: int, url: str, detail: str, *, hint: str | None = None) -> None:
        super().__init__(f"HTTP {status} from {url}: {detail}", hint=hint)
        self.status = status
        self.url = url
        self.detail = detail


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
    """The Hub asked for a wait longer than `--max-wait`."""


class CrossOriginError(HubError):
    """A `Link` or a redirect would take the walk (and the token) to another origin."""


class CursorLoopError(HubError):
    """A `Link` named a page the walk had already fetched: following it would loop forever."""


class TooFewRecordsError(HarvestError):
    """Fewer unique records than `--min-count`: nothing is written (exit 4)."""

    exit_code = 4


class OutputError(HarvestError):
    """Writing the output failed after the harvest (disk full, I/O error)."""


def redact(text: str, secret: str | None) -> str:
    """Return `text` with every occurrence of `secret` masked, so no message can leak a token."""
    if not secret:
        return text
    return text.replace(secret, "***")
