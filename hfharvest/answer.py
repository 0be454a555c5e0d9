"""One answer of the Hub, read within bounds: its body, its next link, its entries, its words.

The client's half that reads what came back (`client.py` asks; this reads): the body is read in
pieces against a total deadline and a cap on its decoded size (gzip included); its entries are
counted before they are made, where a body could become more objects than memory should hold
(a page of more than twice the entries asked for is refused); entries that carry the token are
withheld; the `Link` header is read as RFC 8288 says (every link of every header, a `rel` a
space-separated list compared without case, two different next links an error); a body that is
not a JSON array is transient; the Hub's own words for an error are found where it puts them.
"""

from __future__ import annotations

import http.client
import json
import logging
import math
import re
import time
from collections.abc import Iterator, Sequence
from typing import Any
from urllib.parse import urljoin

import orjson
import requests
from requests.utils import parse_header_links
from urllib3.exceptions import DecodeError, ProtocolError, ReadTimeoutError

from hfharvest.errors import HubError, HubResponseError, TransientResponseError
from hfharvest.hub import RECORD_NUMBERS

log = logging.getLogger("hfharvest")
PIECE = 1 << 16  # bytes read at a time
# A body this small becomes at most ~260 MB of objects whatever its shape (`{},` is 3 bytes and
# about 90 of objects): parsed as it is. A larger one is estimated first, from its structure.
PARSED_AS_IS = 3_000_000
OBJECTS_BUDGET = 256_000_000  # what a page's objects may take, estimated, before they are made
_TOKEN = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"|[][{},]')


class AnswerTooSlow(requests.Timeout):
    """The answer did not finish within its total deadline: a body trickling in."""


class PageTooLargeError(HubError):
    """A body larger, once decoded, than the cap, or holding more entries than a page may."""


def read_body(response: requests.Response, deadline: float, cap: int) -> bytearray:
    """The decoded body of a streamed answer, within `deadline` seconds in all and `cap` bytes
    (grown in place: the body is held once, not as pieces and their join)."""
    ends = time.monotonic() + deadline
    body = bytearray()
    try:
        while piece := response.raw.read1(PIECE, decode_content=True):
            if len(body) + len(piece) > cap:
                raise PageTooLargeError(
                    f"the answer from {response.url} is larger than `max_page_mb` "
                    f"{cap / 1e6:g} MB once decoded; stopping",
                    hint="raise `max_page_mb` if the Hub's pages have grown that much",
                )
            body += piece
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
    return body


def protocol_violation(error: BaseException) -> str | None:
    """What an answer that no HTTP/1.1 server sends did wrong (no status line, as HTTP/0.9;
    header lines too long or too many), found among the causes requests wraps; None otherwise."""
    seen: list[BaseException] = []
    todo: list[Any] = [error]
    while todo:
        item = todo.pop()
        if not isinstance(item, BaseException) or any(item is s for s in seen):
            continue
        seen.append(item)
        if isinstance(item, http.client.LineTooLong):
            line = "header line" if "header" in str(item) else "status line"
            return f"its answer has a {line} longer than 65,536 bytes"
        if isinstance(item, http.client.BadStatusLine):
            return "its answer has no HTTP status line (HTTP/0.9, or no HTTP at all)"
        if type(item) is http.client.HTTPException and "headers" in str(item):
            return f"its answer has too many headers ({item})"
        todo.extend([*item.args, item.__cause__, item.__context__])
    return None


def next_url(response: requests.Response) -> str | None:
    """The next page's URL, from every `Link` header (RFC 8288), resolved against the page's."""
    header = response.headers.get("Link")
    links = parse_header_links(header) if header else []
    try:
        found = {
            urljoin(response.url, link["url"])
            for link in links
            if "next" in link.get("rel", "").lower().split()
        }
    except ValueError as exc:  # urljoin reads the link's authority: "Invalid IPv6 URL"
        raise HubError(
            f"the next-page link of {response.url} cannot be read one way only ({exc}): "
            f"{header!r}; stopped there"
        ) from None
    if len(found) > 1:
        raise HubError(
            f"the answer from {response.url} names {len(found)} different next pages "
            f"({', '.join(sorted(found))}); stopping rather than guess"
        )
    return found.pop() if found else None


def entries(response: requests.Response, body: bytearray, most: int) -> list[Any]:
    """A 200's entries, at most `most` of them. A body that is not a JSON array (an HTML page, an
    empty, cut or malformed body) is transient: fetched again. The Hub's error object is not: its
    words are reported. A body that could hold more entries, or more objects, than a page may is
    counted before it is parsed, so that a page of `{},{},...` is refused, not made."""
    if len(body) > PARSED_AS_IS and _estimated_objects(body) > OBJECTS_BUDGET:
        held = _top_level_count(body, most)
        if held > most:
            raise _too_many(response, f"more than {most:,}", most)
    try:
        parsed = orjson.loads(body)
        what = "a JSON array"
    except orjson.JSONDecodeError:
        parsed = _exactly(body)
        what = "JSON"
    if isinstance(parsed, list):
        if len(parsed) > most:
            raise _too_many(response, f"{len(parsed):,}", most)
        return parsed
    if isinstance(parsed, dict) and "error" in parsed:
        text = error_text(parsed) or "an error with no text"
        raise HubResponseError(response.status_code, response.url, text)
    # Described only here: `_peek` strips the whole body, 1.5 % of a walk's CPU on every page.
    detail = f"the body is not {what} ({_peek(body)})"
    raise TransientResponseError(response.status_code, response.url, detail)


def _exactly(body: bytearray) -> Any:
    """A body orjson refuses, read by the standard library, which refuses less: a number past the
    float range (`1e400`) is infinite, an integer past 64 bits is one too. Such numbers are no
    record's (`normalize` skips or nulls them, and says so) and JSON has none: written as null
    in `raw`, said here. None when the body is no JSON at all."""
    try:
        parsed = json.loads(body, parse_int=_int64)
    except (ValueError, RecursionError):
        return None
    for entry in parsed if isinstance(parsed, list) else ():
        paths = [path for path in _infinite(entry, "") if path not in RECORD_NUMBERS]
        if paths:  # a record's own numbers are said by the walk, with what became of them
            name = entry.get("id") if isinstance(entry, dict) else None
            log.warning(
                "an entry (%s) holds %s past what JSON readers hold (64 bits, a finite "
                "number): read as no number (null in `raw`)",
                name,
                ", ".join(paths),
            )
    return parsed


def _int64(text: str) -> int | float:
    number = int(text)
    return number if -(2**63) <= number < 2**63 else math.copysign(math.inf, number)


def _infinite(value: Any, path: str) -> Iterator[str]:
    """The paths of the numbers that are not finite, within a parsed JSON value."""
    if isinstance(value, float) and not math.isfinite(value):
        yield path or "the entry"
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _infinite(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _infinite(item, f"{path}[{index}]")


def _too_many(response: requests.Response, held: str, most: int) -> PageTooLargeError:
    return PageTooLargeError(
        f"the answer from {response.url} holds {held} entries, more than twice the page size "
        f"asked ({most // 2:,}); stopping: no listing page does that"
    )


def _estimated_objects(body: bytearray) -> int:
    """Bytes the parsed body could take at most: an object or array ~200, an item ~60."""
    containers = body.count(b"{") + body.count(b"[")
    return 200 * containers + 60 * body.count(b",") + len(body)


def _top_level_count(body: bytearray, most: int) -> int:
    """The entries of a JSON array, counted from its tokens (strings skipped whole) up to one
    past `most`: what a body holds, learnt without making one object of it."""
    depth = held = 0
    for token in _TOKEN.finditer(body):
        char = token.group()[:1]
        if char in (b"{", b"["):
            depth += 1
            if depth == 2 and held == 0:
                held = 1
        elif char in (b"}", b"]"):
            depth -= 1
        elif char == b"," and depth == 1:
            held += 1
            if held > most:
                break
    return held


def withheld(found: list[Any], body: bytearray, forms: Sequence[bytes]) -> int:
    """Replace with None (an entry no record is made of) every entry that carries the token in
    any form the masking step knows; return how many. The body is searched once per form; the
    entries only when one is there (or when the body escapes characters as \\u, which could
    hide one)."""
    if not forms or not (b"\\u" in body or any(form in body for form in forms)):
        return 0
    count = 0
    for index, entry in enumerate(found):
        try:
            text = orjson.dumps(entry)
        except orjson.JSONEncodeError:  # a number past 64 bits: the standard library writes it
            text = json.dumps(entry, ensure_ascii=False).encode()
        if any(form in text for form in forms):
            found[index] = None
            count += 1
    return count


def error_detail(response: requests.Response, body: bytes | bytearray) -> str:
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


def _peek(body: bytes | bytearray) -> str:
    if not body.strip():
        return "the body is empty"
    text = body[:40].decode("utf-8", "replace").replace("\n", " ")
    return f"{len(body)} bytes starting {text!r}"
