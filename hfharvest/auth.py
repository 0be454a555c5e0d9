"""The token, resolved as the Hub's own clients do, and where it may be sent.

Order: an explicit token (or `False`: none at all), a token file given by name, `HF_TOKEN` (the
older `HUGGING_FACE_HUB_TOKEN`), then the file `$HF_TOKEN_PATH`, by default `$HF_HOME/token`
(`~/.cache/huggingface/token`). A token is refused for a plain-http endpoint on another machine.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from hfharvest.errors import UsageError


@dataclass(frozen=True)
class Token:
    """A token and where it came from (for messages); the value is kept out of `repr`."""

    value: str = field(repr=False)
    source: str


def resolve_token(
    token: str | bool | None, token_file: Path | None, environ: Mapping[str, str]
) -> Token | None:
    """The token to send, or None. `token=False` sends none, whatever the environment holds."""
    if token is False:
        return None
    if isinstance(token, str):
        return _token(token, "`token`")
    if token_file is not None:
        return _token(_read(token_file, "`token_file`"), "`token_file`")
    for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"):
        if environ.get(name, "").strip():
            return _token(environ[name], name)
    if environ.get("HF_TOKEN_PATH"):
        path = Path(environ["HF_TOKEN_PATH"]).expanduser()
    else:
        home = environ.get("HF_HOME") or str(Path(environ.get("HOME", "~")) / ".cache/huggingface")
        path = Path(home).expanduser() / "token"
    return _token(_read(path, "HF_TOKEN_PATH"), str(path)) if path.is_file() else None


def refuse_clear_text(endpoint: str) -> None:
    """A token sent over plain http to another machine can be read on the way: refuse."""
    parts = urlsplit(endpoint)
    if parts.scheme == "https" or _is_loopback(parts.hostname or ""):
        return
    raise UsageError(
        f"refusing to send the token in clear text to {parts.scheme}://{parts.netloc}",
        hint="use an https endpoint, or pass `token=False` or `allow_insecure_token`",
    )


def _token(text: str, source: str) -> Token | None:
    value = text.strip()
    return Token(value, source) if value else None


def _read(path: Path, option: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(
            f"{option}: cannot read {path}: {exc.strerror or exc}",
            parameter="token_file" if option == "`token_file`" else None,
            value=path,
        ) from exc


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
