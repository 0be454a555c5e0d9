"""HubClient against `responses` mocks: paging, retries, errors, origins and the token."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests
import responses

from conftest import ENDPOINT, SettingsFactory, link, models
from hfharvest.client import HubClient, Page
from hfharvest.errors import (
    CrossOriginError,
    CursorLoopError,
    HubResponseError,
    UnreachableError,
    WaitTooLongError,
)
from hfharvest.pacing import Pacer
from hfharvest.settings import Settings

LIST = f"{ENDPOINT}/api/models"
FIRST = f"{LIST}?sort=likes&limit=1000&full=true"
HALF = f"{LIST}?sort=likes&limit=500&full=true"
NEXT = f"{LIST}?sort=likes&limit=1000&full=true&cursor=abc%3D"


class FakeTime:
    """A clock that only moves when something sleeps: waits are recorded, never spent."""

    def __init__(self, sleeps: list[float]) -> None:
        self.now = 1000.0
        self.sleeps = sleeps

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def walk(settings: Settings, sleeps: list[float] | None = None) -> list[Page]:
    """One sort's walk through the real client."""
    time = FakeTime(sleeps if sleeps is not None else [])
    pacer = Pacer(max_wait=settings.transport.retry.max_wait, clock=lambda: time.now)
    client = HubClient(settings.transport, sleep=time.sleep, pacer=pacer)
    return list(client.pages(settings.first_url(settings.query.sorts[0])))


def query(call: responses.Call) -> list[tuple[str, str]]:
    return parse_qsl(urlsplit(call.request.url or "").query)


def test_follows_link_as_is_until_there_is_none(
    mocked: responses.RequestsMock, make_settings: SettingsFactory
) -> None:
    third = f"{LIST}?sort=likes&limit=1000&full=true&cursor=def"
    mocked.get(FIRST, json=models(0, 2), headers=link(NEXT))
    mocked.get(NEXT, json=models(2, 2), headers=link(third))
    mocked.get(third, json=models(4, 1))
    pages = walk(make_settings(sort=("likes",)))
    assert [len(p.entries) for p in pages] == [2, 2, 1]
    assert [c.request.url for c in mocked.calls] == [FIRST, NEXT, third]
    assert pages[-1].next_url is None


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({}, [("sort", "likes"), ("limit", "1000"), ("full", "true")]),
        ({"limit": 10}, [("sort", "likes"), ("limit", "10"), ("full", "true")]),
        ({"page_size": 50, "limit": 120}, [("sort", "likes"), ("limit", "50"), ("full", "true")]),
        ({"full": False}, [("sort", "likes"), ("limit", "1000")]),
        (
            {"expand": ("sha", "downloadsAllTime")},
            [
                ("sort", "likes"),
                ("limit", "1000"),
                ("expand", "sha"),
                ("expand", "downloadsAllTime"),
            ],
        ),
        (
            {
                "search": ("llama",),
                "author": "meta",
                "filter": ("gguf", "en"),
                "pipeline_tag": "text-generation",
                "inference_provider": ("together", "fal-ai"),
            },
            [
                ("search", "llama"),
                ("author", "meta"),
                ("filter", "gguf"),
                ("filter", "en"),
                ("pipeline_tag", "text-generation"),
                ("inference_provider", "together,fal-ai"),
                ("sort", "likes"),
                ("limit", "1000"),
                # what full=true stands for, plus the mapping: never full and expand together
                *(
                    ("expand", name)
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
                ),
            ],
        ),
        (
            {"inference_provider": ("hf-inference",), "full": False},
            [
                ("inference_provider", "hf-inference"),
                ("sort", "likes"),
                ("limit", "1000"),
                *(
                    ("expand", name)
                    for name in (
                        "likes",
                        "trendingScore",
                        "private",
                        "downloads",
                        "tags",
                        "pipeline_tag",
                        "library_name",
                        "createdAt",
                        "inferenceProviderMapping",
                    )
                ),
            ],
        ),
        (
            {"inference_provider": ("hf-inference",), "expand": ("sha",)},
            [
                ("inference_provider", "hf-inference"),
                ("sort", "likes"),
                ("limit", "1000"),
                ("expand", "sha"),
            ],  # an explicit --expand stays exactly the user's list
        ),
    ],
)
def test_each_option_shapes_the_query(
    mocked: responses.RequestsMock,
    make_settings: SettingsFactory,
    options: dict[str, object],
    expected: list[tuple[str, str]],
) -> None:
    mocked.get(LIST, json=[])
    walk(make_settings(sort=("likes",), **options))
    assert query(mocked.calls[0]) == expected
    assert "direction" not in dict(query(mocked.calls[0]))  # the Hub rejects it for most sorts


@pytest.mark.parametrize("repo_type", ["dataset", "space"])
def test_type_picks_the_listing(
    mocked: responses.RequestsMock, make_settings: SettingsFactory, repo_type: str
) -> None:
    mocked.get(f"{ENDPOINT}/api/{repo_type}s", json=[])
    walk(make_settings(sort=("likes",), repo_type=repo_type))
    assert len(mocked.calls) == 1


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504])
def test_transient_statuses_are_retried_first_page_included(
    mocked: responses.RequestsMock, make_settings: SettingsFactory, status: int
) -> None:
    mocked.get(FIRST, status=status, body="<html>oops</html>")
    # A 504 (the gateway's time-out) is asked again at half the size; the others as they were.
    mocked.get(HALF if status == 504 else FIRST, json=models(0, 1))
    pages = walk(make_settings(sort=("likes",)))
    assert len(pages[0].entries) == 1
    assert len(mocked.calls) == 2
    assert pages[0].resized == (status == 504)


@pytest.mark.parametrize(
    "body", [b"<!DOCTYPE html><html>Maintenance</html>", b"", b'[{"id": "a/b"', b'{"x": 1}', b"7"]
)
def test_a_200_that_is_not_a_json_array_is_retried(
    mocked: responses.RequestsMock, make_settings: SettingsFactory, body: bytes
) -> None:
    mocked.get(FIRST, body=body)
    mocked.get(FIRST, json=models(0, 1))
    assert len(walk(make_settings(sort=("likes",)))[0].entries) == 1


@pytest.mark.parametrize(
    "failure",
    [
        requests.ConnectionError("reset by peer"),
        requests.Timeout("read timed out"),
        requests.exceptions.ChunkedEncodingError("IncompleteRead"),
    ],
)
def test_network_failures_are_retried(
    mocked: responses.RequestsMock, make_settings: SettingsFactory, failure: Exception
) -> None:
    mocked.get(FIRST, body=failure)
    # No answer within the timeout: asked again at half the size, like a 504.
    mocked.get(HALF if isinstance(failure, requests.Timeout) else FIRST, json=models(0, 1))
    assert len(walk(make_settings(sort=("likes",)))[0].entries) == 1


def test_a_200_with_an_error_object_is_permanent(
    mocked: responses.RequestsMock, make_settings: SettingsFactory
) -> None:
    mocked.get(FIRST, json={"error": "Listing is disabled for this filter"})
    with pytest.raises(HubResponseError, match="Listing is disabled for this filter"):
        walk(make_settings(sort=("likes",)))
    assert len(mocked.calls) == 1


@pytest.mark.parametrize(
    ("status", "headers", "body", "shown"),
    [
        (
            400,
            {"X-Error-Message": "Invalid sort parameter: trendingScore"},
            b"{}",
            "Invalid sort parameter: trendingScore",
        ),
        (400, {}, b'{"error": ["bad expand", "bad full"]}', "bad expand; bad full"),
        (403, {}, b'{"errors": [{"message": "forbidden here"}]}', "forbidden here"),
        (404, {}, b"<html>not found</html>", "Not Found"),
    ],
)
def test_client_errors_are_not_retried_and_show_the_hubs_words(
    mocked: responses.RequestsMock,
    make_settings: SettingsFactory,
    status: int,
    headers: dict[str, str],
    body: bytes,
    shown: str,
) -> None:
    mocked.get(FIRST, status=status, headers=headers, body=body)
    with pytest.raises(HubResponseError, match=shown) as err:
        walk(make_settings(sort=("likes",)))
    assert err.value.status == status
    assert err.value.exit_code == 1
    assert len(mocked.calls) == 1


def test_401_says_the_token_was_refused_and_how_to_set_another(
    mocked: responses.RequestsMock, make_settings: SettingsFactory
) -> None:
    mocked.get(
        FIRST,
        status=401,
        headers={"X-Error-Message": "Invalid credentials in Authorization header"},
    )
    with pytest.raises(HubResponseError, match="Invalid credentials") as err:
        walk(make_settings(sort=("likes",), environ={"HF_TOKEN": "hf_bad"}, token=None))
    assert "token from HF_TOKEN was refused" in (err.value.hint or "")
    assert "hf_bad" not in str(err.value) + (err.value.hint or "")


@pytest.mark.parametrize(
    ("headers", "wait"),
    [
        ({"Retry-After": "1"}, 1),  # seconds
        ({"RateLimit": '"api";r=0;t=12'}, 13),  # no Retry-After: the reset, plus the rounding
    ],
)
def test_a_demanded_wait_replaces_the_backoff(
    mocked: responses.RequestsMock,
    make_settings: SettingsFactory,
    headers: dict[str, str],
    wait: float,
) -> None:
    mocked.get(FIRST, status=429, headers=headers)
    mocked.get(FIRST, json=[])
    sleeps: list[float] = []
    walk(make_settings(sort=("likes",)), sleeps)
    assert sleeps == [wait]


def test_retry_after_as_http_date_sets_the_wait(
    mocked: responses.RequestsMock, make_settings: SettingsFactory
) -> None:
    from email.utils import formatdate
    from time import time

    mocked.get(FIRST, status=503, headers={"Retry-After": formatdate(time() + 3, usegmt=True)})
    mocked.get(FIRST, json=[])
    sleeps: list[float] = []
    walk(make_settings(sort=("likes",)), sleeps)
    assert len(sleeps) == 1
    assert 2 <= sleeps[0] <= 4


def test_a_wait_beyond_max_wait_fails_at_once(
    mocked: responses.RequestsMock, make_settings: SettingsFactory
) -> None:
    mocked.get(FIRST, status=429, headers={"Retry-After": "3600"})
    with pytest.raises(WaitTooLongError, match=r"3600 s.*`max_wait` 60"):
        walk(make_settings(sort=("likes",), max_wait=60))
    assert len(mocked.calls) == 1


def test_exhausted_retries_name_the_cause(
    mocked: responses.RequestsMock, make_settings: SettingsFactory
) -> None:
    for _ in range(3):
        mocked.get(FIRST, body=requests.ConnectionError("[Errno 111] Connection refused"))
    with pytest.raises(UnreachableError, match=r"reach https://hub.test: Connection refused"):
        walk(make_settings(sort=("likes",), retries=2))


def test_a_link_to_another_origin_stops_the_walk(
    mocked: responses.RequestsMock, make_settings: SettingsFactory
) -> None:
    mocked.get(FIRST, json=models(0, 1), headers=link("https://evil.test:8443/api/models?c=1"))
    with pytest.raises(CrossOriginError, match=r"https://evil.test:8443"):
        walk(make_settings(sort=("likes",), token="hf_secret"))
    assert len(mocked.calls) == 1  # nothing was sent there


@pytest.mark.parametrize("other", ["http://hub.test/api/models", "https://hub.test:444/api/models"])
def test_scheme_and_port_are_part_of_the_origin(
    mocked: responses.RequestsMock, make_settings: SettingsFactory, other: str
) -> None:
    mocked.get(FIRST, json=[], headers=link(other))
    with pytest.raises(CrossOriginError):
        walk(make_settings(sort=("likes",)))


def test_a_relative_link_is_resolved_against_the_page(
    mocked: responses.RequestsMock, make_settings: SettingsFactory
) -> None:
    relative = "/api/models?sort=likes&limit=1000&full=true&cursor=abc%3D"
    mocked.get(FIRST, json=models(0, 1), headers=link(relative))
    mocked.get(f"{ENDPOINT}{relative}", json=models(1, 1))
    assert len(walk(make_settings(sort=("likes",)))) == 2


def test_a_link_that_loops_stops_with_an_error(
    mocked: responses.RequestsMock, make_settings: SettingsFactory
) -> None:
    mocked.get(FIRST, json=models(0, 1), headers=link(NEXT))
    mocked.get(NEXT, json=models(1, 1), headers=link(FIRST))
    with pytest.raises(CursorLoopError, match="repeats a page"):
        walk(make_settings(sort=("likes",)))
    assert len(mocked.calls) == 2


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_redirects_within_the_endpoint_are_followed_with_the_token(
    mocked: responses.RequestsMock, make_settings: SettingsFactory, status: int
) -> None:
    moved = f"{ENDPOINT}/api/v2/models?sort=likes"
    mocked.get(FIRST, status=status, headers={"Location": "/api/v2/models?sort=likes"})
    mocked.get(moved, json=models(0, 1))
    pages = walk(make_settings(sort=("likes",), token="hf_secret"))
    assert pages[0].url == moved
    assert mocked.calls[1].request.headers["Authorization"] == "Bearer hf_secret"


def test_a_redirect_to_another_origin_is_not_followed(
    mocked: responses.RequestsMock, make_settings: SettingsFactory
) -> None:
    mocked.get(FIRST, status=302, headers={"Location": "https://cdn.other.test/models"})
    with pytest.raises(CrossOriginError, match=r"302 redirect leads to https://cdn.other.test"):
        walk(make_settings(sort=("likes",), token="hf_secret"))
    assert len(mocked.calls) == 1


def test_token_and_user_agent_headers(
    mocked: responses.RequestsMock, make_settings: SettingsFactory
) -> None:
    mocked.get(FIRST, json=[])
    walk(make_settings(sort=("likes",), token="hf_secret"))
    headers = mocked.calls[0].request.headers
    assert headers["Authorization"] == "Bearer hf_secret"
    assert headers["User-Agent"].startswith("hfharvest/")
    assert "; python/3." in headers["User-Agent"]


def test_no_token_sends_no_authorization(
    mocked: responses.RequestsMock, make_settings: SettingsFactory
) -> None:
    mocked.get(FIRST, json=[])
    walk(make_settings(sort=("likes",), environ={"HF_TOKEN": "hf_env"}, token=False))
    assert "Authorization" not in mocked.calls[0].request.headers


@pytest.mark.parametrize(("token", "expected"), [("hf_secret", "Bearer hf_secret"), (None, None)])
def test_a_netrc_entry_for_the_endpoint_never_replaces_the_token(
    mocked: responses.RequestsMock,
    make_settings: SettingsFactory,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    token: str | None,
    expected: str | None,
) -> None:
    """requests lets ~/.netrc replace an Authorization header: the token, or none, must win."""
    netrc = tmp_path / "netrc"
    netrc.write_text(f"machine {urlsplit(ENDPOINT).hostname} login someone password p4ss\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    mocked.get(FIRST, json=[])
    options = {"token": token} if token else {"token": False}
    walk(make_settings(sort=("likes",), **options))
    assert mocked.calls[0].request.headers.get("Authorization") == expected
