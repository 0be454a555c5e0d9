"""The retry policy: what is retried, how many times, and how long each wait is."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import pytest
import requests

from hfharvest.errors import HubResponseError, TransientResponseError, WaitTooLongError
from hfharvest.pacing import Pacer, ratelimit_reset
from hfharvest.retry import (
    PageTimeUp,
    RetryPolicy,
    call_with_retries,
    demanded_wait,
    retry_after_seconds,
)


def make_policy(
    retries: int, backoff_base: float = 0, backoff_max: float = 0, page_deadline: float = 600
) -> RetryPolicy:
    return RetryPolicy(retries, backoff_base, backoff_max, None, page_deadline)


NO_WAIT = make_policy(retries=3)


def test_retry_after_seconds_and_http_date() -> None:
    now = datetime(2025, 10, 21, 7, 28, 0, tzinfo=UTC)
    assert retry_after_seconds("7") == 7
    assert retry_after_seconds("Tue, 21 Oct 2025 07:28:30 GMT", now) == 30
    assert retry_after_seconds("Tue, 21 Oct 2025 07:27:00 GMT", now) == 0  # already past
    assert retry_after_seconds("soon") is None


def test_ratelimit_header() -> None:
    assert ratelimit_reset('"api";r=0;t=55') == (0, 55)
    assert ratelimit_reset('"api";r=499;t=300') == (499, 300)
    assert ratelimit_reset("garbage") is None


def test_demanded_wait_prefers_retry_after_and_pads_ratelimit() -> None:
    assert demanded_wait({"Retry-After": "3", "RateLimit": '"api";r=0;t=55'}) == (3, "Retry-After")
    assert demanded_wait({"RateLimit": '"api";r=0;t=55'}) == (56, "RateLimit")
    assert demanded_wait({"RateLimit": '"api";r=12;t=55'}) is None
    assert demanded_wait({}) is None


def test_wait_beyond_max_wait_is_refused() -> None:
    with pytest.raises(WaitTooLongError, match=r"asked to wait 600 s.*`max_wait` 300"):
        Pacer(max_wait=300).check_wait(600, "Retry-After")
    Pacer(max_wait=300).check_wait(300, "Retry-After")


def test_the_default_max_wait_is_one_window_and_a_second() -> None:
    pacer = Pacer()
    assert pacer.allowed_wait() == 301  # the Hub's 300 s window
    observe = pacer.request(lambda s: None).__enter__()
    observe({"RateLimit-Policy": '"fixed window";"api";q=1000;w=600'})
    assert pacer.allowed_wait() == 601
    with pytest.raises(WaitTooLongError, match="one rate-limit window's reset"):
        pacer.check_wait(602, "RateLimit")


def test_absurd_waits_are_a_named_cause_not_a_crash() -> None:
    assert retry_after_seconds("9" * 400) == 1e12
    assert ratelimit_reset('"api";r=0;t=' + "9" * 400) == (0, 10**12)
    wait = demanded_wait({"Retry-After": "9" * 400})
    assert wait is not None
    with pytest.raises(WaitTooLongError, match="asked to wait 1000000000000 s"):
        Pacer().check_wait(wait[0], wait[1])


def test_a_page_has_a_bound_across_all_its_attempts() -> None:
    clock = [0.0]
    policy = make_policy(retries=50, backoff_base=10, backoff_max=10, page_deadline=35)

    def sleep(seconds: float) -> None:
        clock[0] += seconds

    fetch = Flaky([requests.ConnectionError("refused")] * 50)
    with pytest.raises(PageTimeUp) as raised:
        call_with_retries(fetch, policy, describe="page", sleep=sleep)
    assert raised.value.attempts < 50 and isinstance(raised.value.last, requests.ConnectionError)


class Flaky:
    def __init__(self, failures: list[BaseException]) -> None:
        self.failures = failures
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        return "ok"


@pytest.mark.parametrize(
    "failure",
    [
        requests.ConnectionError("refused"),
        requests.Timeout("slow"),
        requests.exceptions.ChunkedEncodingError("cut"),
        TransientResponseError(503, "u", "down"),
    ],
)
def test_transient_causes_are_retried(failure: BaseException) -> None:
    fetch = Flaky([failure, failure])
    retries: list[int] = []
    result = call_with_retries(
        fetch, NO_WAIT, describe="p", on_retry=lambda: retries.append(1), sleep=lambda s: None
    )
    assert result == "ok"
    assert fetch.calls == 3
    assert len(retries) == 2


def test_permanent_errors_are_not_retried() -> None:
    fetch = Flaky([HubResponseError(400, "u", "bad")])
    with pytest.raises(HubResponseError):
        call_with_retries(fetch, NO_WAIT, describe="p", sleep=lambda s: None)
    assert fetch.calls == 1


def test_attempts_run_out_and_the_real_exception_is_reraised() -> None:
    fetch = Flaky([requests.ConnectionError("refused")] * 10)
    with pytest.raises(requests.ConnectionError, match="refused"):
        call_with_retries(fetch, NO_WAIT, describe="p", sleep=lambda s: None)
    assert fetch.calls == 4


def test_zero_retries_means_one_attempt() -> None:
    fetch = Flaky([requests.ConnectionError("refused")])
    with pytest.raises(requests.ConnectionError):
        call_with_retries(fetch, make_policy(retries=0), describe="p", sleep=lambda s: None)
    assert fetch.calls == 1


def test_demanded_wait_replaces_backoff_and_each_retry_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    fetch = Flaky([TransientResponseError(429, "u", "slow down", demanded_wait=7)])
    waits: list[float] = []
    policy = make_policy(retries=2, backoff_base=100, backoff_max=100)
    with caplog.at_level(logging.WARNING, logger="hfharvest"):
        call_with_retries(fetch, policy, describe="sort likes, page 2", sleep=waits.append)
    assert waits == [7]
    assert caplog.messages == ["sort likes, page 2: HTTP 429: slow down; retry 1 of 2 in 7.0 s"]


def test_backoff_grows_and_is_capped() -> None:
    fetch = Flaky([requests.ConnectionError("x")] * 5)
    waits: list[float] = []
    policy = make_policy(retries=5, backoff_base=1, backoff_max=4)
    call_with_retries(fetch, policy, describe="p", sleep=waits.append)
    assert 1 <= waits[0] <= 2
    assert 2 <= waits[1] <= 3
    assert all(w <= 4 for w in waits)
    assert waits[-1] == 4


def test_the_longest_the_retries_can_take_is_said_from_the_policy() -> None:
    from hfharvest.retry import RetryPolicy, longest_retries

    policy = RetryPolicy(
        retries=5, backoff_base=1, backoff_max=30, max_wait=None, page_deadline=600
    )
    assert longest_retries(policy) == 2 + 3 + 5 + 9 + 17  # base * 2**(n-1) + base of jitter
    assert longest_retries(RetryPolicy(10, 1, 30, None, 100)) == 100  # within page_deadline
