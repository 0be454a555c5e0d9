"""What hfharvest said on stderr, as lines without the UTC time a line begins with where stderr is
no terminal (CliRunner's, a subprocess's): for tests that read a line's own words from its start."""

from __future__ import annotations

import re

_STAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ ", flags=re.M)


def unstamped(stderr: str) -> str:
    return _STAMP.sub("", stderr)


def said(stderr: str) -> list[str]:
    return unstamped(stderr).splitlines()
