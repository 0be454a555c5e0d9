"""Walks that stop where the sort key says: --min-likes, --min-downloads, --since."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import responses
from typer.testing import CliRunner

from conftest import ENDPOINT, SettingsFactory, link
from hfharvest.bounds import Bounds, parse_since
from hfharvest.cli import app
from hfharvest.errors import UsageError
from hfharvest.outcome import Stop
from hfharvest.run import run_fetch
from hfharvest.testing import HubEmulator, make_catalog
from hfharvest.testing.catalog import Catalog

runner = CliRunner()
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return make_catalog(5000, 0, 0)  # 50 pages of 100


def fetch(hub: HubEmulator, *args: str) -> Any:
    return runner.invoke(app, ["fetch", "--endpoint", hub.url, "-q", "--page-size", "100", *args])


def records(stdout: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stdout.splitlines()]


def nth_highest(catalog: Catalog, key: str, n: int) -> Any:
    """The value that exactly `n` models reach (the catalog is built so that there is one)."""
    values = sorted((m[key] for m in catalog.repos["model"]), reverse=True)
    assert values[n - 1] > values[n], f"a tie at the {n}th {key}: pick another n"
    return values[n - 1]


def test_min_downloads_asks_9_pages_where_the_full_walk_asks_50(catalog: Catalog) -> None:
    bound = nth_highest(catalog, "downloads", 800)
    with HubEmulator(catalog) as hub:
        full = fetch(hub, "--sort", "downloads")
        full_pages = len(hub.requests_log)
        bounded = fetch(hub, "--sort", "downloads", "--min-downloads", str(bound))
        bounded_pages = len(hub.requests_log) - full_pages
    assert (full_pages, bounded_pages) == (50, 9)
    expected = [r for r in records(full.stdout) if r["downloads"] >= bound]
    found = records(bounded.stdout)
    assert len(found) == 800
    assert [r["id"] for r in found] == [r["id"] for r in expected]
    assert [r["found_by"] for r in found] == [r["found_by"] for r in expected]  # Hub positions


def test_since_on_created_at_asks_3_pages_for_250_new_repos(catalog: Catalog) -> None:
    since = nth_highest(catalog, "createdAt", 250)
    with HubEmulator(catalog) as hub:
        result = fetch(hub, "--sort", "createdAt", "--since", since)
        assert len(hub.requests_log) == 3
    found = records(result.stdout)
    newest = sorted(catalog.repos["model"], key=lambda m: (m["createdAt"], m["_id"]), reverse=True)
    assert [r["id"] for r in found] == [m["id"] for m in newest[:250]]
    assert all(r["created_at"] >= since for r in found)
    assert len(found) == 250


def test_since_alone_walks_last_modified_and_the_table_says_where_it_stopped(
    catalog: Catalog, tmp_path: Path
) -> None:
    since = nth_highest(catalog, "lastModified", 120)
    output = tmp_path / "changed.jsonl"
    with HubEmulator(catalog) as hub:
        result = runner.invoke(
            app,
            [
                "fetch",
                "--endpoint",
                hub.url,
                "--page-size",
                "100",
                "--since",
                since,
                "-o",
                str(output),
            ],
        )
        assert {"lastModified"} == {
            q.split("sort=")[1].split("&")[0] for q in (r.query for r in hub.requests_log)
        }
    assert result.exit_code == 0, result.stderr
    assert "below" in result.stderr.splitlines()[1]  # the table's column
    assert f"lastModified: stopped at --since {since}" in result.stderr
    manifest = json.loads(output.with_name("changed.jsonl.manifest").read_text())
    (walk,) = manifest["sorts"]
    assert (walk["reached_end"], walk["stopped_by"]) == (False, f"since {since}")
    assert walk["returned"] == 200 and walk["below_bound"] == 80
    assert manifest["request"]["bounds"]["since"] == since
    assert "no filter and no --limit" not in result.stderr  # a bounded walk costs no warning


def test_bounds_filter_every_sort_and_only_the_bounded_sort_stops(catalog: Catalog) -> None:
    bound = nth_highest(catalog, "likes", 300)
    with HubEmulator(catalog) as hub:
        result = runner.invoke(
            app,
            [
                "fetch",
                "--endpoint",
                hub.url,
                "--page-size",
                "1000",
                "--min-likes",
                str(bound),
                "--sort",
                "likes",
                "--sort",
                "trendingScore",
            ],
        )
    assert result.exit_code == 0, result.stderr
    assert "sort trendingScore cannot stop early at the bounds" in result.stderr
    rows = {
        line.split()[0]: line.split()[1:]
        for line in result.stderr.splitlines()
        if line.split()[:1] in (["likes"], ["trendingScore"])
    }
    returned, new, duplicates, skipped, below, pages = (
        int(n.replace(",", "")) for n in rows["trendingScore"][:6]
    )
    assert (returned, pages) == (5000, 5)  # walked to the end
    assert returned == new + duplicates + skipped + below
    assert rows["likes"][5] == "1"  # stopped on its first page
    assert len(records(result.stdout)) == 300


def test_with_bounds_and_no_sort_only_the_bounded_sorts_are_walked(hub: HubEmulator) -> None:
    result = fetch(hub, "--min-likes", "100", "--min-downloads", "5000")
    assert result.exit_code == 0, result.stderr
    walked = {r.query.split("sort=")[1].split("&")[0] for r in hub.requests_log}
    assert walked == {"likes", "downloads"}
    assert all(r["likes"] >= 100 and r["downloads"] >= 5000 for r in records(result.stdout))


@pytest.mark.parametrize(
    ("options", "field", "key"),
    [
        (
            ("--sort", "downloads", "--min-downloads", "1000", "--expand", "sha"),
            "downloads",
            "downloads",
        ),
        (("--since", "2024-07-01", "--no-full"), "lastModified", "last_modified"),  # not default
    ],
)
def test_a_bounds_field_is_always_asked_for(
    hub: HubEmulator, options: tuple[str, ...], field: str, key: str
) -> None:
    result = fetch(hub, *options)
    assert result.exit_code == 0, result.stderr
    assert f"expand={field}" in hub.requests_log[0].query
    assert "full=" not in hub.requests_log[0].query
    found = records(result.stdout)
    assert found and all(r[key] is not None for r in found)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("--since", "2026-11-30", "--sort", "likes"),
            "--since bounds a walk by its own date: it applies to --sort createdAt and --sort "
            "lastModified, not likes",
        ),
        (("--since", "yesterday"), "--since 'yesterday' is not a date or an ISO-8601 timestamp"),
        (("--since", "2999-01-01"), "is in the future"),
        (("--min-likes", "-1"), "--min-likes must be at least 0"),
    ],
)
def test_bad_bounds_are_refused_before_any_request(
    hub: HubEmulator, args: tuple[str, ...], message: str
) -> None:
    result = fetch(hub, *args)
    assert result.exit_code == 2
    assert message in result.stderr
    assert hub.requests_log == []


def test_created_at_beside_a_provider_gets_a_hint_to_walk_last_modified(hub: HubEmulator) -> None:
    result = fetch(
        hub, "--sort", "createdAt", "--since", "2021-01-01", "--inference-provider", "hf-inference"
    )
    assert result.exit_code == 1
    assert (
        "hint: the Hub refuses --sort createdAt beside --inference-provider; use "
        "lastModified for new or changed repos" in result.stderr
    )


def test_a_null_bounded_field_is_below_and_never_stops_the_walk(
    mocked: responses.RequestsMock, make_settings: SettingsFactory
) -> None:
    url = f"{ENDPOINT}/api/models?sort=downloads&limit=1000&full=true"
    first = [{"id": "a/1", "downloads": 50}, {"id": "a/2", "downloads": None}]
    mocked.get(url, json=first, headers=link(f"{url}&cursor=x"))
    second = [{"id": "a/3", "downloads": 10}, {"id": "a/4"}]
    mocked.get(f"{url}&cursor=x", json=second, headers=link(f"{url}&cursor=y"))  # never asked
    stdout = io.BytesIO()
    settings = make_settings(sort=("downloads",), min_downloads=20)
    outcome = run_fetch(settings, stdout, _Silent())
    assert [json.loads(line)["id"] for line in stdout.getvalue().splitlines()] == ["a/1"]
    (stats,) = outcome.stats
    assert (stats.pages, stats.returned, stats.below_bound, stats.new) == (2, 4, 3, 1)
    assert stats.stopped_by == "min_downloads 20"  # the second page crossed it (10 < 20)


def test_limit_counts_entries_below_the_bound_too(
    mocked: responses.RequestsMock, make_settings: SettingsFactory
) -> None:
    url = f"{ENDPOINT}/api/models?sort=likes&limit=3&full=true"
    mocked.get(
        url,
        json=[
            {"id": "a/1", "likes": 9, "downloads": 1},
            {"id": "a/2", "likes": 8, "downloads": 500},
            {"id": "a/3", "likes": 7, "downloads": 600},
        ],
        headers=link(f"{url}&cursor=x"),
    )
    stdout = io.BytesIO()
    outcome = run_fetch(
        make_settings(sort=("likes",), limit=3, min_downloads=100), stdout, _Silent()
    )
    (stats,) = outcome.stats
    assert (stats.returned, stats.below_bound, stats.new, stats.pages) == (3, 1, 2, 1)
    assert [json.loads(line)["found_by"] for line in stdout.getvalue().splitlines()] == [
        {"likes": 2},
        {"likes": 3},
    ]


def test_a_resumed_walk_keeps_the_bounds_it_began_with(catalog: Catalog, tmp_path: Path) -> None:
    since = nth_highest(catalog, "lastModified", 450)
    later = nth_highest(catalog, "lastModified", 50)
    state = str(tmp_path / "changes.state")
    output = str(tmp_path / "changes.jsonl")
    with HubEmulator(catalog) as hub:
        hub.add_fault("503@/cursor=/x9")  # the second page fails, on every retry
        first = runner.invoke(
            app,
            [
                "fetch",
                "--endpoint",
                hub.url,
                "-q",
                "--page-size",
                "100",
                "--since",
                since,
                "--state",
                state,
                "-o",
                output,
                "--retries",
                "2",
            ],
        )
        assert first.exit_code == 1
        hub.faults.clear()
        second = runner.invoke(
            app,
            [
                "fetch",
                "--endpoint",
                hub.url,
                "--page-size",
                "100",
                "--since",
                later,
                "--state",
                state,
                "-o",
                output,
            ],
        )
    assert second.exit_code == 0, second.stderr
    assert f"began with other bounds (--since {since}); its walks go on with those" in (
        second.stderr
    )
    assert len(records(Path(output).read_text())) == 450


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-30", "2026-11-30T00:00:00.000Z"),
        ("2026-11-30T06:30:00", "2026-11-30T06:30:00.000Z"),  # no zone: UTC
        ("2026-11-30T06:30:00+02:00", "2026-11-30T04:30:00.000Z"),
        ("2026-11-30T06:30:00.123456Z", "2026-11-30T06:30:00.123Z"),
    ],
)
def test_since_is_a_date_or_a_timestamp_in_utc(text: str, expected: str) -> None:
    assert parse_since(text, NOW) == expected


def test_since_in_the_future_is_refused() -> None:
    with pytest.raises(UsageError, match="in the future"):
        parse_since("2026-12-02", NOW)


class _Silent:
    def page_done(self, sort: str, returned: int, pages: int) -> None:
        pass


def test_bounds_are_described_by_their_parameters() -> None:
    assert Bounds(None, None, None).described() == "none"
    assert Bounds(
        min_likes=0, min_downloads=None, since="2026-11-30T00:00:00.000Z"
    ).described() == (
        "`min_likes` 0 `since` 2026-11-30T00:00:00.000Z"  # a bound of 0 is a bound
    )
    walk = Bounds(min_likes=None, min_downloads=100, since=None).for_walk("downloads")
    assert walk is not None and str(walk.stop) == "min_downloads 100"
    assert walk.stop == Stop("bound", "min_downloads", 100)
