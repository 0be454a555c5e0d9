"""At home in the Hugging Face ecosystem (#19): huggingface_hub's filters in its wire forms, any
sort the Hub accepts, fields checked where known and sent where not, a dry run, Python's types,
the package as published, and small doors."""

from __future__ import annotations

import dataclasses
import datetime as dt
import inspect
import json
import subprocess
import sys
import tomllib
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Literal, get_type_hints
from urllib.parse import parse_qsl

import pytest
from typer.testing import CliRunner

import hfharvest
from hfharvest.cli import app
from hfharvest.testing import HubEmulator, make_catalog

runner = CliRunner()
ROOT = Path(__file__).parent.parent


def fetch(hub: HubEmulator, *args: str) -> Any:
    return runner.invoke(app, ["fetch", "--endpoint", hub.url, "--no-token", *args])


def sent(hub: HubEmulator) -> list[tuple[str, str]]:
    """The first listing request's query, as the emulator received it."""
    return parse_qsl(hub.requests_log[0].query)


@pytest.mark.parametrize(
    ("args", "wire"),
    [
        (["--gated"], [("gated", "true")]),
        (["--no-gated"], [("gated", "false")]),
        (["--apps", "ollama", "--apps", "vllm"], [("apps", "ollama"), ("apps", "vllm")]),
        (["--warm"], [("inference", "warm")]),
        (["--num-parameters", "min:6B,max:128B"], [("num_parameters", "min:6B,max:128B")]),
        (["--trained-dataset", "org/data"], [("filter", "dataset:org/data")]),
        (
            ["--type", "dataset", "--language", "fr", "--task-categories", "text-generation"],
            [("filter", "language:fr"), ("filter", "task_categories:text-generation")],
        ),
        (
            [
                "--type",
                "dataset",
                "--task-ids",
                "extractive-qa",
                "--size-categories",
                "1M<n<10M",
                "--multilinguality",
                "multilingual",
                "--language-creators",
                "crowdsourced",
                "--benchmark",
                "official",
            ],
            [
                ("filter", "language_creators:crowdsourced"),
                ("filter", "multilinguality:multilingual"),
                ("filter", "size_categories:1M<n<10M"),
                ("filter", "task_ids:extractive-qa"),
                ("filter", "benchmark:official"),
            ],
        ),
        (
            ["--type", "spaces", "--datasets", "a/b", "--models", "c/d", "--linked"],
            [("datasets", "a/b"), ("models", "c/d"), ("linked", "true")],
        ),
    ],
)
def test_each_filter_goes_in_huggingface_hubs_wire_form(
    hub: HubEmulator, args: list[str], wire: list[tuple[str, str]]
) -> None:
    result = fetch(hub, "--sort", "likes", "--limit", "5", *args)
    assert result.exit_code == 0, result.stderr
    query = sent(hub)
    assert [pair for pair in query if pair in wire] == wire


def test_the_emulator_answers_each_filter(hub: HubEmulator) -> None:
    def ids(*args: str) -> list[dict[str, Any]]:
        result = fetch(hub, "--sort", "likes", "-q", *args)
        assert result.exit_code == 0, result.stderr
        return [json.loads(line) for line in result.stdout.splitlines()]

    assert {r["gated"] for r in ids("--gated")} <= {"auto", "manual"}
    assert {r["gated"] for r in ids("--no-gated")} == {"no"}
    assert {r["inference"] for r in ids("--warm", "--expand", "inference")} == {"warm"}
    assert {r["library_name"] for r in ids("--apps", "ollama")} == {"gguf"}
    sized = ids("--num-parameters", "min:6B,max:9B", "--all-fields")
    assert sized and all(6e9 <= r["parameters"] <= 9e9 for r in sized)
    french = ids("--type", "dataset", "--language", "fr")
    assert french and all("fr" in r["languages"] for r in french)
    linked = ids("--type", "space", "--linked", "--all-fields")
    assert linked and all(r["models"] or r["datasets"] for r in linked)


def test_a_filter_of_another_type_is_refused_before_any_request(hub: HubEmulator) -> None:
    for args in (
        ["--type", "space", "--gated"],
        ["--type", "model", "--language", "fr"],
        ["--type", "dataset", "--warm"],
    ):
        result = fetch(hub, *args)
        assert result.exit_code == 2, args
        assert "only applies to --type" in result.stderr
    assert hub.requests_log == []


def test_a_new_filter_at_its_default_keeps_the_job(make_settings: Any) -> None:
    from hfharvest.state import same_job

    job = make_settings().job()
    older = {k: v for k, v in job.items() if k != "hub_filters"}  # a state from before them
    assert same_job(job, older) and not same_job(job, {**older, "author": "x"})


def test_a_sort_hfharvest_does_not_know_is_sent_and_walked_to_the_end() -> None:
    catalog = make_catalog(models=900, datasets=0, spaces=0)
    with HubEmulator(catalog, extra_sorts={"likes7d": "likes30d"}) as hub:
        result = fetch(hub, "--sort", "likes7d", "--page-size", "500")
        assert result.exit_code == 0, result.stderr
        assert ("sort", "likes7d") in sent(hub)
    assert len(result.stdout.splitlines()) == 900
    assert "--sort likes7d is not a sort hfharvest knows" in result.stderr


@pytest.mark.parametrize("partial", [[], ["--allow-partial"]])
def test_an_unknown_sort_the_hub_refuses_fails_the_run(
    hub: HubEmulator, partial: list[str]
) -> None:
    result = fetch(hub, "--sort", "likes", "--sort", "likess", *partial)
    assert result.exit_code == 1
    assert "Invalid sort parameter: likess" in result.stderr
    assert "--sort likess is not one hfharvest knows: likes, downloads" in result.stderr


def test_expand_fields_split_checked_and_sent(hub: HubEmulator) -> None:
    result = fetch(hub, "--sort", "likes", "--limit", "3", "--expand", "likes,downloads")
    assert result.exit_code == 0
    assert [v for k, v in sent(hub) if k == "expand"] == ["likes", "downloads"]
    hub.requests_log.clear()
    for args, said in (
        (["--type", "space", "--min-downloads", "10"], "--min-downloads bounds downloads"),
        (["--expand", "usedStorage"], "--expand usedStorage is refused by listings"),
        (["--expand", "citation"], "--expand citation is a field of datasets, not of models"),
    ):
        refused = fetch(hub, *args)
        assert refused.exit_code == 2 and said in refused.stderr, refused.stderr
    assert hub.requests_log == []
    unknown = fetch(hub, "--expand", "brandNewField", "--limit", "2")
    assert unknown.exit_code in (0, 1)  # the emulator, like the Hub, may refuse it
    assert "--expand brandNewField is a field hfharvest does not know" in unknown.stderr
    assert ("expand", "brandNewField") in sent(hub)


def test_a_dry_run_sends_nothing_and_makes_nothing(hub: HubEmulator, tmp_path: Path) -> None:
    out = tmp_path / "new" / "m.jsonl"
    result = runner.invoke(
        app,
        [
            "fetch",
            "--endpoint",
            hub.url,
            "--dry-run",
            "--limit",
            "2500",
            "-o",
            str(out),
            "--state",
            str(tmp_path / "s" / ".state"),
            "--token",
            "hf_secret_dry",
        ],
    )
    assert result.exit_code == 0 and hub.requests_log == []
    assert list(tmp_path.iterdir()) == []
    planned = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(p["sort"], p["pages"]) for p in planned] == [("likes", 3), ("downloads", 3)]
    assert all(p["url"].startswith(f"{hub.url}/api/models?") for p in planned)
    assert "hf_secret_dry" not in result.stdout + result.stderr
    whole = fetch(hub, "--dry-run", "--sort", "likes")
    assert json.loads(whole.stdout)["pages"] == 2000 and json.loads(whole.stdout)["estimate"]


@pytest.mark.parametrize(
    ("options", "words"),
    [
        ({"limit": "10"}, "`limit` must be an int, got str"),
        ({"limit": True}, "`limit` must be an int, got bool"),
        ({"limit": 5.5}, "`limit` must be an int, got float"),
        ({"token": 123}, "`token` must be a string, True or False, got int"),
        ({"sort": 3}, "`sort` must be a string or a list of strings, got int"),
        ({"timeout": [3]}, "`timeout` must be a number or a duration such as '90s', got list"),
        ({"max_page_mb": "3"}, "`max_page_mb` must be a number, got str"),
    ],
)
def test_python_types_are_checked_by_name_before_any_request(
    hub: HubEmulator, options: dict[str, Any], words: str
) -> None:
    with pytest.raises(TypeError, match=words) as error:
        hfharvest.harvest(endpoint=hub.url, **options)
    assert isinstance(error.value, hfharvest.UsageError) and error.value.exit_code == 2
    assert hub.requests_log == []


def test_since_takes_a_date_a_datetime_or_a_string(hub: HubEmulator) -> None:
    for since in (dt.date(2026, 10, 29), dt.datetime(2026, 10, 29, tzinfo=dt.UTC), "2026-10-29"):
        result = hfharvest.harvest(endpoint=hub.url, token=False, since=since)
        assert result.stats[0].stopped_by == "since 2026-10-29T00:00:00.000Z"
    with pytest.raises(ValueError, match="`limit` must be at least 1"):
        hfharvest.harvest(endpoint=hub.url, limit=0)


def test_help_documents_every_parameter_with_the_types_python_takes() -> None:
    typed = get_type_hints(hfharvest.PythonOptions)
    for function in (hfharvest.harvest, hfharvest.stream):
        text = inspect.getdoc(function) or ""
        for name in typed:
            assert f"{name}: " in text, name
        assert "Unpack[PythonOptions]" in str(inspect.signature(function).parameters["kwargs"])
    assert "date" in str(typed["since"]) and "Sequence" in str(typed["sort"])


def test_the_package_is_published_properly() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["license"] == "Apache-2.0" and project["license-files"] == ["LICENSE"]
    assert "Apache License" in (ROOT / "LICENSE").read_text()
    assert project["classifiers"] and project["keywords"]
    assert not [d for d in project["dependencies"] if "<" in d.split(";")[0]]
    assert "entry-points" not in project  # the pytest plugin is opt-in
    manifest = (ROOT / "MANIFEST.in").read_text()
    for part in ("docs", "CHANGELOG.md", "tests", "LICENSE"):
        assert part in manifest


@pytest.mark.slow
def test_an_unrelated_projects_pytest_gets_no_hub_fixture(tmp_path: Path) -> None:
    (tmp_path / "test_other.py").write_text(
        "def test_fixture(request):\n    request.getfixturevalue('hub')\n"
    )
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 1 and "fixture 'hub' not found" in done.stdout


def test_small_doors(hub: HubEmulator, capsys: pytest.CaptureFixture[str]) -> None:
    from hfharvest.cli import main

    with pytest.raises(SystemExit) as bare:
        main([])
    assert bare.value.code == 0 and "Usage" in capsys.readouterr().out
    assert fetch(hub, "--type", "datasets", "--limit", "2", "-q").exit_code == 0
    import io

    from hfharvest.errors import HubResponseError
    from hfharvest.report import Report

    stream = io.StringIO()
    error = HubResponseError(400, f"{hub.url}/api/models", "bad \x1b[31mred\x1b[0m\rline\nnext")
    Report(stream).failure(str(error))
    shown = stream.getvalue()
    assert "\x1b" not in shown and "\r" not in shown and shown.count("\n") == 1
    assert "bad \\x1b[31mred" in shown
    from hfharvest.cli import _completing

    complete = _completing(("likes", "likes30d", "downloads"))
    assert complete is not None and complete("lik") == ["likes", "likes30d"]


# Each listing filter as huggingface_hub 2.4's list_* takes it, and as hfharvest does.
HUB_FILTER_CASES = [
    ("model", {"filter": "gguf"}),
    ("model", {"pipeline_tag": "text-generation"}),
    ("model", {"inference_provider": "hf-inference"}),
    ("model", {"search": "llama"}),
    ("dataset", {"language": "fr"}),
    ("dataset", {"task_categories": "text-generation"}),
    ("model", {"gated": True}),
    ("model", {"gated": False}),
    ("model", {"apps": "ollama"}),
    ("model", {"inference": "warm"}),
    ("model", {"num_parameters": "min:6B,max:9B"}),
    ("dataset", {"gated": True}),
    ("space", {"linked": True}),
]


@pytest.mark.parametrize(("repo_type", "given"), HUB_FILTER_CASES)
def test_huggingface_hub_and_hfharvest_get_the_same_set_from_the_emulator(
    hub: HubEmulator, repo_type: Literal["model", "dataset", "space"], given: dict[str, Any]
) -> None:
    from huggingface_hub import HfApi

    api = HfApi(endpoint=hub.url, token=False)
    listing: dict[str, Callable[..., Iterable[Any]]] = {
        "model": api.list_models,
        "dataset": api.list_datasets,
        "space": api.list_spaces,
    }
    theirs = {repo.id for repo in listing[repo_type](sort="likes", **given)}
    ours = hfharvest.harvest(
        sort="likes", repo_type=repo_type, endpoint=hub.url, token=False, **given
    )
    assert theirs and theirs == {record["id"] for record in ours.records}
    if given == {"gated": True}:
        assert all(record["gated"] != "no" for record in ours.records)


def test_a_dry_run_shows_the_wire_form_and_each_listings_own_sorts(hub: HubEmulator) -> None:
    gated = fetch(hub, "--dry-run", "--gated", "--sort", "likes")
    assert "gated=true" in json.loads(gated.stdout)["url"]
    spaces = [
        json.loads(line) for line in fetch(hub, "--dry-run", "-t", "space").stdout.splitlines()
    ]
    assert [plan["sort"] for plan in spaces] == ["likes", "trendingScore"]
    datasets = [
        json.loads(line) for line in fetch(hub, "--dry-run", "-t", "dataset").stdout.splitlines()
    ]
    assert [plan["sort"] for plan in datasets] == ["likes", "downloads"]
    assert hub.requests_log == []


def test_every_listing_parameter_of_huggingface_hub_has_a_counterpart() -> None:
    from huggingface_hub import HfApi

    from hfharvest.hub import counterpart
    from hfharvest.options import Options

    ours = {field.name for field in dataclasses.fields(Options)}
    usage = (ROOT / "docs" / "usage.md").read_text()
    for function in (HfApi.list_models, HfApi.list_datasets, HfApi.list_spaces):
        for name in list(inspect.signature(function).parameters)[1:]:
            assert counterpart(name) in ours, f"{function.__name__}({name}=...): no counterpart"
            assert f"| `{name}` |" in usage, f"docs/usage.md does not show {name}"


def test_the_new_parameters_give_huggingface_hubs_sets(hub: HubEmulator) -> None:
    from huggingface_hub import HfApi

    api = HfApi(endpoint=hub.url, token=False)
    theirs = {m.id for m in api.list_models(cardData=True, emissions_thresholds=(0, 100))}
    ours = hfharvest.harvest(
        sort="likes", endpoint=hub.url, token=False, emissions_thresholds="0,100"
    )
    assert theirs and theirs == {record["id"] for record in ours.records}
    assert "cardData=true" in hub.requests_log[-1].query
    named = {d.id for d in api.list_datasets(dataset_name="lab", search="ai")}
    asked = hfharvest.harvest(
        sort="likes",
        repo_type="dataset",
        endpoint=hub.url,
        token=False,
        dataset_name="lab",
        search="ai",
    )
    assert named == {record["id"] for record in asked.records}
    assert "search=lab&search=ai" in hub.requests_log[-1].query
    with pytest.raises(hfharvest.UsageError, match="`card_data` cannot be combined with `expand`"):
        hfharvest.harvest(endpoint=hub.url, card_data=True, expand="likes")
