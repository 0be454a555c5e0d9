"""The environment as huggingface_hub reads it: the token it would send, offline mode; and
where a token may be sent.

Order: an explicit token (or `False`: none at all), a token file given by name; then, unless
`HF_HUB_DISABLE_IMPLICIT_TOKEN` is set, the token huggingface_hub's own `get_token()` gives when
it is installed (`pip install 'hfharvest[hub]'`): the OIDC exchange of `HF_OIDC_RESOURCE`,
`HF_TOKEN`, the token file with an expired OAuth token refreshed (huggingface_hub writes its own
files when it does), a Colab secret. Without it, or for an environment given as a mapping (a
test's), hfharvest's own reading: `HF_TOKEN` (the older `HUGGING_FACE_HUB_TOKEN`), then the file
`$HF_TOKEN_PATH`, by default `$HF_HOME/token` (`$XDG_CACHE_HOME/huggingface/token`,
`~/.cache/huggingface/token`); `HF_OIDC_RESOURCE` then needs the extra (exit 2). A test compares
the header sent, environment by environment, with huggingface_hub's. A token is refused for a
plain-http endpoint on another machine.
"""

from __future__ import annotations

import importlib.util
import ipaddress
import os
import re
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
    token: str | bool | None,
    token_file: Path | None,
    environ: Mapping[str, str],
    *,
    exchange: bool = True,
) -> Token | None:
    """The token to send, or None, as `huggingface_hub.utils.build_hf_headers` would choose it.

    `token=False` sends none, a string is sent as it is, `token=True` requires one (from the
    environment or the token file). Otherwise the environment's token (`HF_TOKEN`, then
    `HUGGING_FACE_HUB_TOKEN`) or the token file's is sent, unless `HF_HUB_DISABLE_IMPLICIT_TOKEN`
    is set. `token_file` (hfharvest's own) names the file to read instead. `exchange=False` (a
    dry run) makes no request: an OIDC exchange is left out.
    """
    if token is False:
        return None
    if isinstance(token, str):
        return _token(token, "`token`")
    if token_file is not None:
        return _token(_read(token_file, "`token_file`"), "`token_file`")
    found = _implicit(environ, exchange=exchange)
    if token is True:
        if found is None:
            raise UsageError(
                "`token=True` asks for a token, and none was found (HF_TOKEN, the token file)",
                parameter="token",
                value=True,
                hint=f"set HF_TOKEN, or log in so that {token_path(environ)} holds one",
            )
        return found
    if _is_true(environ.get("HF_HUB_DISABLE_IMPLICIT_TOKEN")):
        return None  # as huggingface_hub: only a token passed explicitly is sent
    return found


HUB_EXTRA = "pip install 'hfharvest[hub]'"
_VARIABLES = ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN")


def _implicit(environ: Mapping[str, str], *, exchange: bool) -> Token | None:
    """The token huggingface_hub's `get_token` gives, by itself when it is installed and the
    environment is the process's; else read here the same way, but for what only it can do."""
    oidc = environ.get("HF_OIDC_RESOURCE")
    if oidc and not exchange:
        return None  # a dry run: the exchange is a request
    own = _own(environ)
    if environ is os.environ and hub_installed():
        # Asked only where it can answer otherwise than this module (and worth its import):
        # an OIDC exchange, a token file that may hold an OAuth token to refresh, Colab.
        if oidc or (own is not None and own.source not in _VARIABLES) or _in_colab():
            return _from_huggingface_hub(environ, own)
        return own
    if oidc:
        raise UsageError(
            f"HF_OIDC_RESOURCE is set ({oidc}): the OIDC token exchange needs huggingface_hub",
            hint=f"{HUB_EXTRA}, or unset HF_OIDC_RESOURCE",
        )
    return own


def hub_installed() -> bool:
    return importlib.util.find_spec("huggingface_hub") is not None


def _in_colab() -> bool:
    return importlib.util.find_spec("google") is not None and (
        importlib.util.find_spec("google.colab") is not None
    )


def _from_huggingface_hub(environ: Mapping[str, str], own: Token | None) -> Token | None:
    """huggingface_hub's own resolution, and where its token came from (never the token)."""
    import huggingface_hub  # only now: importing it costs 0.04 s of start-up (make bench)

    try:
        value = huggingface_hub.get_token()
    except Exception as exc:  # its OIDC exchange failed: its own error, whatever its type
        raise UsageError(
            f"huggingface_hub could not get the token: {type(exc).__name__}: {exc}",
            hint="check HF_OIDC_RESOURCE and the CI's id token, or unset HF_OIDC_RESOURCE",
        ) from None
    if not value:
        return None
    source = (
        f"HF_OIDC_RESOURCE {environ['HF_OIDC_RESOURCE']} (exchanged by huggingface_hub)"
        if environ.get("HF_OIDC_RESOURCE")
        else own.source
        if own is not None and own.value == value
        else f"{token_path(environ)} (refreshed by huggingface_hub)"
        if own is not None
        else "huggingface_hub (a Colab secret)"
    )
    return _token(value, source)


def _own(environ: Mapping[str, str]) -> Token | None:
    """The environment's token, else the token file's, read here."""
    for name in _VARIABLES:
        if environ.get(name):
            return _token(environ[name], name)
    path = token_path(environ)
    return _token(_read(path, "HF_TOKEN_PATH"), str(path)) if path.is_file() else None


def token_path(environ: Mapping[str, str]) -> Path:
    """Where huggingface_hub keeps the token: `$HF_TOKEN_PATH`, else `$HF_HOME/token`, `HF_HOME`
    defaulting to `$XDG_CACHE_HOME/huggingface` (`~/.cache/huggingface`); `~` and `$VAR`
    expanded, as its constants do."""
    cache = environ.get("XDG_CACHE_HOME", "~/.cache")
    home = _expanded(environ.get("HF_HOME", f"{cache}/huggingface"), environ)
    return Path(_expanded(environ.get("HF_TOKEN_PATH", f"{home}/token"), environ))


def _expanded(path: str, environ: Mapping[str, str]) -> str:
    """`os.path.expandvars(os.path.expanduser(path))`, against `environ` (a test's or the
    process's)."""
    if path == "~" or path.startswith("~/"):
        path = environ.get("HOME", str(Path.home())) + path[1:]
    return _VARIABLE.sub(lambda m: environ.get(m.group(1) or m.group(2), m.group(0)), path)


_VARIABLE = re.compile(r"\$(?:(\w+)|\{([^}]*)\})")


def _is_true(value: str | None) -> bool:
    return (value or "").upper() in {"1", "ON", "YES", "TRUE"}


OFFLINE_VARIABLES = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")


def offline(environ: Mapping[str, str]) -> str | None:
    """The variable that puts hfharvest offline, if one does: `HF_HUB_OFFLINE`, or else
    `TRANSFORMERS_OFFLINE` (the first one set wins, as in huggingface_hub's constants)."""
    name = "HF_HUB_OFFLINE" if environ.get("HF_HUB_OFFLINE") else "TRANSFORMERS_OFFLINE"
    return name if _is_true(environ.get(name)) else None


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
    value = text.replace("\r", "").replace("\n", "").strip()  # as huggingface_hub cleans it
    return Token(value, source) if value else None


def _read(path: Path, option: str) -> str:
    """A token file's text; one of several lines is refused (saying so, never what they hold)."""
    parameter = "token_file" if option == "`token_file`" else None
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(
            f"{option}: cannot read {path}: {exc.strerror or exc}",
            parameter=parameter,
            value=path,
        ) from exc
    lines = [line for line in text.splitlines() if line.strip()]
    if len(lines) > 1:
        raise UsageError(
            f"{option}: {path} holds {len(lines)} lines; a token file holds one token",
            parameter=parameter,
            value=path,
            hint="keep the token alone in the file",
        )
    return text


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
