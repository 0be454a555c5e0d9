"""The page size of a walk: halved when a deep page times out, doubled back once pages come.

Deep pages of big walks have answered 504 on the Hub (huggingface_hub #2460, #2581): by the
reports, a keyset query that must scan far to fill 1,000 entries runs past the gateway's limit,
and a smaller page asks it to scan less (a hypothesis: not measured on the Hub). So when a page
answers 504, or no answer comes within the timeout, the retry asks for the same cursor with half
the page size (never below 100); after 10 pages that succeed the size doubles back, up to the
size asked for. Only `limit` changes in the URL: the cursor, and every other parameter, is sent
as the Hub wrote it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

FLOOR = 100  # the smallest page a resize asks for
GOOD_PAGES = 10  # pages that succeed at a reduced size before it doubles back
_PAGE_SIZE = re.compile(r"(?<=[?&])limit=[^&#]*")


def page_size_of(url: str) -> int | None:
    """The page size a URL asks for, if it says."""
    match = _PAGE_SIZE.search(url)
    value = match.group(0).removeprefix("limit=") if match else ""
    return int(value) if value.isdigit() else None


def without_page_size(url: str) -> str:
    """The URL less its page size: what names a page whatever its size (loop detection)."""
    return _PAGE_SIZE.sub("", url)


@dataclass
class PageSize:
    """The size the next request asks for; `None` leaves every URL as it is."""

    asked: int | None
    now: int | None = None
    good: int = 0

    def __post_init__(self) -> None:
        self.now = self.asked

    def url(self, url: str) -> str:
        """`url` asking for the current size: only its `limit` changes."""
        if self.now is None or self.now == page_size_of(url):
            return url
        return _PAGE_SIZE.sub(f"limit={self.now}", url, count=1)

    def halve(self) -> bool:
        """After a deep timeout: ask for half as many; False when already as small as allowed."""
        if self.asked is None or self.now is None:
            return False
        smaller = max(min(FLOOR, self.asked), self.now // 2)
        if smaller >= self.now:
            return False
        self.now, self.good = smaller, 0
        return True

    def succeeded(self) -> None:
        """A page came: after enough at a reduced size, back up towards the size asked for."""
        if self.asked is None or self.now is None or self.now >= self.asked:
            return
        self.good += 1
        if self.good >= GOOD_PAGES:
            self.now, self.good = min(self.asked, self.now * 2), 0
