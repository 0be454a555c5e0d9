"""The environment as huggingface_hub reads it (#19): cell by cell, the Authorization header it
would send is the one hfharvest sends, and offline mode is the same."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from hfharvest.auth import offline, resolve_token

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
    "empty HF_TOKEN, the older name": ({"HF_TOKEN": "", "HUGGING_FACE_HUB_TOKEN": "hf_old"},
                                       None, ""),
    "HF_TOKEN beside a file": ({"HF_TOKEN": "hf_env"}, ".cache/huggingface/token", "hf_file"),
    "the default file": ({}, ".cache/huggingface/token", "hf_file\n"),
    "XDG_CACHE_HOME": ({"XDG_CACHE_HOME": "{home}/xdg"}, "xdg/huggingface/token", "hf_xdg"),
    "HF_HOME with ~": ({"HF_HOME": "~/hfhome"}, "hfhome/token", "hf_home"),
    "HF_HOME with $VAR": ({"HF_HOME": "$HOME/hfhome"}, "hfhome/token", "hf_home"),
    "HF_TOKEN_PATH with ~": ({"HF_TOKEN_PATH": "~/tok/en"}, "tok/en", "hf_path"),
    "HF_TOKEN_PATH with ${VAR}": ({"HF_TOKEN_PATH": "${HOME}/tok/en"}, "tok/en", "hf_path"),
    "HF_TOKEN_PATH missing": ({"HF_TOKEN_PATH": "~/absent"}, ".cache/huggingface/token", "x"),
    "spaces and CR in the file": ({}, ".cache/huggingface/token", "  hf_spaced\r\n"),
    "implicit disabled, a file": ({"HF_HUB_DISABLE_IMPLICIT_TOKEN": "1"},
                                  ".cache/huggingface/token", "hf_file"),
    "implicit disabled, HF_TOKEN": ({"HF_HUB_DISABLE_IMPLICIT_TOKEN": "true",
                                     "HF_TOKEN": "hf_env"}, None, ""),
    "implicit disable off": ({"HF_HUB_DISABLE_IMPLICIT_TOKEN": "0", "HF_TOKEN": "hf_env"}, None,
                             ""),
}  # fmt: skip


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
    theirs = subprocess.run([sys.executable, "-c", HEADER], env=env, capture_output=True,
                            text=True, check=True).stdout.strip()  # fmt: skip
    token = resolve_token(None, None, env)
    ours = f"Bearer {token.value}" if token else "None"
    assert ours == theirs


@pytest.mark.parametrize(
    "cell",
    [{}, {"HF_HUB_OFFLINE": "1"}, {"TRANSFORMERS_OFFLINE": "1"},
     {"HF_HUB_OFFLINE": "0", "TRANSFORMERS_OFFLINE": "1"},
     {"HF_HUB_OFFLINE": "", "TRANSFORMERS_OFFLINE": "yes"}, {"HF_HUB_OFFLINE": "ON"}],
)  # fmt: skip
def test_offline_mode_is_huggingface_hubs(tmp_path: Path, cell: dict[str, str]) -> None:
    env = environment(tmp_path, cell)
    theirs = subprocess.run([sys.executable, "-c", OFFLINE], env=env, capture_output=True,
                            text=True, check=True).stdout.strip()  # fmt: skip
    assert (offline(env) is not None) == (theirs == "True")


def test_transformers_offline_refuses_before_any_request(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from hfharvest.cli import app
    from hfharvest.testing import HubEmulator

    with HubEmulator() as hub:
        result = CliRunner().invoke(app, ["fetch", "--endpoint", hub.url],
                                    env={"TRANSFORMERS_OFFLINE": "1"})  # fmt: skip
        assert result.exit_code == 2 and hub.requests_log == []
    assert "TRANSFORMERS_OFFLINE is set" in result.stderr


def test_token_true_requires_a_token(tmp_path: Path) -> None:
    from hfharvest.errors import UsageError

    with pytest.raises(UsageError, match="`token=True` asks for a token"):
        resolve_token(True, None, {"HOME": str(tmp_path)})
    found = resolve_token(True, None, {"HOME": str(tmp_path), "HF_TOKEN": "hf_env"})
    assert found is not None and found.value == "hf_env"
