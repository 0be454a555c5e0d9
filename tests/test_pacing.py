"""Pacing from the RateLimit headers: spend the budget, then wait for the reset; --max-rps."""

from __future__ import annotations

from typing import Any

import pytest
from typer.testing import CliRunner

from hfharvest.cli import app
from hfharvest.pacing import Pacer
from hfharvest.testing import HubEmulator, make_catalog


class Clock:
    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(round(seconds, 3))
        self.now += seconds


def go(pacer: Pacer, clock: Clock, headers: dict[str, str] | None = None) -> None:
    with pacer.request(clock.sleep) as observe:
        observe(headers or {})


def test_full_speed_while_budget_remains_then_wait_for_the_reset() -> None:
    clock = Clock()
    pacer = Pacer(clock=lambda: clock.now)
    go(pacer, clock, {"RateLimit": '"api";r=2;t=30'})
    go(pacer, clock, {"RateLimit": '"api";r=1;t=29'})
    go(pacer, clock, {"RateLimit": '"api";r=0;t=29'})
    assert clock.sleeps == []  # the budget was there: no wait at all
    go(pacer, clock, {"RateLimit": '"api";r=499;t=300'})
    assert clock.sleeps == [30]  # t + 1: the Hub rounds t down
    go(pacer, clock)
    assert clock.sleeps == [30]


def test_requests_in_flight_count_against_the_budget() -> None:
    clock = Clock()
    pacer = Pacer(clock=lambda: clock.now)
    go(pacer, clock, {"RateLimit": '"api";r=1;t=10'})
    with pacer.request(clock.sleep):  # one request under way uses the last unit of budget
        go(pacer, clock)  # so the next one waits for the reset: t + 1
    assert clock.sleeps == [11]
    go(pacer, clock)  # a new window
    assert clock.sleeps == [11]


def test_max_rps_spaces_requests() -> None:
    clock = Clock()
    pacer = Pacer(max_rps=4, clock=lambda: clock.now)
    for _ in range(3):
        go(pacer, clock)
    assert clock.sleeps == [0.25, 0.25]


def test_no_header_means_no_pacing() -> None:
    clock = Clock()
    pacer = Pacer(clock=lambda: clock.now)
    for _ in range(5):
        go(pacer, clock, {"RateLimit": "garbage"})
    assert clock.sleeps == []


@pytest.mark.slow
def test_concurrent_walks_share_one_budget_and_draw_no_429() -> None:
    """A quota of 6 per 1 s window, 2 sorts x 6 pages: paced over windows, never refused."""
    catalog = make_catalog(600, 0, 0, hf_inference=10)
    with HubEmulator(catalog, quota=6, window=1) as hub:
        result = CliRunner().invoke(
            app, ["fetch", "--endpoint", hub.url, "--page-size", "100", "-o", "-"]
        )
    assert result.exit_code == 0, result.stderr
    statuses = [r.status for r in hub.requests_log]
    assert statuses == [200] * 12  # 6 pages a sort, over two windows, and no 429
    assert "budget is spent; waiting" in result.stderr
    assert len(result.stdout.splitlines()) == 600


def test_two_sorts_make_exactly_the_minimum_requests(hub: HubEmulator) -> None:
    result = CliRunner().invoke(
        app, ["fetch", "--endpoint", hub.url, "--inference-provider", "hf-inference", "-q"]
    )
    assert result.exit_code == 0
    queries = sorted(r.query.split("&cursor")[0] for r in hub.requests_log)
    assert len(queries) == 4  # 1,000 + 377 per sort: two pages each, not one more
    assert sum(q.startswith("inference_provider=hf-inference&sort=likes&") for q in queries) == 2


def test_limit_prefetches_no_page_it_will_not_use(hub: HubEmulator) -> None:
    result = CliRunner().invoke(
        app,
        [
            "fetch",
            "--endpoint",
            hub.url,
            "--sort",
            "likes",
            "--limit",
            "250",
            "--page-size",
            "100",
            "-q",
        ],
    )
    assert result.exit_code == 0
    assert len(hub.requests_log) == 3


def test_max_rps_option_is_validated() -> None:
    result: Any = CliRunner().invoke(app, ["fetch", "--max-rps", "0"])
    assert result.exit_code == 2
    assert "--max-rps must be more than 0" in result.output


def test_an_answer_arriving_late_does_not_restore_spent_budget() -> None:
    clock = Clock()
    pacer = Pacer(clock=lambda: clock.now)
    with pacer.request(clock.sleep) as first, pacer.request(clock.sleep) as second:
        second({"RateLimit": '"api";r=0;t=5'})  # one answer comes first
        first({"RateLimit": '"api";r=1;t=5'})  # the other's budget is stale in this window
    go(pacer, clock, {"RateLimit": '"api";r=9;t=300'})  # waits out this window: t + 1
    assert clock.sleeps == [6]
    go(pacer, clock)  # a new window: its budget, whole
    assert clock.sleeps == [6]
