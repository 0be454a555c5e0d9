"""The walks through run_fetch(): merge order, per-sort counts, limits, duplicates, determinism."""

from __future__ import annotations

import dataclasses
import io
import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit

import pytest
import responses
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import ENDPOINT, SettingsFactory, link, models
from hfharvest import answer
from hfharvest.client import Page
from hfharvest.errors import HubResponseError, TransientResponseError
from hfharvest.outcome import Outcome, SortStats
from hfharvest.records import Final
from hfharvest.run import run_fetch
from hfharvest.settings import Settings

LIST = f"{ENDPOINT}/api/models"


class Silent:
    def __init__(self) -> None:
        self.pages: list[tuple[str, int, int]] = []

    def page_done(self, sort: str, returned: int, pages: int) -> None:
        self.pages.append((sort, returned, pages))


def run(
    settings: Settings, stdout: io.BytesIO | None = None, **kwargs: Any
) -> tuple[list[dict[str, Any]], Outcome]:
    """The real path of `fetch` (run_fetch) into memory: the records and the stats."""
    stdout = stdout if stdout is not None else io.BytesIO()
    outcome = run_fetch(settings, stdout, Silent(), **kwargs)
    return [json.loads(line) for line in stdout.getvalue().splitlines()], outcome


# What a walk filtered by provider asks for: the fields full=true stands for, and the mapping.
MAPPED = "".join(
    f"&expand={name}"
    for name in (
        "likes",
        "trendingScore",
        "private",
        "downloads",
        "tags",
        "pipeline_tag",
        "library_name",
        "createdAt",
        "author",
        "sha",
        "lastModified",
        "gated",
        "disabled",
        "siblings",
        "inferenceProviderMapping",
    )
)


def first(sort: str, limit: int = 1000) -> str:
    return f"{LIST}?inference_provider=hf-inference&sort={sort}&limit={limit}{MAPPED}"


def by_sort(ids: list[int]) -> list[dict[str, Any]]:
    return [{"id": f"org/m{i}", "likes": 1} for i in ids]


def check_counts(stats: SortStats) -> None:
    assert stats.returned == stats.new + stats.duplicates + stats.skipped


class TestTheHfInferenceCase:
    """1,377 models; likes and downloads share 1,000 + 377 pages; their top 1,000s share 796."""

    likes: ClassVar[list[int]] = list(range(1377))
    # downloads rank: 796 of the top 1,000 by likes, then 204 others, then the remaining 377
    downloads: ClassVar[list[int]] = (
        list(range(796))
        + list(range(1000, 1204))
        + list(range(796, 1000))
        + list(range(1204, 1377))
    )

    def register(self, mocked: responses.RequestsMock, limit_only: bool) -> None:
        for sort, order in (("likes", self.likes), ("downloads", self.downloads)):
            cursor = f"{first(sort)}&cursor={sort}2"
            mocked.get(first(sort), json=by_sort(order[:1000]), headers=link(cursor))
            if not limit_only:
                mocked.get(cursor, json=by_sort(order[1000:]))

    def test_limit_1000_reproduces_the_replaced_script(
        self, make_settings: SettingsFactory
    ) -> None:
        with responses.RequestsMock() as mocked:
            self.register(mocked, limit_only=True)
            _, result = run(make_settings(inference_provider=("hf-inference",), limit=1000))
        likes, downloads = result.stats
        assert (likes.returned, likes.new, likes.duplicates) == (1000, 1000, 0)
        assert (downloads.returned, downloads.new, downloads.duplicates) == (1000, 204, 796)
        assert result.unique == 1204
        assert not likes.reached_end  # stopped at --limit with more available

    def test_walking_to_the_end_returns_all_1377(self, make_settings: SettingsFactory) -> None:
        with responses.RequestsMock() as mocked:
            self.register(mocked, limit_only=False)
            records, result = run(make_settings(inference_provider=("hf-inference",)))
        likes, downloads = result.stats
        assert (likes.returned, likes.new, likes.pages) == (1377, 1377, 2)
        assert (downloads.returned, downloads.new, downloads.duplicates) == (1377, 0, 1377)
        assert result.unique == len(records) == 1377
        assert likes.reached_end and downloads.reached_end
        assert len({r["id"] for r in records}) == 1377


def test_merge_order_and_found_by_ranks(
    unordered: responses.RequestsMock, make_settings: SettingsFactory
) -> None:
    mocked = unordered  # the walks run concurrently: their requests come in any order
    mocked.get(f"{LIST}?sort=likes&limit=1000&full=true", json=by_sort([1, 2, 3]))
    mocked.get(f"{LIST}?sort=downloads&limit=1000&full=true", json=by_sort([3, 4, 1]))
    records, result = run(make_settings())
    assert [r["id"] for r in records] == ["org/m1", "org/m2", "org/m3", "org/m4"]
    assert [r["found_by"] for r in records] == [
        {"likes": 1, "downloads": 3},
        {"likes": 2},
        {"likes": 3, "downloads": 1},
        {"downloads": 2},
    ]
    assert [(s.new, s.duplicates) for s in result.stats] == [(3, 0), (1, 2)]
    assert list(records[0])[-1] == "found_by"


def test_limit_mid_page_never_asks_for_an_unused_page(
    mocked: responses.RequestsMock, make_settings: SettingsFactory
) -> None:
    url = f"{LIST}?sort=likes&limit=2&full=true"
    mocked.get(url, json=models(0, 2), headers=link(f"{url}&cursor=a"))
    mocked.get(f"{url}&cursor=a", json=models(2, 2), headers=link(f"{url}&cursor=b"))
    records, result = run(make_settings(sort=("likes",), limit=3, page_size=2))
    assert [r["id"] for r in records] == ["org/m0", "org/m1", "org/m2"]
    assert result.stats[0].returned == 3
    assert result.stats[0].pages == 2
    assert len(mocked.calls) == 2  # the page behind cursor=b was never requested


def test_limit_equal_to_a_full_page_stops_there(
    mocked: responses.RequestsMock, make_settings: SettingsFactory
) -> None:
    url = f"{LIST}?sort=likes&limit=2&full=true"
    mocked.get(url, json=models(0, 2), headers=link(f"{url}&cursor=a"))
    _, result = run(make_settings(sort=("likes",), limit=2))
    assert result.stats[0].pages == 1
    assert result.stats[0].reached_end is False


def test_duplicates_within_a_sort_and_skipped_entries(
    mocked: responses.RequestsMock, make_settings: SettingsFactory
) -> None:
    url = f"{LIST}?sort=likes&limit=1000&full=true"
    page1: list[Any] = [*by_sort([1, 2]), "junk", {"likes": 5}]
    mocked.get(url, json=page1, headers=link(f"{url}&cursor=x"))
    mocked.get(f"{url}&cursor=x", json=[*by_sort([2, 3]), None])  # m2 moved across the cursor
    records, result = run(make_settings(sort=("likes",)))
    stats = result.stats[0]
    assert [r["id"] for r in records] == ["org/m1", "org/m2", "org/m3"]
    assert (stats.returned, stats.new, stats.duplicates, stats.skipped) == (7, 3, 1, 3)
    assert records[2]["found_by"] == {"likes": 6}  # the rank counts skipped entries too
    check_counts(stats)


def test_raw_adds_the_untouched_object_after_found_by(
    unordered: responses.RequestsMock, make_settings: SettingsFactory
) -> None:
    mocked = unordered
    entry = {"_id": "1", "id": "a/b", "weird": {"nested": [1]}}
    mocked.get(f"{LIST}?sort=likes&limit=1000&full=true", json=[entry])
    mocked.get(f"{LIST}?sort=id&limit=1000&full=true", json=[entry])
    records, _ = run(make_settings(sort=("likes", "id"), raw=True))
    assert records[0]["raw"] == entry
    assert list(records[0])[-2:] == ["found_by", "raw"]


def test_retries_are_counted_per_sort(
    mocked: responses.RequestsMock, make_settings: SettingsFactory
) -> None:
    url = f"{LIST}?sort=likes&limit=1000&full=true"
    mocked.get(url, status=503)
    mocked.get(url, status=502)
    mocked.get(url, json=by_sort([1]))
    _, result = run(make_settings(sort=("likes",)))
    assert result.stats[0].retries == 2


def test_one_failed_sort_fails_the_harvest_and_stops_the_others(
    make_settings: SettingsFactory,
) -> None:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mocked:
        mocked.get(f"{LIST}?sort=likes&limit=1000&full=true", json=by_sort([1]))
        mocked.get(
            f"{LIST}?sort=trendingScore&limit=1000&full=true",
            status=400,
            headers={"X-Error-Message": "Invalid sort parameter: trendingScore"},
        )
        stdout = io.BytesIO()
        with pytest.raises(HubResponseError, match="Invalid sort parameter: trendingScore"):
            run(make_settings(sort=("likes", "trendingScore")), stdout)
    assert stdout.getvalue() == b""  # with several sorts nothing is final before every walk ends


class ScriptedSource:
    """A `PageSource` serving canned pages per sort; `before(sort)` runs as each walk begins."""

    def __init__(
        self, pages: dict[str, list[list[Any]]], before: Callable[[str], object] = lambda sort: None
    ) -> None:
        self._scripted = pages
        self._before = before

    def pages(self, url: str, **_: Any) -> Iterator[Page]:
        (sort,) = parse_qs(urlsplit(url).query)["sort"]
        self._before(sort)
        scripted = self._scripted[sort]
        for index, entries in enumerate(scripted):
            last = index == len(scripted) - 1
            yield Page(f"p{index}", entries, next_url=None if last else f"p{index + 1}")

    def close(self) -> None:
        pass


def scripted_run(
    settings: Settings, pages: dict[str, list[list[Any]]], delays: dict[str, float]
) -> tuple[list[dict[str, Any]], Outcome]:
    def delay(sort: str) -> None:
        time.sleep(delays.get(sort, 0))  # each walk finishes after its own delay

    return run(settings, make_source=lambda sleep: ScriptedSource(pages, delay))


def test_output_does_not_depend_on_which_walk_finished_first(
    make_settings: SettingsFactory,
) -> None:
    settings = make_settings(sort=("likes", "downloads", "id"))
    pages = {
        "likes": [by_sort([1, 2]), by_sort([3])],
        "downloads": [by_sort([4, 1]), by_sort([5, 2])],
        "id": [by_sort([6, 5, 4, 3, 2, 1])],
    }
    records, result = scripted_run(settings, pages, {"likes": 0.05, "downloads": 0.02})
    records_2, result_2 = scripted_run(settings, pages, {"id": 0.05, "downloads": 0.02})
    assert records == records_2
    assert untimed(result) == untimed(result_2)
    assert [r["id"][5:] for r in records] == ["1", "2", "3", "4", "5", "6"]


def untimed(result: Outcome) -> list[SortStats]:
    return [dataclasses.replace(stats, seconds=0) for stats in result.stats]


entry_ids = st.one_of(st.integers(0, 30).map(lambda i: {"id": f"o/{i}"}), st.just("junk"))


def _endless(pages: list[list[Any]]) -> bool:
    """Three pages in a row, each with a next one, that bring no id new to the walk: a listing
    that never ends (an error)."""
    seen: set[str] = set()
    stalled = []
    for page in pages[:-1]:
        ids = {entry["id"] for entry in page if isinstance(entry, dict)}
        stalled.append(not ids - seen)
        seen |= ids
    return any(all(stalled[i : i + 3]) for i in range(len(stalled) - 2))


page_lists = st.lists(st.lists(entry_ids, max_size=6), min_size=1, max_size=4).filter(
    lambda pages: not _endless(pages)
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    likes=page_lists,
    downloads=page_lists,
    delays=st.tuples(st.floats(0, 0.003), st.floats(0, 0.003)),
)
def test_counts_add_up_and_the_union_is_every_id_seen(
    make_settings: SettingsFactory,
    likes: list[list[Any]],
    downloads: list[list[Any]],
    delays: tuple[float, float],
) -> None:
    settings = make_settings()
    pages = {"likes": likes, "downloads": downloads}
    records, result = scripted_run(
        settings, pages, dict(zip(("likes", "downloads"), delays, strict=True))
    )
    seen = {e["id"] for p in likes + downloads for e in p if isinstance(e, dict)}
    assert [r["id"] for r in records] == sorted(
        seen,
        key=lambda i: [e["id"] for p in likes + downloads for e in p if isinstance(e, dict)].index(
            i
        ),
    )
    assert result.unique == len(seen)
    for stats in result.stats:
        check_counts(stats)
    assert records == scripted_run(settings, pages, {"downloads": 0.004})[0]


def test_progress_is_reported_after_every_page(
    mocked: responses.RequestsMock, make_settings: SettingsFactory
) -> None:
    url = f"{LIST}?sort=likes&limit=1000&full=true"
    mocked.get(url, json=by_sort([1, 2]), headers=link(f"{url}&cursor=x"))
    mocked.get(f"{url}&cursor=x", json=by_sort([3]))
    observer = Silent()
    run_fetch(make_settings(sort=("likes",)), io.BytesIO(), observer)
    assert observer.pages == [("likes", 2, 1), ("likes", 3, 2)]


def test_single_sort_streams_records_while_walking(
    mocked: responses.RequestsMock, make_settings: SettingsFactory
) -> None:
    url = f"{LIST}?sort=likes&limit=1000&full=true"
    mocked.get(url, json=by_sort([1]), headers=link(f"{url}&cursor=x"))
    mocked.get(f"{url}&cursor=x", status=400, json={"error": "boom"})
    stdout = io.BytesIO()
    with pytest.raises(HubResponseError):
        run(make_settings(sort=("likes",)), stdout)
    streamed = [json.loads(line)["id"] for line in stdout.getvalue().splitlines()]
    assert streamed == ["org/m1"]  # written as its page arrived, before the failure


def test_walks_run_concurrently(make_settings: SettingsFactory) -> None:
    settings = make_settings(sort=("likes", "downloads"))
    inside = threading.Barrier(2, timeout=5)  # both walks must be running at once to get past
    pages = {"likes": [by_sort([1])], "downloads": [by_sort([2])]}
    records, _ = run(
        settings, make_source=lambda sleep: ScriptedSource(pages, lambda _: inside.wait())
    )
    assert len(records) == 2


@pytest.mark.parametrize("broken_page", [1, 3])
def test_a_page_shaped_like_an_array_that_does_not_parse_is_fetched_again(
    mocked: responses.RequestsMock, make_settings: SettingsFactory, broken_page: int
) -> None:
    """Wherever it comes, with or without --limit: a transient bad body, retried."""
    url = f"{LIST}?sort=likes&limit=1000&full=true"
    urls = [url, f"{url}&cursor=b", f"{url}&cursor=c"]
    for index, page_url in enumerate(urls):
        more = link(urls[index + 1]) if index + 1 < len(urls) else {}
        if index + 1 == broken_page:
            mocked.get(page_url, body=b'[{"_id":"x","id":"a/b",},]', headers=more)
        mocked.get(page_url, json=by_sort([index]), headers=more)
    records, result = run(make_settings(sort=("likes",)))
    assert [r["id"] for r in records] == ["org/m0", "org/m1", "org/m2"]
    assert result.stats[0].retries == 1


@pytest.mark.parametrize(
    ("body", "said"),
    [
        (b"<html>busy</html>", "the body is not JSON (17 bytes starting '<html>busy</html>')"),
        (b'{"models": []}', "the body is not a JSON array (14 bytes starting '{\"models\": []}')"),
        (b"  \n", "the body is not JSON (the body is empty)"),
    ],
)
def test_a_body_that_is_no_page_is_described_in_the_transient_error(body: bytes, said: str) -> None:
    class Answer:
        status_code, url = 200, "https://hub.test/api/models"

    with pytest.raises(TransientResponseError) as raised:
        answer.entries(Answer(), bytearray(body), 10)  # type: ignore[arg-type]
    assert said in str(raised.value)


def test_a_number_no_json_reader_holds_outside_the_record_is_said_and_null_in_raw(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Answer:
        status_code, url = 200, "https://hub.test/api/models"

    body = bytearray(b'[{"id": "a/b", "likes": 1, "cardData": {"co2": 1e400, "n": 1e999}}]')
    (entry,) = answer.entries(Answer(), body, 10)  # type: ignore[arg-type]
    assert entry["likes"] == 1
    assert "cardData.co2, cardData.n" in caplog.text and "a/b" in caplog.text
    raw = Final({"id": "a/b"}, raw=entry, has_raw=True).raw_json()
    assert raw is not None and b'"co2":null' in raw
