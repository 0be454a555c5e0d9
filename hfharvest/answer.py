"""One answer of the Hub, read within bounds: its body, its next link, its entries, its words.

The client's half that reads what came back (`client.py` asks; this reads): the body is read in
pieces against a total deadline (a read timeout bounds each piece, not a body that trickles in)
and a cap on its decoded size (gzip included); the `Link` header is read as RFC 8288 says (every
link of every header, a `rel` a space-separated list compared without case, two different next
links an error); a body that is not a JSON array is transient; the Hub's own words for an error
are found where it puts them.
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urljoin

import orjson
import requests
from requests.utils import parse_header_links
from urllib3.exceptions import DecodeError, ProtocolError, ReadTimeoutError

from hfharvest.errors import HubError, HubResponseError, TransientResponseError

PIECE = 1 << 16  # bytes read at a time


class AnswerTooSlow(requests.Timeout):
    """The answer did not finish within its total deadline: a body trickling in."""


class PageTooLargeError(HubError):
    """A body larger, once decoded, than the cap: what no listing page is."""


def read_body(response: requests.Response, deadline: float, cap: int) -> bytes:
    """The decoded body of a streamed answer, within `deadline` seconds in all and `cap` bytes."""
    ends = time.monotonic() + deadline
    pieces: list[bytes] = []
    size = 0
    try:
        while piece := response.raw.read1(PIECE, decode_content=True):
            size += len(piece)
            if size > cap:
                raise PageTooLargeError(
                    f"the answer from {response.url} is larger than `max_page_mb` "
                    f"{cap / 1e6:g} MB once decoded; stopping",
                    hint="raise `max_page_mb` if the Hub's pages have grown that much",
                )  # fmt: skip
            pieces.append(piece)
            if time.monotonic() > ends:
                raise AnswerTooSlow(
                    f"the answer from {response.url} did not finish within `deadline` "
                    f"{deadline:g} s (its body came in too slowly)"
                )
    except DecodeError as exc:
        detail = "the body says it is gzip-compressed and is not"
        raise TransientResponseError(response.status_code, response.url, detail) from exc
    except (ProtocolError, ReadTimeoutError) as exc:  # cut short, or a read timed out
        raise requests.ConnectionError(exc) from exc
    finally:
        response.close()
    return b"".join(pieces)


def next_url(response: requests.Response) -> str | None:
    """The next page's URL, from every `Link` header (RFC 8288), resolved against the page's."""
    header = response.headers.get("Link")
    links = parse_header_links(header) if header else []
    found = {
        urljoin(response.url, link["url"])
        for link in links
        if "next" in link.get("rel", "").lower().split()
    }
    if len(found) > 1:
        raise HubError(
            f"the answer from {response.url} names {len(found)} different next pages "
            f"({', '.join(sorted(found))}); stopping rather than guess"
        )
    return found.pop() if found else None


def entries(response: requests.Response, body: bytes) -> list[Any]:
    """A 200's entries. A body that is not a JSON array (an HTML page, an empty, cut or malformed
    body) is transient: fetched again. The Hub's error object is not: its words are reported."""
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        parsed = None
        detail = f"the body is not JSON ({_peek(body)})"
    else:
        detail = f"the body is not a JSON array ({_peek(body)})"
    if isinstance(parsed, list):
        return parsed
    if isinstance(parsed, dict) and "error" in parsed:
        text = error_text(parsed) or "an error with no text"
        raise HubResponseError(response.status_code, response.url, text)
    raise TransientResponseError(response.status_code, response.url, detail)


def error_detail(response: requests.Response, body: bytes) -> str:
    """The Hub's own words for an error: `X-Error-Message`, a JSON `error`, or the reason."""
    header = response.headers.get("X-Error-Message")
    if header:
        return header
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        parsed = None
    text = error_text(parsed) if isinstance(parsed, dict) else None
    return text or response.reason or f"HTTP {response.status_code}"


def error_text(body: dict[str, Any]) -> str | None:
    """The Hub's words in a JSON error body: `error` (a string or a list) or `errors[].message`."""
    error = body.get("error")
    if isinstance(error, str):
        return error
    if isinstance(error, list):
        return "; ".join(str(item) for item in error)
    errors = body.get("errors")
    if isinstance(errors, list):
        messages = [e.get("message") for e in errors if isinstance(e, dict)]
        return "; ".join(str(m) for m in messages if m) or None
    return None


def _peek(body: bytes) -> str:
    if not body.strip():
        return "the body is empty"
    text = body[:40].decode("utf-8", "replace").replace("\n", " ")
    return f"{len(body)} bytes starting {text!r}"
