"""HubClient: the only code that speaks HTTP to the Hub.

One `requests.Session` per client (built in `build_session`, the one place sessions are made),
a User-Agent, a timeout on every request, the token sent only to the endpoint's own origin, and
`pages()`, which follows the `Link: rel="next"` cursor exactly as the Hub wrote it. Redirects are
followed by hand so that none can carry the walk, or the token, to another origin.
"""

from __future__ import annotations

import platform
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from urllib.parse import urlencode, urljoin, urlsplit

import orjson
import requests

from hfharvest import __version__
from hfharvest.errors import (
    CrossOriginError,
    CursorLoopError,
    HubError,
    HubResponseError,
    TransientResponseError,
    UnreachableError,
)
from hfharvest.pacing import Pacer
from hfharvest.pageworker import PageReader
from hfharvest.retry import (
    TRANSIENT_STATUSES,
    call_with_retries,
    check_demanded_wait,
    demanded_wait,
    describe_failure,
)
from hfharvest.settings import Settings
from hfharvest.shaping import ErrorBody, NotAnArray, NotJSON, error_text

MAX_REDIRECTS = 5
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_DEFAULT_PORTS = {"http": 80, "https": 443}

Origin = tuple[str, str, int]


@dataclass(frozen=True)
class Page:
    """One answer of the listing: its URL and the next page's URL, if any (its entries went to
    the walk's `PageReader`)."""

    url: str
    next_url: str | None
    rate_policy: str | None = None  # the RateLimit-Policy header: the quota and its window


class BearerToken(requests.auth.AuthBase):
    """The token, as requests' `auth`: then no ~/.netrc entry can take its place.

    As a plain header it would lose to ~/.netrc: requests replaces it with the Basic credentials
    netrc holds for the host (and adds them when there is no token). An explicit `auth` is kept.
    """

    def __init__(self, token: str | None) -> None:
        self._token = token

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        if self._token:
            request.headers["Authorization"] = f"Bearer {self._token}"
        return request


def user_agent() -> str:
    return (
        f"hfharvest/{__version__}; python/{platform.python_version()}; "
        f"requests/{requests.__version__}"
    )


def build_session() -> requests.Session:
    """The one place an HTTP session is made: identity and content type, nothing secret."""
    session = requests.Session()
    session.headers["User-Agent"] = user_agent()
    session.headers["Accept"] = "application/json"
    return session


def origin_of(url: str) -> Origin:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    return scheme, (parts.hostname or "").lower(), parts.port or _DEFAULT_PORTS.get(scheme, 0)


def format_origin(origin: Origin) -> str:
    scheme, host, port = origin
    return (
        f"{scheme}://{host}" if _DEFAULT_PORTS.get(scheme) == port else f"{scheme}://{host}:{port}"
    )


def listing_path(settings: Settings) -> str:
    return f"{settings.endpoint}/api/{settings.repo_type}s"


def listing_params(settings: Settings, sort: str) -> list[tuple[str, str]]:
    """The query of a walk's first page; later pages take theirs from the `Link` header."""
    params: list[tuple[str, str]] = []
    if settings.search:
        params.append(("search", settings.search))
    if settings.author:
        params.append(("author", settings.author))
    params.extend(("filter", tag) for tag in settings.filters)
    if settings.pipeline_tag:
        params.append(("pipeline_tag", settings.pipeline_tag))
    if settings.inference_providers:
        params.append(("inference_provider", ",".join(settings.inference_providers)))
    params.append(("sort", sort))
    # A page larger than --limit would fetch entries the walk then throws away.
    page_size = min(settings.page_size, settings.limit or settings.page_size)
    params.append(("limit", str(page_size)))
    if settings.full:
        params.append(("full", "true"))
    params.extend(("expand", name) for name in settings.expand)
    return params


def first_url(settings: Settings, sort: str) -> str:
    return f"{listing_path(settings)}?{urlencode(listing_params(settings, sort))}"


class HubClient:
    """Fetches listing pages from one endpoint, with retries, for one walk at a time."""

    def __init__(
        self,
        settings: Settings,
        *,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        pacer: Pacer | None = None,
    ) -> None:
        self.settings = settings
        self.session = session or build_session()
        self.origin = origin_of(settings.endpoint)
        self._sleep = sleep
        self._pacer = pacer or Pacer(settings.max_rps)
        self._auth = BearerToken(settings.token)

    def close(self) -> None:
        self.session.close()

    def pages(
        self,
        sort: str,
        reader: PageReader,
        on_retry: Callable[[], None] = lambda: None,
        start: str | None = None,
    ) -> Iterator[Page]:
        """Yield the pages of one sort's walk; the next page is fetched only when asked for.

        Each page's body goes to `reader`, which checks it (within the retry attempt) and shapes
        it. `start` is where a resumed walk goes on (a next URL the Hub gave); else the first page.
        """
        url: str | None = start or first_url(self.settings, sort)
        fetched: set[str] = set()
        while url is not None:
            fetched.add(url)
            describe = f"sort {sort}, page {len(fetched)}"
            page = self.get_page(url, reader, on_retry, describe=describe)
            yield page
            if reader.enough:
                return  # the pages so far hold the --limit's entries: ask for no more
            if page.next_url in fetched:
                raise CursorLoopError(
                    f"the Hub's next link repeats a page already fetched ({page.next_url}); "
                    "stopping instead of looping"
                )
            url = page.next_url

    def get_page(
        self,
        url: str,
        reader: PageReader,
        on_retry: Callable[[], None] = lambda: None,
        *,
        describe: str = "",
    ) -> Page:
        policy = self.settings.retry
        try:
            return call_with_retries(
                lambda: self._get_once(url, reader),
                policy,
                describe=describe or f"GET {url}",
                on_retry=on_retry,
                sleep=self._sleep,
            )
        except requests.RequestException as exc:
            attempts = policy.retries + 1
            cause = describe_failure(exc)
            if isinstance(exc, requests.Timeout):
                cause = f"no answer within --timeout {self.settings.timeout:g} s"
            raise UnreachableError(
                f"cannot reach {format_origin(self.origin)}: {cause}"
                f" ({attempts} attempt{'s' if attempts > 1 else ''}, GET {url})",
                hint="check --endpoint (or HF_ENDPOINT) and the network; --retries tries longer",
            ) from exc

    def _get_once(self, url: str, reader: PageReader) -> Page:
        response = self._follow_redirects(url)
        return self._page_or_raise(response, reader)

    def _follow_redirects(self, url: str) -> requests.Response:
        for _ in range(MAX_REDIRECTS + 1):
            self._check_origin(url, "a link")
            with self._pacer.request(self._sleep) as observe:
                response = self.session.get(
                    url,
                    auth=self._auth,
                    timeout=self.settings.timeout,
                    allow_redirects=False,
                )
                observe(response.headers)
            if response.status_code not in _REDIRECT_STATUSES or "Location" not in response.headers:
                return response
            target = urljoin(url, response.headers["Location"])
            self._check_origin(target, f"a {response.status_code} redirect")
            url = target
        raise HubError(f"more than {MAX_REDIRECTS} redirects from {url}")

    def _check_origin(self, url: str, what: str) -> None:
        target = origin_of(url)
        if target != self.origin:
            raise CrossOriginError(
                f"{what} leads to {format_origin(target)}, not the endpoint "
                f"{format_origin(self.origin)}; stopped there (the token is never sent elsewhere)",
                hint="if the Hub moved, pass its new address with --endpoint",
            )

    def _page_or_raise(self, response: requests.Response, reader: PageReader) -> Page:
        url = response.url
        status = response.status_code
        if 200 <= status < 300:
            next_link = response.links.get("next", {}).get("url")
            next_url = urljoin(url, next_link) if next_link else None
            if next_url is not None:
                self._check_origin(next_url, "the next-page link")
            self._read(response, reader, more=next_url is not None)
            policy = response.headers.get("RateLimit-Policy")
            return Page(url=url, next_url=next_url, rate_policy=policy)
        detail = error_detail(response)
        if status in TRANSIENT_STATUSES:
            wait = demanded_wait(response.headers)
            check_demanded_wait(wait, url, self.settings.retry)
            raise TransientResponseError(
                status, url, detail, demanded_wait=wait[0] if wait else None
            )
        raise HubResponseError(status, url, detail, hint=self._hint_for(status))

    @staticmethod
    def _read(response: requests.Response, reader: PageReader, *, more: bool) -> None:
        url, status, body = response.url, response.status_code, response.content
        try:
            reader.read(body, more=more)
        except NotJSON:
            detail = f"the body is not JSON ({_peek(body)})"
            raise TransientResponseError(status, url, detail) from None
        except NotAnArray:
            detail = f"the body is not a JSON array ({_peek(body)})"
            raise TransientResponseError(status, url, detail) from None
        except ErrorBody as exc:
            raise HubResponseError(status, url, str(exc)) from None

    def _hint_for(self, status: int) -> str | None:
        settings = self.settings
        if status in (401, 403):
            if settings.token is None:
                return "this listing needs a token: set HF_TOKEN or pass --token-file"
            return (
                f"the token from {settings.token_source} was refused; set another in HF_TOKEN or "
                "the token file, or pass --no-token"
            )
        if status == 404:
            return "check --endpoint (or HF_ENDPOINT) and --type"
        if status == 400:
            return "the Hub rejected the query; check --sort, the filters and --expand"
        return None


def error_detail(response: requests.Response) -> str:
    """The Hub's own words for an error: `X-Error-Message`, a JSON `error`, or the reason."""
    header = response.headers.get("X-Error-Message")
    if header:
        return header
    try:
        body = orjson.loads(response.content)
    except (orjson.JSONDecodeError, requests.RequestException):
        body = None
    text = error_text(body) if isinstance(body, dict) else None
    return text or response.reason or f"HTTP {response.status_code}"


def _peek(body: bytes) -> str:
    if not body.strip():
        return "the body is empty"
    text = body[:40].decode("utf-8", "replace").replace("\n", " ")
    return f"{len(body)} bytes starting {text!r}"
