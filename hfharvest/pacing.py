"""Pacing: spend the Hub's rate-limit budget at full speed, then wait for the next window.

Every answer carries `RateLimit: "api";r=<remaining>;t=<seconds to reset>`. One `Pacer` is shared
by the concurrent walks: it lets requests go while the budget the Hub last announced, less the
requests still in flight, is not spent, and once it is spent it holds them until the window
resets (`t` plus one second, since the Hub rounds `t` down) instead of drawing a 429. `--max-rps`
adds a fixed cap on the request rate. A 429 that still comes is retried as before. The
RateLimit headers are parsed here, for the pacer, the retry policy and the whole-listing estimate.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager

log = logging.getLogger("hfharvest")

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
    return int(remaining.group(1)), int(reset.group(1))


def ratelimit_policy(value: str) -> tuple[int, int] | None:
    """Parse `RateLimit-Policy: "fixed window";"api";q=<quota>;w=<window>` into (quota, window)."""
    quota, window = _POLICY_QUOTA.search(value), _POLICY_WINDOW.search(value)
    if quota is None or window is None:
        return None
    return int(quota.group(1)), int(window.group(1))


class Pacer:
    def __init__(
        self, max_rps: float | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._max_rps = max_rps
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

    def _acquire(self, sleep: Callable[[float], None]) -> None:
        while True:
            with self._lock:
                wait, spent = self._wait_needed(self._clock())
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
