"""One reading of every URL: the origin a request will really reach, and the listing it names.

requests connects where urllib3's `parse_url` says, and Python's `urlsplit` can read the same text
otherwise: in `http://127.0.0.1:F\\@127.0.0.1:O/api/models` urllib3 stops the host at the
backslash (port F) while `urlsplit` takes what follows the `@` (port O). So the origin is read by
urllib3's parser, the one that connects, and a URL that the two parsers read apart, or whose
authority holds what only a hostile server writes (a backslash, userinfo, a percent-escape, a
space or a control character, anything not ASCII), is refused before any request. The endpoint,
every `Link`, every redirect's `Location` and every cursor kept in a state are read here.

A walk also stays on its own listing: a next link must name the first page's path with the same
parameters (compared as a set, in any order, `expand[]` read as `expand`), less the cursor and the
page size, which the Hub changes.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

from urllib3.exceptions import LocationParseError
from urllib3.util import parse_url

DEFAULT_PORTS = {"http": 80, "https": 443}
# What a walk's pages may change in a listing's query: the Hub's cursor, and the page size.
PAGING = frozenset({"cursor", "limit"})
_SUSPECT = frozenset("\\@%")

Origin = tuple[str, str, int]


class UnsafeURL(ValueError):
    """A URL that cannot be read one way only (or not at all); `str()` says why."""


def origin(url: str) -> Origin:
    """(scheme, host, port) the connection for `url` goes to, as urllib3 reads it; raises
    `UnsafeURL` when another parser could read it otherwise, or it cannot be read."""
    if not url.isascii() or any(char <= " " or char == "\x7f" for char in url):
        raise UnsafeURL("it holds a space, a control character or a character not ASCII")
    try:
        connects = parse_url(url)
        split = urlsplit(url)
        split_port = split.port
    except (LocationParseError, ValueError) as exc:
        raise UnsafeURL(f"it cannot be read ({_reason(exc)})") from None
    authority = split.netloc
    if _SUSPECT & set(authority) or _SUSPECT & set(connects.netloc or ""):
        raise UnsafeURL("its authority holds a backslash, userinfo (@) or a percent-escape")
    scheme = (connects.scheme or "").lower()
    if scheme not in DEFAULT_PORTS:
        raise UnsafeURL(f"its scheme is {scheme or 'missing'}, not http or https")
    host = (connects.host or "").strip("[]").lower()
    port = connects.port or DEFAULT_PORTS[scheme]
    read_apart = (
        split.scheme.lower(),
        (split.hostname or "").lower(),
        split_port or DEFAULT_PORTS.get(split.scheme.lower(), 0),
    )
    if not host or read_apart != (scheme, host, port):
        raise UnsafeURL("two URL parsers read its host or port apart")
    return scheme, host, port


def format_origin(where: Origin) -> str:
    scheme, host, port = where
    shown = f"[{host}]" if ":" in host else host
    return (
        f"{scheme}://{shown}" if DEFAULT_PORTS.get(scheme) == port else f"{scheme}://{shown}:{port}"
    )


def listing_of(url: str) -> tuple[str, frozenset[tuple[str, str]]]:
    """What names a listing in a URL: its path and its parameters but the paging ones."""
    parts = urlsplit(url)
    params = frozenset(
        (name.removesuffix("[]"), value)
        for name, value in parse_qsl(parts.query, keep_blank_values=True)
        if name not in PAGING
    )
    return parts.path, params


def leaves_listing(first: str, following: str) -> str | None:
    """Why `following` is not a page of the listing `first` begins, or None when it is."""
    path, params = listing_of(first)
    other_path, other_params = listing_of(following)
    if other_path != path:
        return f"its path is {other_path}, not the listing's {path}"
    changed = sorted(name for name, _ in params ^ other_params)
    if changed:
        return f"it changes the listing's parameters ({', '.join(dict.fromkeys(changed))})"
    return None


def _reason(exc: Exception) -> str:
    text = str(exc)
    return text.split(": ", 1)[-1] if isinstance(exc, LocationParseError) else text
