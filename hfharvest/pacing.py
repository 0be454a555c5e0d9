"""Pacing: spend the Hub's rate-limit budget at full speed, then wait for the next window.

Every answer carries `RateLimit: "api";r=<remaining>;t=<seconds to reset>`. One `Pacer` is shared
by the concurrent walks: it lets requests go while the budget the Hub last announced, less the
requests still in flight, is not spent, and once it is spent it holds them until the window
resets (`t` plus one second, since the Hub rounds `t` down) instead of drawing a 429. `--max-rps`
adds a fixed cap on the request rate. A 429 that still comes is retried as before. The
RateLimit headers are parsed here, for the pacer, the retry policy and the whole-listing estimate.

Every wait the Hub asks for, whichever header and status it came with, is bounded by `max_wait`:
by default one window's reset (the `RateLimit-Policy` window `w`, or the Hub's 300 s, plus one
second; a window is taken at an hour at most); a longer one fails the walk that would wait
(`WaitTooLongError`), never a sleep of hours.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager

from hfharvest.errors import WaitTooLongError
from hfharvest.hub import RATE_WINDOW

log = logging.getLogger("hfharvest")
LONGEST = 1e12  # seconds: a number of seconds read from a header is never taken above this
LONGEST_WINDOW = 3600  # seconds: the longest window the default `max_wait` waits for

_RATELIMIT_REMAINING = re.compile(r"(?:^|;)\s*r=(\d+)")
_RATELIMIT_RESET = re.compile(r"(?:^|;)\s*t=(\d+)")
_POLICY_QUOTA = re.compile(r"(?:^|;)\s*q=(\d+)")
_POLICY_WINDOW = re.compile(r"(?:^|;)\s*w=(\d+)")

Observe = Callable[[Mapping[str, str]], None]


def ratelimit_reset(value: str) -> tuple[int, int] | None:
    """Parse `RateLimit: "api";r=<remaining>;t=<seconds>` into (remaining, seconds)."""
    remaining = _RATELIMIT_REMAINING.search(value)
    reset = _RATELIMIT_RESET.search(value)
    if remaining is None or reset is None:
        return None
    return int(remaining.group(1)), _seconds(reset.group(1))


def _seconds(digits: str) -> int:
    """A header's number of seconds, at most `LONGEST` (400 digits are no wait, nor a float)."""
    return int(digits) if len(digits) < 13 else int(LONGEST)


def ratelimit_policy(value: str) -> tuple[int, int] | None:
    """Parse `RateLimit-Policy: "fixed window";"api";q=<quota>;w=<window>` into (quota, window)."""
    quota, window = _POLICY_QUOTA.search(value), _POLICY_WINDOW.search(value)
    if quota is None or window is None:
        return None
    return int(quota.group(1)), _seconds(window.group(1))


class Pacer:
    def __init__(
        self,
        max_rps: float | None = None,
        max_wait: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._max_rps = max_rps
        self._max_wait = max_wait
        self._window = RATE_WINDOW  # as the last RateLimit-Policy said
        self._clock = clock
        self._lock = threading.Lock()
        self._remaining: int | None = None  # as the last answer said; None: not known
        self._reset_at = 0.0
        self._in_flight = 0
        self._next_slot = 0.0
        self._announced = 0.0  # the reset already announced: one warning per window

    @contextmanager
    def request(self, sleep: Callable[[float], None]) -> Iterator[Observe]:
        """Wait for a slot, then yield a function to call with the answer's headers."""
        self._acquire(sleep)
        try:
            yield self._observe
        finally:
            with self._lock:
                self._in_flight -= 1

    def allowed_wait(self) -> float:
        """The longest wait the Hub may ask for: `max_wait`, else one window's reset."""
        return self._max_wait if self._max_wait is not None else self._window + 1.0

    def check_wait(self, seconds: float, asked_by: str) -> None:
        """Refuse a wait beyond `allowed_wait`: waiting that long is not worth it unattended."""
        if seconds > self.allowed_wait():
            given = "" if self._max_wait is not None else ", one rate-limit window's reset"
            raise WaitTooLongError(
                f"the Hub asked to wait {seconds:.0f} s ({asked_by}), more than `max_wait` "
                f"{self.allowed_wait():g} s{given}",
                hint="raise `max_wait`, pass a token for a larger rate limit, or try later",
            )

    def _acquire(self, sleep: Callable[[float], None]) -> None:
        while True:
            with self._lock:
                wait, spent = self._wait_needed(self._clock())
                if spent:
                    self.check_wait(wait, "RateLimit: this window's budget is spent")
                if wait <= 0:
                    self._in_flight += 1
                    if self._max_rps:
                        self._next_slot = max(self._next_slot, self._clock()) + 1 / self._max_rps
                    return
                announce = spent and self._announced != self._reset_at
                if announce:
                    self._announced = self._reset_at
            if announce:
                log.warning("rate limit: this window's budget is spent; waiting %.1f s", wait)
            sleep(wait)

    def _wait_needed(self, now: float) -> tuple[float, bool]:
        """(seconds to wait, whether it is the budget that is spent) for a request now."""
        if self._remaining is not None and now >= self._reset_at:
            self._remaining = None  # a new window: its budget is known from its first answer
        if self._remaining is not None and self._remaining - self._in_flight <= 0:
            return self._reset_at - now, True
        if self._max_rps and self._next_slot > now:
            return self._next_slot - now, False
        return 0.0, False

    def _observe(self, headers: Mapping[str, str]) -> None:
        policy = headers.get("RateLimit-Policy")
        window = ratelimit_policy(policy) if policy else None
        if window is not None:
            with self._lock:  # a server that names a window of days does not make one wait days
                self._window = min(window[1], LONGEST_WINDOW)
        value = headers.get("RateLimit")
        parsed = ratelimit_reset(value) if value else None
        if parsed is None:
            return
        remaining, reset = parsed
        with self._lock:
            now = self._clock()
            # t is rounded down, so now + t + 1 is never before the real reset: the smallest such
            # estimate in a window is the best one.
            estimate = now + reset + 1
            if self._remaining is not None and now < self._reset_at:
                # The same window as far as can be told: the budget only shrinks. Answers of
                # concurrent requests overtake each other, and an older one's is stale.
                self._remaining = min(self._remaining, remaining)
                self._reset_at = min(self._reset_at, estimate)
                return
            self._remaining = remaining
            self._reset_at = estimate
