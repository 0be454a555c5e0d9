"""The one retry policy: which failures are retried, and how long each wait is.

Only named transient causes are retried: connection errors and timeouts, the statuses in
`TRANSIENT_STATUSES`, and a 200 whose body is not a JSON array (`TransientResponseError`).
A wait the Hub asks for (`Retry-After`, either form, or `RateLimit: ...;r=0;t=N`) replaces the
exponential backoff, bounded by `max_wait` (the pacer says what that is). One page, across all its
attempts and waits, is bounded by `page_deadline`. Every number comes from `RetryPolicy`, so tests
set the waits to zero instead of sleeping.
"""

from __future__ import annotations

import logging
import math
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TypeVar

import requests
from requests.exceptions import ContentDecodingError
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    wait_exponential_jitter,
)

from hfharvest.errors import TransientResponseError
from hfharvest.pacing import LONGEST, ratelimit_reset

log = logging.getLogger("hfharvest")

T = TypeVar("T")

TRANSIENT_STATUSES = frozenset({408, 429, 500, 502, 503, 504})

# ChunkedEncodingError and ContentDecodingError are what requests raises for a connection
# reset or a body cut short mid-read; they are not ConnectionError subclasses.
TRANSIENT_EXCEPTIONS: tuple[type[BaseException], ...] = (
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,
    ContentDecodingError,
    TransientResponseError,
)

_ERRNO_TEXT = re.compile(r"\[Errno -?\d+\] ([^'\")]+)")


@dataclass(frozen=True)
class RetryPolicy:
    """How many times a page is tried again and how long each wait may be, in seconds.

    `max_wait` None: as long as one rate-limit window's reset (see `pacing.Pacer.allowed_wait`).
    """

    retries: int
    backoff_base: float
    backoff_max: float
    max_wait: float | None
    page_deadline: float


class PageTimeUp(Exception):
    """The next attempt at a page would begin past `page_deadline`: `last` is the last failure."""

    def __init__(self, attempts: int, last: BaseException | None) -> None:
        super().__init__(f"no page after {attempts} attempts")
        self.attempts = attempts
        self.last = last


def retry_after_seconds(value: str, now: datetime | None = None) -> float | None:
    """Parse a `Retry-After` header: delay-seconds or an HTTP-date. None when unreadable."""
    value = value.strip()
    if value.isascii() and value.isdigit():  # "²" is a digit to Python, and no number to float
        return min(float(value), LONGEST)  # 400 digits are no wait, and no float either
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def demanded_wait(headers: Mapping[str, str]) -> tuple[float, str] | None:
    """The wait an answer asks for, and which header asked; None when it asks for none.

    `Retry-After` wins; otherwise an exhausted `RateLimit` budget (r=0) asks for its reset,
    plus one second because the Hub rounds `t` down.
    """
    retry_after = headers.get("Retry-After")
    if retry_after is not None:
        seconds = retry_after_seconds(retry_after)
        if seconds is not None:
            return math.ceil(seconds), "Retry-After"
    ratelimit = headers.get("RateLimit")
    if ratelimit is not None:
        parsed = ratelimit_reset(ratelimit)
        if parsed is not None and parsed[0] == 0:
            return float(parsed[1] + 1), "RateLimit"
    return None


def describe_failure(exc: BaseException | None) -> str:
    """A short cause for a log line: no URL (the caller names the page), no library noise."""
    if isinstance(exc, TransientResponseError):
        return f"HTTP {exc.status}: {exc.detail}"
    if isinstance(exc, requests.Timeout):
        return "no answer within the timeout"
    if isinstance(exc, requests.exceptions.ChunkedEncodingError | ContentDecodingError):
        return "the connection broke in the middle of an answer"
    match = _ERRNO_TEXT.search(str(exc))
    if match:
        return match.group(1).strip()
    return type(exc).__name__ if exc is not None else "unknown error"


REFUSED = "Connection refused"


def longest_retries(policy: RetryPolicy) -> float:
    """The longest the waits between a page's attempts can add up to (each as long as the
    backoff and its jitter allow), within `page_deadline`."""
    waits = (
        min(policy.backoff_max, policy.backoff_base * 2 ** (attempt - 1) + policy.backoff_base)
        for attempt in range(1, policy.retries + 1)
    )
    return float(min(sum(waits), policy.page_deadline))


def call_with_retries(
    fetch: Callable[[], T],
    policy: RetryPolicy,
    *,
    describe: str,
    where: str = "",
    on_retry: Callable[[], None] = lambda: None,
    sleep: Callable[[float], None] = time.sleep,
    stopping: Callable[[], bool] = lambda: False,
) -> T:
    """Call `fetch` until it succeeds, a non-transient error comes, or the attempts run out.

    The last exception is re-raised unchanged, so callers see the real cause; `PageTimeUp` when
    the next attempt would begin past `page_deadline` seconds after the first. Once `stopping`
    (the walk cut the answer itself), a failure is no retry to tell of: `sleep` ends the walk.
    """
    backoff = wait_exponential_jitter(
        multiplier=policy.backoff_base, max=policy.backoff_max, jitter=policy.backoff_base
    )

    def wait(state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, TransientResponseError) and exc.demanded_wait is not None:
            return exc.demanded_wait
        return float(backoff(state))

    def before_sleep(state: RetryCallState) -> None:
        if stopping():
            return
        exc = state.outcome.exception() if state.outcome else None
        seconds = state.next_action.sleep if state.next_action else 0.0
        cause = describe_failure(exc)
        if state.attempt_number == 1 and cause == REFUSED and where:
            # The first time only: what a refusal means, and how long trying again will take.
            cause += (
                f": nothing listens at {where} (the retries take up to "
                f"{longest_retries(policy):.0f} s)"
            )
        log.warning(
            "%s: %s; retry %d of %d in %.1f s",
            describe,
            cause,
            state.attempt_number,
            policy.retries,
            seconds,
        )
        on_retry()

    out_of_time: list[int] = []

    def stop(state: RetryCallState) -> bool:
        if state.attempt_number >= policy.retries + 1:
            return True
        # The time spent so far: by the clock, or (a test's sleep that does not sleep) the waits.
        spent = max(state.seconds_since_start or 0.0, state.idle_for)
        if spent + state.upcoming_sleep >= policy.page_deadline:
            out_of_time.append(state.attempt_number)
            return True
        return False

    retrying = Retrying(
        retry=retry_if_exception_type(TRANSIENT_EXCEPTIONS),
        stop=stop,
        wait=wait,
        before_sleep=before_sleep,
        sleep=sleep,
        reraise=True,
    )
    try:
        return retrying(fetch)
    except TRANSIENT_EXCEPTIONS as exc:
        if out_of_time:
            raise PageTimeUp(out_of_time[0], exc) from exc
        raise
