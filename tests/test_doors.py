"""Small doors a newcomer bumps into (#21): the emulator at any size, limits said once,
contradictions refused alike, no folder left by a run that wrote nothing, a clean `make bench`."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests
from said import said
from typer.testing import CliRunner

from hfharvest.cli import app
from hfharvest.testing import HubEmulator, make_catalog
from hfharvest.testing.catalog import PRESENT

runner = CliRunner()
ROOT = Path(__file__).parent.parent
HFHARVEST = str(Path(sys.executable).with_name("hfharvest"))


def fetch(hub: HubEmulator, *args: str) -> Any:
    return runner.invoke(app, ["fetch", "--endpoint", hub.url, *args])


@pytest.mark.slow
@pytest.mark.parametrize(
    "command", [[sys.executable, "-m", "hfharvest.testing"], [HFHARVEST, "emulator"]]
)
def test_the_emulator_serves_a_small_catalog_from_the_shell(command: list[str]) -> None:
    serve = [*command, "--port", "0", "--models", "500"]
    with subprocess.Popen(serve, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL) as emulator:
        try:
            assert emulator.stdout is not None
            url = emulator.stdout.readline().decode().strip()
            ids = set()
            next_url: str | None = f"{url}/api/models?sort=id&limit=1000"
            while next_url:
                answer = requests.get(next_url, timeout=10)
                ids |= {entry["id"] for entry in answer.json()}
                next_url = answer.links.get("next", {}).get("url")
            assert len(ids) == 500
        finally:
            emulator.terminate()


def test_no_date_is_later_than_the_emulators_present_at_any_size() -> None:
    present = datetime.fromtimestamp(PRESENT, UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    catalog = make_catalog(models=200_000, datasets=10, spaces=10)
    latest = max(repo["lastModified"] for repo in catalog.repos["model"])
    assert latest <= present
    assert sum(1 for repo in catalog.repos["model"] if repo.get("inferenceProviderMapping")) > 0
    small = make_catalog(models=500)  # the provider subset scales down with the catalog
    served = [
        model
        for model in small.repos["model"]
        if any(p["provider"] == "hf-inference" for p in model.get("inferenceProviderMapping") or [])
    ]
    assert 0 < len(served) <= 500


def test_drifted_downloads_stay_plausible() -> None:
    catalog = make_catalog(models=300, datasets=0, spaces=0)
    highest = max(repo["downloads"] for repo in catalog.repos["model"])
    with HubEmulator(catalog, drift=200) as hub:
        for _ in range(60):
            requests.get(f"{hub.url}/api/models?sort=likes&limit=10", timeout=10)
    assert max(repo["downloads"] for repo in catalog.repos["model"]) <= 3 * highest


def test_the_emulator_docs_python_example_runs() -> None:
    docs = (ROOT / "docs" / "emulator.md").read_text()
    (block,) = re.findall(r"```python\n(.*?)```", docs, flags=re.DOTALL)
    exec(compile(block, "docs/emulator.md", "exec"), {})  # the docs' own code


def test_a_limit_the_user_gave_is_said_once_in_the_table(hub: HubEmulator) -> None:
    result = fetch(hub, "--limit", "10", "--page-size", "10")
    assert result.exit_code == 0
    assert "warning" not in result.stderr
    assert result.stderr.count("stopped at --limit 10 (the Hub had more)") == 2  # a line a sort
    help_text = runner.invoke(app, ["fetch", "--help"], env={"COLUMNS": "200"}).stdout
    assert "per sort, so two sorts give up to 2N" in help_text


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--token", "hf_x", "--no-token"], "--token and --no-token"),
        (["--token", "hf_x", "--token-file", "t"], "--token and --token-file"),
        (["--no-token", "--token-file", "t"], "--token-file and --no-token"),
        (["--manifest", "m.json", "--no-manifest"], "--manifest and --no-manifest"),
        (["--all-fields", "--expand", "sha"], "--all-fields cannot be combined with --expand"),
        (["--full", "--expand", "sha"], "--full cannot be combined with --expand"),
    ],
)
def test_contradicting_options_are_refused_alike(
    hub: HubEmulator, tmp_path: Path, args: list[str], named: str
) -> None:
    (tmp_path / "t").write_text("hf_file")
    result = runner.invoke(
        app, ["fetch", "--endpoint", hub.url, *args, "-o", str(tmp_path / "m.jsonl")]
    )
    assert result.exit_code == 2 and hub.requests_log == []
    first = said(result.stderr)[0]
    assert first.startswith("hfharvest: error: ") and named in first


def test_a_run_that_writes_nothing_leaves_no_folder_it_made(
    hub: HubEmulator, tmp_path: Path
) -> None:
    hub.add_fault("status:500")
    result = fetch(hub, "--retries", "0", "-o", str(tmp_path / "new" / "sub" / "m.jsonl"))
    assert result.exit_code == 1
    assert list(tmp_path.iterdir()) == []
    blocker = tmp_path / "file"
    blocker.write_text("")
    refused = fetch(hub, "-o", str(tmp_path / "out" / "m.jsonl"), "--state", f"{blocker}/s")
    assert refused.exit_code == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]  # out/ made, then removed


@pytest.mark.slow
def test_a_run_interrupted_leaves_no_folder_it_made(tmp_path: Path) -> None:
    with HubEmulator(make_catalog(), latency=0.2) as hub:
        output = tmp_path / "new" / "m.jsonl"
        with subprocess.Popen(
            [HFHARVEST, "fetch", "--endpoint", hub.url, "--page-size", "100", "-o", str(output)],
            stderr=subprocess.DEVNULL,
        ) as run:
            deadline = time.monotonic() + 10
            while not output.parent.exists() and time.monotonic() < deadline:
                time.sleep(0.02)
            time.sleep(0.3)
            run.send_signal(2)
            assert run.wait(timeout=10) == 130
    assert list(tmp_path.iterdir()) == []


def test_bench_results_are_never_tracked_files() -> None:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    ignored = subprocess.run(
        ["git", "check-ignore", "-q", "bench/results/2099-01-01T000000Z.json"],
        cwd=ROOT,
        check=False,
    )
    assert ignored.returncode == 0
    bench = (ROOT / "bench" / "bench.py").read_text()
    assert ".unlink(" not in bench  # a run removes no earlier result
