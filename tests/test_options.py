"""One list of options: the CLI and the Python API are built from the table, and Python hears
Python: no error, hint or warning given to a Python caller names a flag."""

from __future__ import annotations

import inspect
import logging
import os
import socket
from collections.abc import Mapping, Sequence
from dataclasses import fields
from datetime import date, datetime
from pathlib import Path
from typing import Any, Literal, get_type_hints

import pytest
import typer

import hfharvest
from hfharvest.cli import app
from hfharvest.errors import ExitCode
from hfharvest.flags import as_flags
from hfharvest.options import Options, PythonOptions, doc_of
from hfharvest.testing import HubEmulator, make_catalog

TABLE = {each.name for each in fields(Options)}
CLI_ONLY = {each.name for each in fields(Options) if doc_of(each).cli_only}


def test_the_cli_the_api_and_the_table_are_one_set_of_options() -> None:
    command = typer.main.get_command(app).commands["fetch"]  # type: ignore[attr-defined]
    cli = {param.name for param in command.params}
    assert cli == TABLE
    for function in (hfharvest.harvest, hfharvest.stream):
        assert list(inspect.signature(function).parameters) == ["options", "progress", "kwargs"]
    assert set(get_type_hints(PythonOptions)) == TABLE - CLI_ONLY
    assert {
        "output",
        "format",
        "manifest",
        "no_manifest",
        "quiet",
        "debug",
        "stats_json",
        "no_token",
        "dry_run",
        "progress_every",
        "fresh_for",
    } == CLI_ONLY


def test_help_documents_every_parameter() -> None:
    for function in (hfharvest.harvest, hfharvest.stream):
        text = inspect.getdoc(function) or ""
        for name in [*get_type_hints(PythonOptions), "progress"]:
            assert f"    {name}: " in f"    {text}".replace("\n", "\n    "), name


# Each type of the table, and what Python callers may pass for it (the typed keyword arguments).
AS_TAKEN: dict[Any, Any] = {
    tuple[str, ...]: str | Sequence[str],
    Path | None: str | os.PathLike[str] | None,
    str: Literal["model", "models", "dataset", "datasets", "space", "spaces"],  # repo_type
}


TYPE_NAME: Any = AS_TAKEN[str]


def test_the_typed_keyword_arguments_are_the_tables() -> None:
    """`PythonOptions`, what a type checker sees, takes each option in the table's type, or in
    the wider forms Python callers write (a name for a list, a string for a path)."""
    table, typed = get_type_hints(Options), get_type_hints(PythonOptions)
    special = {"since": str | date | datetime | None}
    for name, kind in typed.items():
        expected = special.get(name) or AS_TAKEN.get(table[name], table[name])
        if name == "repo_type":
            expected = TYPE_NAME | Sequence[TYPE_NAME]
        if name in ("limit", "min_count"):  # N, or N per type
            expected = int | Mapping[TYPE_NAME, int] | None
        assert kind == expected, name


def test_a_python_text_shows_the_command_lines_flags_in_the_cli() -> None:
    assert as_flags("`limit` and `repo_type`, `full=False`, `token=False`, `output`") == (
        "--limit and --type, --no-full, --no-token, -o/--output"
    )
    assert as_flags("`ps` and `unknown`") == "`ps` and `unknown`"  # only options are rendered


def _dead_port() -> str:
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{free.getsockname()[1]}"


# Each way a Python caller can fail: the call's options, and the emulator's faults (if any).
FAILURES: list[tuple[str, dict[str, Any], tuple[str, ...]]] = [
    ("limit", {"limit": 0}, ()),
    ("page_size", {"page_size": 5000}, ()),
    ("repo_type", {"repo_type": "paper"}, ()),
    ("sort", {"sort": "popularity"}, ()),  # sent; the Hub refuses it (400)
    ("full and expand", {"full": True, "expand": "sha"}, ()),
    ("all_fields and expand", {"all_fields": True, "expand": "sha"}, ()),
    ("pipeline_tag on datasets", {"repo_type": "dataset", "pipeline_tag": "x"}, ()),
    ("since", {"since": "yesterday"}, ()),
    ("since in the future", {"since": "2999-01-01"}, ()),
    ("since beside another sort", {"since": "2025-01-01", "sort": "likes"}, ()),
    ("min_likes", {"min_likes": -1}, ()),
    ("timeout", {"timeout": 0}, ()),
    ("max_rps", {"max_rps": 0}, ()),
    ("retries", {"retries": -1}, ()),
    ("endpoint", {"endpoint": "ftp://hub"}, ()),
    ("token in clear text", {"endpoint": "http://mirror.example", "token": "hf_x"}, ()),
    ("token file", {"token_file": "/nonexistent/token", "token": None}, ()),
    ("min_count", {"min_count": 10**9}, ()),
    ("a refusal (401)", {}, ("status:401",)),
    ("not found (404)", {}, ("status:404",)),
    ("a bad query (400)", {}, ("status:400",)),
    (
        "a sort refused beside a provider",
        {"sort": "trendingScore", "inference_provider": "hf-inference"},
        (),
    ),
    ("too long a wait", {"max_wait": 0}, ("retry-after:5",)),
    ("a cursor loop", {}, ("loop",)),
    ("a link away", {}, ("link-away",)),
    ("transient failures after the retries", {"retries": 1}, ("status:503",)),
]


@pytest.mark.parametrize(
    ("options", "faults"), [(o, f) for _, o, f in FAILURES], ids=[name for name, _, _ in FAILURES]
)
def test_no_error_given_to_python_names_a_flag(
    options: dict[str, Any], faults: tuple[str, ...], caplog: pytest.LogCaptureFixture
) -> None:
    with (
        HubEmulator(make_catalog(models=1500, hf_inference=100), faults=faults) as hub,
        caplog.at_level(logging.DEBUG, logger="hfharvest"),
        pytest.raises(hfharvest.HarvestError) as error,
    ):
        hfharvest.harvest(**{"endpoint": hub.url, "token": False, "page_size": 500, **options})
    texts = [str(error.value), error.value.hint or "", *(r.getMessage() for r in caplog.records)]
    assert not [text for text in texts if "--" in text], texts
    assert error.value.exit_code in set(ExitCode)
    if isinstance(error.value, hfharvest.UsageError) and error.value.parameter is not None:
        assert f"`{error.value.parameter}`" in str(error.value)


def test_an_unreachable_hub_and_its_warnings_speak_python(
    caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    with caplog.at_level(logging.DEBUG, logger="hfharvest"):
        with pytest.raises(hfharvest.HubError) as error:
            hfharvest.harvest(endpoint=_dead_port(), token=False, retries=0, timeout=1)
        with HubEmulator(make_catalog(models=1500, hf_inference=100)) as hub:
            hfharvest.harvest(endpoint=hub.url, token=False, sort="likes", limit=5)  # limit
            hfharvest.harvest(endpoint=hub.url, token=False, page_size=1000)  # whole listing
            # a walk that cannot stop
            hfharvest.harvest(endpoint=hub.url, token=False, min_likes=10**6, sort=["likes", "id"])
    texts = [str(error.value), error.value.hint or "", *(r.getMessage() for r in caplog.records)]
    assert any("`limit`" in text for text in texts)
    assert any("whole listing" in text for text in texts)
    assert any("cannot stop early" in text for text in texts)
    assert not [text for text in texts if "--" in text], texts


def test_an_error_after_the_walks_began_carries_the_outcome_so_far() -> None:
    with (
        HubEmulator(make_catalog(models=1500, hf_inference=100)) as hub,
        pytest.raises(hfharvest.TooFewRecordsError) as error,
    ):
        hfharvest.harvest(endpoint=hub.url, token=False, min_count=10**6)
    outcome = error.value.outcome
    assert outcome is not None and outcome.unique == 1500 and outcome.written is None
    assert [stats.sort for stats in outcome.stats] == ["likes", "downloads"]
    assert outcome.stats[0].new == 1500 and outcome.stats[1].duplicates == 1500
