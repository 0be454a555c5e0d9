"""The token goes only where the request goes (#24): every URL read once, as the connection reads
it, over real sockets, with a server at another port ready to catch what leaks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner
from urllib3.util import parse_url

from hfharvest.cli import app
from hfharvest.client import BearerToken, HubClient
from hfharvest.errors import CrossOriginError, HarvestError
from hfharvest.options import Options
from hfharvest.settings import resolve
from hfharvest.testing import HubEmulator, make_catalog
from hfharvest.urls import UnsafeURL, leaves_listing, origin
from servers import Scripted, scripted

runner = CliRunner()
TOKEN = "hf_originCanary0123456789"
LISTING = "/api/models?sort=likes&limit=1000&full=true"
PAGE = json.dumps([{"_id": "1", "id": "org/first"}]).encode()
EVIL = json.dumps([{"_id": "2", "id": "evil/injected"}]).encode()


def fetch(endpoint: str, *args: str) -> Any:
    auth = ["--token", TOKEN, "--allow-insecure-token"]
    return runner.invoke(app, ["fetch", "--endpoint", endpoint, "--sort", "likes", *auth, *args])


def first_then(link: str) -> Any:
    """The first page names `link` as the next one; any later page is the end."""

    def respond(path: str) -> tuple[int, dict[str, str], bytes]:
        if "cursor" in path:
            return 200, {}, json.dumps([{"_id": "3", "id": "org/second"}]).encode()
        return 200, {"Link": f'<{link}>; rel="next"'}, PAGE

    return respond


def evil(path: str) -> tuple[int, dict[str, str], bytes]:
    return 200, {}, EVIL


@pytest.fixture
def catcher() -> Any:
    with scripted(evil) as (server,):
        yield server


def backslashed(catcher: Scripted, endpoint_port: int) -> str:
    return f"http://127.0.0.1:{catcher.port}\\@127.0.0.1:{endpoint_port}{LISTING}&cursor=2"


def test_a_backslash_link_never_takes_the_token_elsewhere(
    catcher: Scripted, tmp_path: Path
) -> None:
    hub = Scripted(lambda path: (200, {}, PAGE))
    hub.respond = first_then(backslashed(catcher, hub.port))
    try:
        result = fetch(hub.url, "-o", str(tmp_path / "m.jsonl"))
    finally:
        hub.close()
    assert result.exit_code == 1, result.stderr
    assert "cannot be read one way only" in result.stderr and "backslash" in result.stderr
    assert catcher.seen == [] and len(hub.seen) == 1  # nothing followed, nowhere
    assert not (tmp_path / "m.jsonl").exists()


@pytest.mark.parametrize("form", ["absolute", "scheme-relative"])
def test_a_backslash_redirect_is_refused(catcher: Scripted, form: str) -> None:
    hub = Scripted(lambda path: (200, {}, PAGE))
    target = backslashed(catcher, hub.port)
    location = target if form == "absolute" else target.removeprefix("http:")
    hub.respond = lambda path: (302, {"Location": location}, b"")
    try:
        result = fetch(hub.url)
    finally:
        hub.close()
    assert result.exit_code == 1 and "302 redirect cannot be read one way only" in result.stderr
    assert catcher.seen == []


def test_an_edited_cursor_in_a_state_is_refused_before_any_request(
    catcher: Scripted, tmp_path: Path
) -> None:
    state = tmp_path / ".state"
    with HubEmulator(make_catalog(models=2500), faults=["status:404@2"]) as hub:
        failed = fetch(hub.url, "--state", str(state), "--page-size", "1000")
        assert failed.exit_code == 1 and state.exists()
        document = json.loads(state.read_text())
        port = urlsplit(hub.url).port or 0
        document["sorts"]["likes"]["next_url"] = backslashed(catcher, port)
        state.write_text(json.dumps(document))
        hub.requests_log.clear()
        result = fetch(hub.url, "--state", str(state), "--page-size", "1000")
        assert result.exit_code == 2, result.stderr
        assert "the cursor of sort likes is not one to follow" in result.stderr
        assert hub.requests_log == [] and catcher.seen == []


@pytest.mark.parametrize(
    "endpoint",
    [
        "http://127.0.0.1:1\\@127.0.0.1:2",
        "http://user@127.0.0.1:2",
        "http://127.0.0.1%2e:2",
        "http://127.0.0.1:2\t",
        "http://127.0.0.1:99999",
    ],
)
def test_an_endpoint_read_two_ways_is_refused(endpoint: str) -> None:
    result = fetch(endpoint)
    assert result.exit_code == 2, result.stderr
    assert "--endpoint" in result.stderr and "bug" not in result.stderr


def test_an_endpoint_with_a_path_prefix_is_followed_with_its_prefix() -> None:
    """A mirror under a path: its next links keep the prefix, and are followed."""

    def respond(path: str) -> tuple[int, dict[str, str], bytes]:
        assert path.startswith("/mirror/api/models?")
        if "cursor" in path:
            return 200, {}, json.dumps([{"_id": "3", "id": "org/second"}]).encode()
        # The Hub's own link: the same parameters in another order, expand as expand[].
        return (
            200,
            {"Link": '</mirror/api/models?full=true&limit=1000&sort=likes&cursor=2>; rel="next"'},
            PAGE,
        )

    with scripted(respond) as (hub,):
        result = fetch(f"{hub.url}/mirror")
        assert result.exit_code == 0, result.stderr
        assert [json.loads(line)["id"] for line in result.stdout.splitlines()] == [
            "org/first",
            "org/second",
        ]
        assert all(auth == f"Bearer {TOKEN}" for _, _, auth in hub.seen)


def test_a_link_to_another_listing_on_the_same_host_is_not_followed(tmp_path: Path) -> None:
    with HubEmulator(make_catalog(models=2500), faults=["link-spaces@1"]) as hub:
        result = fetch(hub.url, "-o", str(tmp_path / "m.jsonl"))
        assert len(hub.requests_log) == 1
    assert result.exit_code == 1
    assert "leaves the listing: its path is /api/spaces, not the listing's /api/models" in (
        result.stderr
    )
    assert not (tmp_path / "m.jsonl").exists()


@pytest.mark.parametrize(
    ("link", "cause"),
    [
        ("http://127.0.0.1:99999/api/models?sort=likes", "cannot be read one way only"),
        ("http://[::1/api/models?sort=likes", "cannot be read one way only"),
        ("http://[::1]:1/api/models?sort=likes", "leads to http://[::1]:1, not the endpoint"),
    ],
)
def test_a_link_that_cannot_be_read_is_told_as_such(link: str, cause: str) -> None:
    with scripted(first_then(link)) as (hub,):
        result = fetch(hub.url)
    assert result.exit_code == 1 and cause in result.stderr, result.stderr
    assert "bug" not in result.stderr


def test_listing_parameters_are_compared_as_a_set() -> None:
    first = "http://h/api/models?sort=likes&expand=a&expand=b&limit=1000"
    assert (
        leaves_listing(first, "http://h/api/models?expand[]=b&expand[]=a&sort=likes&cursor=x")
        is None
    )
    assert leaves_listing(first, "http://h/api/models?expand=a&sort=likes&limit=500&cursor=x") == (
        "it changes the listing's parameters (expand)"
    )
    assert "its path is /api/spaces" in (
        leaves_listing(first, "http://h/api/spaces?sort=likes") or ""
    )


# What the property test draws URLs from: each part in its plain form and in the forms hostile
# servers write (backslashes, userinfo, escapes, tabs, IPv6, other ports, other paths).
SCHEMES = ["http://", "HTTP://", "https://", "//", "http:\\\\", "http:/", "ftp://"]
USERINFO = ["", "user@", "u:p@", "{other}@", "127.0.0.1:{other}\\@", "%40", "@"]
HOSTS = ["127.0.0.1", "localhost", "127.0.0.1.", "[::1]", "127.1", "127.0.0.1%2e", "0x7f.1"]
PORTS = [":{port}", ":{other}", "", ":0{port}", ":+{port}", ":99999", ":{port}\\", ":{port}\t"]
PATHS = ["/api/models", "/api/spaces", "\\api/models", "/api/models/", "/api/%6dodels", ""]
QUERIES = ["?{listing}&cursor=2", "?cursor=2&{listing}", "?{listing}&cursor=2&extra=1", "?cursor=2"]


PARTS = (SCHEMES, USERINFO, HOSTS, PORTS, PATHS, QUERIES)


@st.composite
def drawn_parts(draw: st.DrawFn) -> tuple[str, ...]:
    """A next link of the endpoint's own listing with up to three of its parts drawn otherwise:
    a good share of the links are the endpoint's own, the rest differ where servers cheat."""
    parts = [choices[0] for choices in PARTS]
    for index in draw(st.sets(st.integers(0, len(PARTS) - 1), max_size=3)):
        parts[index] = draw(st.sampled_from(PARTS[index]))
    return tuple(parts)


def reads_as_own(url: str, endpoint: tuple[str, str, int]) -> bool:
    """Whether every parser reads `url` as the endpoint's own listing: urllib3 (which connects),
    urlsplit, and requests' preparation, with nothing in its authority that parsers read apart."""
    try:
        connects, split = parse_url(url), urlsplit(url)
        scheme = (connects.scheme or "").lower()
        ports = {"http": 80, "https": 443}
        host = (connects.host or "").strip("[]").lower()
        read = (scheme, host, connects.port or ports.get(scheme, 0))
        other = (
            split.scheme.lower(),
            (split.hostname or "").lower(),
            split.port or ports.get(split.scheme.lower(), 0),
        )
    except ValueError:
        return False
    plain = (
        url.isascii() and not any(c in split.netloc for c in "\\@%") and all(c > " " for c in url)
    )
    return plain and read == other == endpoint and leaves_listing(f"http://x{LISTING}", url) is None


@pytest.mark.slow
def test_the_token_never_reaches_an_address_but_the_endpoints(catcher: Scripted) -> None:
    """2,000 drawn next links: where each request's socket connected, against where the token
    went; and every link all parsers read as the endpoint's own listing is followed."""
    tally = {"followed": 0, "refused": 0, "own": 0}
    hub = Scripted(lambda path: (200, {}, PAGE))
    options = Options(endpoint=hub.url, token=TOKEN, allow_insecure_token=True, sort=("likes",))
    transport = resolve(options, {}).transport
    endpoint = origin(hub.url)
    listing = urlencode(parse_qsl(urlsplit(LISTING).query))

    @settings(max_examples=2000, deadline=None, suppress_health_check=list(HealthCheck))
    @given(drawn_parts())
    def follow(parts: tuple[str, ...]) -> None:
        url = "".join(parts).format(port=hub.port, other=catcher.port, listing=listing)
        hub.respond, hub.seen[:] = first_then(url), []
        catcher.seen.clear()
        client = HubClient(transport)
        try:
            pages = list(client.pages(f"{hub.url}{LISTING}"))
        except HarvestError:
            pages = []
        finally:
            client.close()
        assert all(auth is None for _, _, auth in catcher.seen), url  # the token never there
        assert all(port == hub.port for port, _, auth in hub.seen + catcher.seen if auth), url
        tally["followed" if len(pages) == 2 else "refused"] += 1
        if reads_as_own(url, endpoint):
            tally["own"] += 1
            assert len(pages) == 2, f"{url} reads as the endpoint's own and was not followed"

    try:
        follow()
    finally:
        hub.close()
    print(f"drawn next links: {tally}")  # shown with -s: how many of each
    assert tally["followed"] + tally["refused"] >= 2000 and tally["own"] > 0


def test_origin_is_read_by_the_parser_that_connects() -> None:
    assert origin("HTTP://LocalHost:80/a") == ("http", "localhost", 80)
    assert origin("https://[::1]/a") == ("https", "::1", 443)
    for url in (
        "http://127.0.0.1:9\\@127.0.0.1:8/",
        "http://a@b/",
        "http://b:+8/",
        "http://b/\tx",
        "ftp://b/",
        "http://b:99999/",
        "http://b%2e/",
    ):
        with pytest.raises(UnsafeURL):
            origin(url)


def test_a_request_whose_prepared_url_goes_elsewhere_gets_no_token() -> None:
    """The last check, on what requests prepared: even a URL that passed every check before is
    sent the token only if urllib3 reads it as the endpoint's origin."""
    auth = BearerToken(TOKEN, ("http", "127.0.0.1", 8))
    prepared = requests.Request("GET", "http://127.0.0.1:9\\@127.0.0.1:8/api/models").prepare()
    with pytest.raises(CrossOriginError):
        auth(prepared)
    assert "Authorization" not in prepared.headers
    good = requests.Request("GET", "http://127.0.0.1:8/api/models").prepare()
    assert auth(good).headers["Authorization"] == f"Bearer {TOKEN}"
