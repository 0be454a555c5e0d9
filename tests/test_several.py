"""Several listings in one run: `-t model -t dataset -t space`, side by side, a file a type."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest
from killing import killed_after
from said import said
from typer.testing import CliRunner

import hfharvest
from hfharvest.cli import app
from hfharvest.errors import TooFewRecordsError, UsageError
from hfharvest.testing import HubEmulator
from hfharvest.testing.catalog import Catalog

runner = CliRunner()
HFHARVEST = str(Path(sys.executable).with_name("hfharvest"))
NO_WAIT = {"HFHARVEST_BACKOFF_BASE": "0", "HFHARVEST_BACKOFF_MAX": "0"}
THREE = ["-t", "model", "-t", "dataset", "-t", "space"]


def fetch(hub: HubEmulator, *args: str) -> Any:
    return runner.invoke(app, ["fetch", "--endpoint", hub.url, *args], env=NO_WAIT)


def ids(path: Path) -> list[str]:
    return [json.loads(line)["id"] for line in path.read_text().splitlines()]


def test_three_types_give_a_file_manifest_table_and_stats_entry_each(
    hub: HubEmulator, tmp_path: Path
) -> None:
    stats = tmp_path / "stats.json"
    template = str(tmp_path / "snap" / "{type}s-{date}.jsonl")
    result = fetch(hub, *THREE, "-o", template, "--stats-json", str(stats))
    assert result.exit_code == 0, result.stderr
    files = sorted(p.name for p in (tmp_path / "snap").iterdir())
    day = files[0].split("-", 1)[1].removesuffix(".jsonl")
    assert files == [
        f"{name}s-{day}.jsonl{suffix}"
        for name in ("dataset", "model", "space")
        for suffix in ("", ".manifest")
    ]
    counts = {"model": 3000, "dataset": 500, "space": 500}
    for repo_type, count in counts.items():
        records = (tmp_path / "snap" / f"{repo_type}s-{day}.jsonl").read_text().splitlines()
        assert len(records) == count
        assert {json.loads(line)["type"] for line in records} == {repo_type}
        manifest = json.loads(
            (tmp_path / "snap" / f"{repo_type}s-{day}.jsonl.manifest").read_text()
        )
        assert manifest["output"]["records"] == count
    for title in ("models per sort", "datasets per sort", "spaces per sort"):
        assert title in result.stderr
    # One warning for the run: its walks share one quota, so their requests count together.
    assert result.stderr.count("no filter and no --limit") == 1
    assert "this walks whole listings (on the Hub, about 2,000,000 models: " in result.stderr
    document = json.loads(stats.read_text())
    assert (document["status"], document["exit_code"]) == ("complete", 0)
    assert [(e["type"], e["unique"], e["status"]) for e in document["types"]] == [
        ("model", 3000, "complete"),
        ("dataset", 500, "complete"),
        ("space", 500, "complete"),
    ]
    # each listing's own default sorts: spaces have no downloads
    asked = {(r.path, parse_qs(r.query)["sort"][0]) for r in hub.requests_log}
    assert asked == {
        ("/api/models", "likes"),
        ("/api/models", "downloads"),
        ("/api/datasets", "likes"),
        ("/api/datasets", "downloads"),
        ("/api/spaces", "likes"),
        ("/api/spaces", "trendingScore"),
    }


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["-o", "all.jsonl"], "must name one with {type}, not 'all.jsonl'"),
        ([], "must name one with {type}, not stdout"),
        (["-o", "-"], "must name one with {type}, not stdout"),
        (
            ["-o", "{type}.jsonl", "--inference-provider", "hf-inference"],
            "--inference-provider only applies to --type model, and this run walks model, "
            "dataset, space",
        ),
        (["-o", "{type}.jsonl", "--manifest", "m.json"], "--manifest names one file"),
        (
            ["-o", "{type}.jsonl", "--min-count", "spaces=3"],
            "--min-count names space, which this run does not walk",
        ),
        (["-o", "{type}.jsonl", "-t", "bogus"], "--type must be model, dataset or space"),
    ],
)
def test_refused_before_any_request(
    hub: HubEmulator, tmp_path: Path, args: list[str], words: str
) -> None:
    os.chdir(tmp_path)
    types = THREE[:4] if "spaces=3" in args else THREE
    result = fetch(hub, *types, *args)
    assert result.exit_code == 2, result.stderr
    assert words in said(result.stderr)[0]
    assert hub.requests_log == []
    assert list(tmp_path.iterdir()) == []


def test_a_per_type_min_count_not_met_replaces_nothing(hub: HubEmulator, tmp_path: Path) -> None:
    for name in ("model", "dataset"):
        (tmp_path / f"{name}.jsonl").write_text("yesterday\n")
    result = fetch(
        hub,
        *THREE[:4],
        "-o",
        str(tmp_path / "{type}.jsonl"),
        "--min-count",
        "3000",
        "--min-count",
        "dataset=501",
    )
    assert result.exit_code == 4, result.stderr
    assert "only 500 unique datasets came back, fewer than --min-count 501" in result.stderr
    for name in ("model", "dataset"):
        assert (tmp_path / f"{name}.jsonl").read_text() == "yesterday\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dataset.jsonl", "model.jsonl"]


@pytest.fixture
def failing_datasets(hub_catalog: Catalog) -> Iterator[HubEmulator]:
    with HubEmulator(hub_catalog, faults=["500@/api/datasets/"]) as hub:
        yield hub


def test_one_type_failing_fails_the_run_and_replaces_nothing(
    failing_datasets: HubEmulator, tmp_path: Path
) -> None:
    (tmp_path / "model.jsonl").write_text("yesterday\n")
    result = fetch(failing_datasets, *THREE, "-o", str(tmp_path / "{type}.jsonl"), "--retries", "1")
    assert result.exit_code == 1, result.stderr
    error = next(line for line in said(result.stderr) if line.startswith("hfharvest: error:"))
    assert "(HTTP 500 from" in error and "/api/datasets" in error
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.jsonl"]
    assert (tmp_path / "model.jsonl").read_text() == "yesterday\n"


def test_allow_partial_writes_the_types_that_succeeded(
    failing_datasets: HubEmulator, tmp_path: Path
) -> None:
    stats = tmp_path / "stats.json"
    result = fetch(
        failing_datasets,
        *THREE,
        "-o",
        str(tmp_path / "{type}.jsonl"),
        "--retries",
        "1",
        "--allow-partial",
        "--stats-json",
        str(stats),
    )
    assert result.exit_code == 3, result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "model.jsonl",
        "model.jsonl.manifest",
        "space.jsonl",
        "space.jsonl.manifest",
        "stats.json",
    ]
    assert "datasets per sort" in result.stderr  # the failed type says so in its table
    assert "sort dataset:likes, page 1: HTTP 500" in result.stderr
    document = json.loads(stats.read_text())
    assert (document["status"], document["exit_code"]) == ("partial", 3)
    assert [(e["type"], e["status"], e["records_written"]) for e in document["types"]] == [
        ("model", "complete", 3000),
        ("dataset", "failed", 0),
        ("space", "complete", 500),
    ]


def test_fresh_for_applies_per_type(hub: HubEmulator, tmp_path: Path) -> None:
    template = str(tmp_path / "{type}.jsonl")
    assert fetch(hub, "-t", "model", "-o", template).exit_code == 0
    before = len(hub.requests_log)
    result = fetch(hub, *THREE[:4], "-o", template, "--fresh-for", "1h")
    assert result.exit_code == 0, result.stderr
    assert "model.jsonl is fresh" in result.stderr
    walked = {r.path for r in hub.requests_log[before:]}
    assert walked == {"/api/datasets"}
    assert len(ids(tmp_path / "dataset.jsonl")) == 500


def test_python_returns_a_typed_result_a_type(hub: HubEmulator) -> None:
    results = hfharvest.harvest(repo_type=["model", "space"], endpoint=hub.url, limit={"model": 5})
    assert list(results) == ["model", "space"]
    assert results["model"].unique == 10  # two sorts, 5 each, no overlap in the emulator's top
    assert {record["type"] for record in results["model"].records} == {"model"}
    assert len(results["space"].records) == 500
    one = hfharvest.harvest(repo_type="space", endpoint=hub.url, limit=3, sort="likes")
    assert isinstance(one, hfharvest.HarvestResult) and one.unique == 3


def test_python_streams_the_types_one_after_another(hub: HubEmulator) -> None:
    with hfharvest.stream(repo_type=("dataset", "space"), endpoint=hub.url, limit=2) as records:
        types = [record["type"] for record in records]
    assert records.outcomes is not None
    uniques = [outcome.unique for outcome in records.outcomes]
    assert types == ["dataset"] * uniques[0] + ["space"] * uniques[1]
    assert 2 <= uniques[1] <= 4


def test_python_refusals_name_the_parameter(hub: HubEmulator) -> None:
    with pytest.raises(UsageError) as refused:
        hfharvest.harvest(repo_type=["model", "dataset"], endpoint=hub.url, min_count={"space": 1})
    assert refused.value.parameter == "min_count"
    with pytest.raises(TooFewRecordsError):
        hfharvest.harvest(
            repo_type=["model", "dataset"], endpoint=hub.url, min_count={"dataset": 501}
        )


@pytest.mark.slow
def test_resume_after_kill_9_goes_on_with_every_type(hub_catalog: Catalog, tmp_path: Path) -> None:
    with HubEmulator(hub_catalog, latency=0.2) as hub:
        args = [
            *THREE,
            "--page-size",
            "100",
            "-q",
            "-o",
            str(tmp_path / "{type}.jsonl"),
            "--state",
            str(tmp_path / "run.state"),
        ]
        environment = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
        environment.update(NO_WAIT, HF_ENDPOINT=hub.url)
        killed_after(hub, 14, args, environment)
        state = json.loads((tmp_path / "run.state").read_text())
        assert set(state["sorts"]) == {
            "model:likes",
            "model:downloads",
            "dataset:likes",
            "dataset:downloads",
            "space:likes",
            "space:trendingScore",
        }
        committed = sum(s["pages"] for s in state["sorts"].values())
        assert committed >= 6
        before = len(hub.requests_log)
        hub.latency = 0
        done = subprocess.run(
            [HFHARVEST, "fetch", *args], env=environment, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr
        assert "resuming --state" in done.stderr
        # 30 pages a model sort, 5 a dataset or space sort: none asked again
        assert len(hub.requests_log) - before == 2 * (30 + 5 + 5) - committed
    for repo_type, count in (("model", 3000), ("dataset", 500), ("space", 500)):
        assert len(set(ids(tmp_path / f"{repo_type}.jsonl"))) == count
    assert not (tmp_path / "run.state").exists()


def test_a_mirror_serves_one_type(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="this takes one `repo_type`, not model, dataset") as no:
        hfharvest.Mirror(tmp_path / "m.jsonl", repo_type=["model", "dataset"])
    assert no.value.parameter == "repo_type"
