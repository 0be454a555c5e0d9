"""Shared fixtures: a clean environment, settings without waits, and mocked Hub pages."""

from __future__ import annotations

import errno
import os
import signal
import sys
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import responses
from hypothesis import settings as hypothesis_settings

from hfharvest.options import Options
from hfharvest.settings import Settings, resolve

# The emulator's fixtures (`hub`, `hub_catalog`): opt-in, as every project using them does.
pytest_plugins = ["hfharvest.testing.pytest_plugin"]

# CI replays the same examples every run (a red CI must be reproducible); a developer's run
# explores new ones, and hypothesis keeps any failure it finds in .hypothesis/ to replay it.
hypothesis_settings.register_profile("ci", derandomize=True, database=None)
if os.environ.get("CI"):
    hypothesis_settings.load_profile("ci")

ENDPOINT = "https://hub.test"
NO_WAIT_ENV = {"HFHARVEST_BACKOFF_BASE": "0", "HFHARVEST_BACKOFF_MAX": "0"}
_SCRUBBED = (
    "HF_TOKEN",
    "HUGGING_FACE_HUB_TOKEN",
    "HF_TOKEN_PATH",
    "HF_HOME",
    "HF_ENDPOINT",
    "HF_HUB_OFFLINE",
    "TRANSFORMERS_OFFLINE",
    "HF_HUB_DISABLE_IMPLICIT_TOKEN",
    "XDG_CACHE_HOME",
    "HF_OIDC_RESOURCE",
)


@pytest.fixture(autouse=True)
def _scrub_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """A developer's own Hub settings must never leak into a test; no wait is ever real."""
    for name in _SCRUBBED:
        monkeypatch.delenv(name, raising=False)
    # Point HOME somewhere empty so ~/.cache/huggingface/token is never found by accident.
    monkeypatch.setenv("HOME", str(tmp_path_factory.mktemp("home")))
    for name, value in NO_WAIT_ENV.items():
        monkeypatch.setenv(name, value)


@pytest.fixture(autouse=True)
def _process_handlers_restored() -> Iterator[None]:
    """`cli.main` sets the process's signal handlers and unraisable hook, as a process should:
    a test that calls it must not leave them to the tests after it (nor to pytest's Ctrl-C)."""
    handlers = {name: signal.getsignal(name) for name in (signal.SIGINT, signal.SIGTERM)}
    hook = sys.unraisablehook
    yield
    for name, handler in handlers.items():
        signal.signal(name, handler)
    sys.unraisablehook = hook


SettingsFactory = Callable[..., Settings]


@pytest.fixture
def make_settings() -> SettingsFactory:
    """Settings as `fetch` would build them, against ENDPOINT, with zero backoff."""

    def build(environ: dict[str, str] | None = None, **options: Any) -> Settings:
        options.setdefault("endpoint", ENDPOINT)
        if "token" not in options and "token_file" not in options:
            options["token"] = False
        return resolve(Options(**options), {**NO_WAIT_ENV, **(environ or {})})

    return build


@pytest.fixture
def mocked() -> Iterator[responses.RequestsMock]:
    """`responses` in strict order: each registered answer is used once, in turn."""
    with responses.RequestsMock(
        registry=responses.registries.OrderedRegistry, assert_all_requests_are_fired=True
    ) as mock:
        yield mock


@pytest.fixture
def disk_full(monkeypatch: pytest.MonkeyPatch) -> None:
    """The disk fills up as the output is made durable: fsync fails with ENOSPC."""

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)


@pytest.fixture
def unordered() -> Iterator[responses.RequestsMock]:
    """`responses` for concurrent walks: any order, every registered answer used."""
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        yield mock


def models(start: int, count: int, prefix: str = "org/m") -> list[dict[str, Any]]:
    """`count` minimal default-listing entries with ids prefix{start}..."""
    return [
        {
            "_id": f"{i:024x}",
            "id": f"{prefix}{i}",
            "likes": 10_000 - i,
            "downloads": i,
            "private": False,
            "tags": ["license:mit"],
            "createdAt": "2024-01-01T00:00:00.000Z",
        }
        for i in range(start, start + count)
    ]


def link(url: str) -> dict[str, str]:
    return {"Link": f'<{url}>; rel="next"'}
