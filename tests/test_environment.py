"""The environment as huggingface_hub reads it (#19): cell by cell, the Authorization header it
would send is the one hfharvest sends, and offline mode is the same."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from hfharvest.auth import offline, resolve_token
from servers import scripted

pytestmark = pytest.mark.slow
pytest.importorskip("huggingface_hub")

HEADER = (
    "from huggingface_hub.utils import build_hf_headers; "
    "print(build_hf_headers().get('authorization'))"
)
OFFLINE = "from huggingface_hub import constants; print(constants.HF_HUB_OFFLINE)"

# name -> (environment, where a token file is written, relative to HOME, and its text)
CELLS: dict[str, tuple[dict[str, str], str | None, str]] = {
    "nothing": ({}, None, ""),
    "HF_TOKEN": ({"HF_TOKEN": "hf_env"}, None, ""),
    "empty HF_TOKEN, the older name": (
        {"HF_TOKEN": "", "HUGGING_FACE_HUB_TOKEN": "hf_old"},
        None,
        "",
    ),
    "HF_TOKEN beside a file": ({"HF_TOKEN": "hf_env"}, ".cache/huggingface/token", "hf_file"),
    "the default file": ({}, ".cache/huggingface/token", "hf_file\n"),
    "XDG_CACHE_HOME": ({"XDG_CACHE_HOME": "{home}/xdg"}, "xdg/huggingface/token", "hf_xdg"),
    "HF_HOME with ~": ({"HF_HOME": "~/hfhome"}, "hfhome/token", "hf_home"),
    "HF_HOME with $VAR": ({"HF_HOME": "$HOME/hfhome"}, "hfhome/token", "hf_home"),
    "HF_TOKEN_PATH with ~": ({"HF_TOKEN_PATH": "~/tok/en"}, "tok/en", "hf_path"),
    "HF_TOKEN_PATH with ${VAR}": ({"HF_TOKEN_PATH": "${HOME}/tok/en"}, "tok/en", "hf_path"),
    "HF_TOKEN_PATH missing": ({"HF_TOKEN_PATH": "~/absent"}, ".cache/huggingface/token", "x"),
    "spaces and CR in the file": ({}, ".cache/huggingface/token", "  hf_spaced\r\n"),
    "implicit disabled, a file": (
        {"HF_HUB_DISABLE_IMPLICIT_TOKEN": "1"},
        ".cache/huggingface/token",
        "hf_file",
    ),
    "implicit disabled, HF_TOKEN": (
        {"HF_HUB_DISABLE_IMPLICIT_TOKEN": "true", "HF_TOKEN": "hf_env"},
        None,
        "",
    ),
    "implicit disable off": (
        {"HF_HUB_DISABLE_IMPLICIT_TOKEN": "0", "HF_TOKEN": "hf_env"},
        None,
        "",
    ),
}


def environment(home: Path, cell: dict[str, str]) -> dict[str, str]:
    env = {"PATH": os.environ["PATH"], "HOME": str(home)}
    return {**env, **{k: v.replace("{home}", str(home)) for k, v in cell.items()}}


@pytest.mark.parametrize("name", list(CELLS))
def test_the_token_sent_is_the_one_huggingface_hub_would_send(tmp_path: Path, name: str) -> None:
    cell, where, text = CELLS[name]
    if where is not None:
        (tmp_path / where).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / where).write_text(text)
    env = environment(tmp_path, cell)
    theirs = subprocess.run(
        [sys.executable, "-c", HEADER], env=env, capture_output=True, text=True, check=True
    ).stdout.strip()
    token = resolve_token(None, None, env)
    ours = f"Bearer {token.value}" if token else "None"
    assert ours == theirs


@pytest.mark.parametrize(
    "cell",
    [
        {},
        {"HF_HUB_OFFLINE": "1"},
        {"TRANSFORMERS_OFFLINE": "1"},
        {"HF_HUB_OFFLINE": "0", "TRANSFORMERS_OFFLINE": "1"},
        {"HF_HUB_OFFLINE": "", "TRANSFORMERS_OFFLINE": "yes"},
        {"HF_HUB_OFFLINE": "ON"},
    ],
)
def test_offline_mode_is_huggingface_hubs(tmp_path: Path, cell: dict[str, str]) -> None:
    env = environment(tmp_path, cell)
    theirs = subprocess.run(
        [sys.executable, "-c", OFFLINE], env=env, capture_output=True, text=True, check=True
    ).stdout.strip()
    assert (offline(env) is not None) == (theirs == "True")


def test_transformers_offline_refuses_before_any_request(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from hfharvest.cli import app
    from hfharvest.testing import HubEmulator

    with HubEmulator() as hub:
        result = CliRunner().invoke(
            app, ["fetch", "--endpoint", hub.url], env={"TRANSFORMERS_OFFLINE": "1"}
        )
        assert result.exit_code == 2 and hub.requests_log == []
    assert "TRANSFORMERS_OFFLINE is set" in result.stderr


def test_token_true_requires_a_token(tmp_path: Path) -> None:
    from hfharvest.errors import UsageError

    with pytest.raises(UsageError, match="`token=True` asks for a token"):
        resolve_token(True, None, {"HOME": str(tmp_path)})
    found = resolve_token(True, None, {"HOME": str(tmp_path), "HF_TOKEN": "hf_env"})
    assert found is not None and found.value == "hf_env"


# Cells that only huggingface_hub itself can answer: its OIDC exchange, its OAuth refresh. Each
# side runs in a process of its own, with a home of its own, against one stand-in server that
# answers the exchange and the refresh (POST /oauth/token) and an empty listing.
EXCHANGED = b'{"access_token": "hf_exchanged_or_refreshed", "expires_in": 3600}'
OAUTH_TOKENS = """[browser]
hf_token = hf_expired_oauth
refresh_token = hf_refresh_me
expires_at = 1000000000
"""
HUB_CELLS: dict[str, tuple[dict[str, str], dict[str, str]]] = {
    "HF_TOKEN": ({"HF_TOKEN": "hf_env"}, {}),
    "the token file": ({}, {".cache/huggingface/token": "hf_file"}),
    "implicit disabled": (
        {"HF_HUB_DISABLE_IMPLICIT_TOKEN": "1"},
        {".cache/huggingface/token": "hf_file"},
    ),
    "HF_OIDC_RESOURCE": ({"HF_OIDC_RESOURCE": "org/repo", "HF_OIDC_ID_TOKEN": "eyJ.id.token"}, {}),
    "an expired OAuth token": (
        {},
        {
            ".cache/huggingface/token": "hf_expired_oauth",
            ".cache/huggingface/stored_tokens": OAUTH_TOKENS,
        },
    ),
}
THEIRS = [sys.executable, "-c", "from huggingface_hub import HfApi; list(HfApi().list_models())"]
OURS = [str(Path(sys.executable).with_name("hfharvest")), "fetch", "--sort", "likes", "-q"]


def _answer(path: str) -> tuple[int, dict[str, str], bytes]:
    if path.startswith("/oauth/token"):
        return 200, {"Content-Type": "application/json"}, EXCHANGED
    if path.startswith("/api/agent-harnesses"):  # huggingface_hub's own, for its User-Agent
        return 200, {"Content-Type": "application/json"}, b'{"harnesses": {}}'
    return 200, {"Content-Type": "application/json"}, b"[]"


@pytest.mark.parametrize("name", list(HUB_CELLS))
def test_the_header_is_huggingface_hubs_in_every_case_it_handles(tmp_path: Path, name: str) -> None:

    cell, files = HUB_CELLS[name]
    sent: dict[str, str | None] = {}
    with scripted(_answer) as (server,):
        for side, command in (("theirs", THEIRS), ("ours", OURS)):
            home = tmp_path / side
            for where, text in files.items():
                (home / where).parent.mkdir(parents=True, exist_ok=True)
                (home / where).write_text(text)
            env = {**environment(home, cell), "HF_ENDPOINT": server.url}
            done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
            assert done.returncode == 0, done.stderr
            listed = [auth for _, path, auth in server.seen if path.startswith("/api/models")]
            sent[side] = listed[-1]
    assert sent["ours"] == sent["theirs"]
    if name in ("HF_OIDC_RESOURCE", "an expired OAuth token"):
        assert sent["ours"] == "Bearer hf_exchanged_or_refreshed"


def test_without_huggingface_hub_an_oidc_resource_is_refused_naming_the_extra(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from typer.testing import CliRunner

    from hfharvest.cli import app

    monkeypatch.setattr("hfharvest.auth.hub_installed", lambda: False)
    monkeypatch.setenv("HF_OIDC_RESOURCE", "org/repo")
    result = CliRunner().invoke(app, ["fetch", "--endpoint", "http://127.0.0.1:9", "-q"])
    assert result.exit_code == 2
    assert "the OIDC token exchange needs huggingface_hub" in result.stderr
    assert "pip install 'hfharvest[hub]'" in result.stderr


def test_a_dry_run_makes_no_exchange(monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from hfharvest.cli import app

    monkeypatch.setenv("HF_OIDC_RESOURCE", "org/repo")
    monkeypatch.setenv("HF_OIDC_ID_TOKEN", "eyJ.id.token")
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # an exchange would fail here
    result = CliRunner().invoke(app, ["fetch", "--dry-run", "--sort", "likes"])
    assert result.exit_code == 0, result.stderr


def test_debug_names_the_tokens_source_never_the_token(monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from hfharvest.cli import app

    monkeypatch.setenv("HF_TOKEN", "hf_secret_source")
    result = CliRunner().invoke(app, ["fetch", "--dry-run", "--debug", "--sort", "likes"])
    assert result.exit_code == 0, result.stderr
    assert "the token: from HF_TOKEN" in result.stderr
    assert "hf_secret_source" not in result.stdout + result.stderr
