"""HubClient: the code that asks the Hub (`answer.py` reads what comes back).

One `requests.Session` per client (built in `build_session`, the one place sessions are made),
a User-Agent, a timeout on every request, the token sent only to the endpoint's own origin, and
`pages()`, which follows the `Link: rel="next"` cursor exactly as the Hub wrote it and yields each
page with its entries parsed. Redirects are followed by hand so that none can carry the walk, or
the token, to another origin. A 200 whose body is not a JSON array of entries (HTML, empty, cut
or malformed) is fetched again like any transient failure, on whatever page it comes.
"""

from __future__ import annotations

import dataclasses
import platform
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urljoin, urlsplit

import requests

from hfharvest.answer import (
    AnswerTooSlow,
    entries,
    error_detail,
    next_url,
    protocol_violation,
    read_body,
    withheld,
)
from hfharvest.errors import (
    CrossOriginError,
    CursorLoopError,
    HubError,
    HubResponseError,
    PageDeadlineError,
    TransientResponseError,
    UnreachableError,
    secret_forms,
)
from hfharvest.hub import MAX_PAGE_SIZE, NOT_WITH_PROVIDER, SORTS, closest_sort
from hfharvest.pacing import Pacer
from hfharvest.retry import (
    REFUSED,
    TRANSIENT_STATUSES,
    PageTimeUp,
    call_with_retries,
    demanded_wait,
    describe_failure,
)
from hfharvest.sizing import PageSize, page_size_of, without_page_size
from hfharvest.transport import Transport
from hfharvest.urls import Origin, UnsafeURL, format_origin, leaves_listing, origin
from hfharvest.version import __version__
from hfharvest.watch import AnswerClock, WatchedAdapter

MAX_REDIRECTS = 5
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})


@dataclass(frozen=True)
class Page:
    """One answer of the listing: its URL, its entries, and the next page's URL, if any."""

    url: str
    entries: list[Any]
    next_url: str | None
    rate_policy: str | None = None  # the RateLimit-Policy header: the quota and its window
    resized: int = 0  # how often its size was halved before it came (a deep timeout)
    withheld: int = 0  # entries that carried the token: None in `entries`, never a record


class BearerToken(requests.auth.AuthBase):
    """The token, as requests' `auth`: then no ~/.netrc entry can take its place.

    As a plain header it would lose to ~/.netrc: requests replaces it with the Basic credentials
    netrc holds for the host (and adds them when there is no token). An explicit `auth` is kept.
    It is attached last, to the prepared request, once its own URL, read as urllib3 reads it to
    connect, is found to go to `origin`: whatever was checked before, this is what is sent.
    """

    def __init__(self, token: str | None, where: Origin) -> None:
        self._token = token
        self._origin = where

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        if self._token:
            try:
                goes = origin(request.url or "")
            except UnsafeURL as exc:
                raise CrossOriginError(f"a request to {request.url!r} was stopped: {exc}") from None
            if goes != self._origin:
                raise CrossOriginError(
                    f"a request would go to {format_origin(goes)}, not the endpoint "
                    f"{format_origin(self._origin)}; stopped (the token is never sent elsewhere)"
                )
            request.headers["Authorization"] = f"Bearer {self._token}"
        return request


def user_agent() -> str:
    return (
        f"hfharvest/{__version__}; python/{platform.python_version()}; "
        f"requests/{requests.__version__}"
    )


def build_session() -> requests.Session:
    """The one place an HTTP session is made: identity and content type, nothing secret, and
    connections an answer's deadline can cut (`watch`)."""
    session = requests.Session()
    session.headers["User-Agent"] = user_agent()
    session.headers["Accept"] = "application/json"
    for prefix in ("http://", "https://"):
        session.mount(prefix, WatchedAdapter())
    return session


class HubClient:
    """Fetches listing pages from one endpoint, with retries, for one walk at a time."""

    def __init__(
        self,
        transport: Transport,
        *,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        pacer: Pacer | None = None,
    ) -> None:
        self.transport = transport
        self.session = session or build_session()
        self.origin = origin(transport.endpoint)  # checked in `settings`: it reads one way
        self._sleep = sleep
        self._pacer = pacer or Pacer(transport.max_rps, transport.retry.max_wait)
        self._auth = BearerToken(transport.token.value if transport.token else None, self.origin)
        self._clock = AnswerClock()
        secret = transport.token.value if transport.token else None
        self._secret_forms = [form.encode() for form in secret_forms(secret)] if secret else []

    def close(self) -> None:
        self.session.close()

    def abort(self) -> None:
        """The walk is stopping: the answer being read is cut now, and any later one at once."""
        self._clock.abort()

    def pages(
        self,
        url: str,
        *,
        label: str = "",
        on_retry: Callable[[], None] = lambda: None,
        page_size: int | None = None,
        listing: str | None = None,
    ) -> Iterator[Page]:
        """Yield the pages of one walk from `url` on, following each page's next link.

        A page is fetched only when the next one is asked for, so a walk that has what it needs
        simply stops asking. `label` names the walk in retry messages ("sort likes").
        `page_size` is the size asked for (default: as `url` says); a deep page that times out
        is asked again smaller (see `sizing`). `listing` is the URL of the walk's first page
        (default `url`): a next link must stay on that listing.
        """
        next_url: str | None = url
        fetched: set[str] = set()  # the pages' URLs less their size: a resized page is the same
        size = PageSize(page_size if page_size is not None else page_size_of(url))
        while next_url is not None:
            fetched.add(without_page_size(next_url))
            where = f"{label}, page {len(fetched)}" if label else ""
            page = self.get_page(next_url, on_retry, describe=where, size=size)
            size.succeeded()
            if page.next_url is not None:  # checked before the page counts: a state never keeps it
                self._check_listing(listing or url, page.next_url)
            yield page
            if page.next_url is not None and without_page_size(page.next_url) in fetched:
                raise CursorLoopError(
                    f"the Hub's next link repeats a page already fetched ({page.next_url}); "
                    "stopping instead of looping"
                )
            next_url = page.next_url

    def get_page(
        self,
        url: str,
        on_retry: Callable[[], None] = lambda: None,
        *,
        describe: str = "",
        size: PageSize | None = None,
    ) -> Page:
        transport = self.transport
        policy = transport.retry
        resized = 0
        began = time.monotonic()

        def attempt() -> Page:
            nonlocal resized
            left = policy.page_deadline - (time.monotonic() - began)
            try:
                asked = size.url(url) if size else url
                answer = self._follow_redirects(asked, min(transport.deadline, left))
                return self._page_or_raise(answer)
            except (requests.Timeout, TransientResponseError) as exc:
                timed_out = not isinstance(exc, TransientResponseError) or exc.status == 504
                if timed_out and size is not None and size.halve():
                    resized += 1  # the retry asks for the same cursor, half as many
                raise

        try:
            page = call_with_retries(
                attempt,
                policy,
                describe=describe or f"GET {url}",
                where=format_origin(self.origin),
                on_retry=on_retry,
                sleep=self._sleep,
                stopping=lambda: self._clock.aborted,
            )
            return dataclasses.replace(page, resized=resized) if resized else page
        except PageTimeUp as up:
            raise PageDeadlineError(
                f"{describe or f'GET {url}'}: no page after {time.monotonic() - began:.0f} s and "
                f"{up.attempts} attempt{'s' if up.attempts > 1 else ''} "
                f"(`page_deadline` {policy.page_deadline:g} s; last: {describe_failure(up.last)})",
                hint="raise `page_deadline`, or try later",
            ) from up.last
        except requests.RequestException as exc:
            attempts = policy.retries + 1
            cause = describe_failure(exc)
            if isinstance(exc, AnswerTooSlow):
                cause = str(exc)
            elif isinstance(exc, requests.Timeout):
                cause = f"no answer within `timeout` {transport.timeout:g} s"
            elif cause == REFUSED:
                cause += ": nothing listens there"
            raise UnreachableError(
                f"cannot reach {format_origin(self.origin)}: {cause}"
                f" ({attempts} attempt{'s' if attempts > 1 else ''}, GET {url})",
                hint="check `endpoint` (or HF_ENDPOINT) and the network; `retries` tries longer",
            ) from exc

    def _follow_redirects(self, url: str, deadline: float) -> tuple[requests.Response, bytearray]:
        for _ in range(MAX_REDIRECTS + 1):
            self._check_origin(url, "a link")
            with self._pacer.request(self._sleep) as observe:
                response, body = self._answer(url, deadline)
                observe(response.headers)
            if response.status_code not in _REDIRECT_STATUSES or "Location" not in response.headers:
                return response, body
            what = f"a {response.status_code} redirect"
            try:
                target = urljoin(url, response.headers["Location"])
            except ValueError:  # urljoin reads the authority: "Invalid IPv6 URL"
                target = response.headers["Location"]  # refused as it stands, below
            self._check_origin(target, what)
            url = target
        raise HubError(f"more than {MAX_REDIRECTS} redirects from {url}")

    def _answer(self, url: str, deadline: float) -> tuple[requests.Response, bytearray]:
        """One request and its whole answer, within `deadline` seconds from the first byte sent
        to the last byte read (`watch`), and `max_page_bytes` once decoded."""
        transport = self.transport
        with self._clock.running(max(deadline, 0.0)) as clock:
            try:
                response = self.session.get(
                    url,
                    auth=self._auth,
                    timeout=transport.timeout,
                    allow_redirects=False,
                    stream=True,  # the body is read by `read_body`, within its bounds
                )
                return response, read_body(response, deadline, transport.max_page_bytes)
            except requests.RequestException as exc:
                if clock.expired:
                    raise AnswerTooSlow(
                        f"the answer from {url} did not finish within `deadline` {deadline:g} s "
                        "(it came in too slowly)"
                    ) from exc
                violation = protocol_violation(exc)
                if violation is not None:
                    raise HubError(
                        f"{format_origin(self.origin)} does not answer as an HTTP server: "
                        f"{violation} (GET {url})",
                        hint="check `endpoint` (or HF_ENDPOINT): is a Hub listening there?",
                    ) from exc
                raise

    def _check_origin(self, url: str, what: str) -> None:
        try:
            target = origin(url)
        except UnsafeURL as exc:
            raise CrossOriginError(
                f"{what} cannot be read one way only ({exc}): {url!r}; stopped there (the "
                "token is never sent where it might not go)",
                hint="the server at `endpoint` is not behaving as the Hub does",
            ) from None
        if target != self.origin:
            raise CrossOriginError(
                f"{what} leads to {format_origin(target)}, not the endpoint "
                f"{format_origin(self.origin)}; stopped there (the token is never sent elsewhere)",
                hint="if the Hub moved, pass its new address as `endpoint`",
            )

    def _check_listing(self, listing: str, following: str) -> None:
        why = leaves_listing(listing, following)
        if why is not None:
            raise CrossOriginError(
                f"the next-page link leaves the listing: {why} ({following}); stopped there",
                hint="the server at `endpoint` is not behaving as the Hub does",
            )

    def _page_or_raise(self, answer: tuple[requests.Response, bytearray]) -> Page:
        response, body = answer
        url = response.url
        status = response.status_code
        if 200 <= status < 300:
            following = next_url(response)
            if following is not None:
                self._check_origin(following, "the next-page link")
            policy = response.headers.get("RateLimit-Policy")
            found = entries(response, body, 2 * (page_size_of(url) or MAX_PAGE_SIZE))
            hidden = withheld(found, body, self._secret_forms)
            return Page(url, found, following, rate_policy=policy, withheld=hidden)
        detail = error_detail(response, body)
        if status in TRANSIENT_STATUSES:
            wait = demanded_wait(response.headers)
            if wait is not None:
                self._pacer.check_wait(wait[0], f"{wait[1]}, before retrying {url}")
            raise TransientResponseError(
                status, url, detail, demanded_wait=wait[0] if wait else None
            )
        raise HubResponseError(status, url, detail, hint=self._hint_for(status, url))

    def _hint_for(self, status: int, url: str) -> str | None:
        token = self.transport.token
        if status in (401, 403):
            if token is None:
                return "this listing needs a token: set HF_TOKEN or pass `token_file`"
            return (
                f"the token from {token.source} was refused; set another in HF_TOKEN or "
                "the token file, or pass `token=False`"
            )
        if status == 404:
            return "check `endpoint` (or HF_ENDPOINT) and `repo_type`"
        if status != 400:
            return None
        query = dict(parse_qsl(urlsplit(url).query))
        sort = query.get("sort")
        if "inference_provider" in query and sort in NOT_WITH_PROVIDER:
            instead = "lastModified for new or changed repos" if sort == "createdAt" else "likes"
            return f"the Hub refuses `sort` {sort} beside `inference_provider`; use {instead}"
        if sort is not None and sort not in SORTS:
            near = closest_sort(sort)
            meant = f"did you mean {near}? " if near else ""
            return f"{meant}`sort` {sort} is not one hfharvest knows: {', '.join(SORTS)}"
        return "the Hub rejected the query; check `sort`, the filters and `expand`"
