"""The reliability matrix of the README: every fault and bad input, over real sockets.

Each test name here is cited by a row of the README's "Reliability" table. Faults already
covered by test_e2e.py (transient and permanent fault lists) are cited from there.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest
from said import said
from typer.testing import CliRunner

from hfharvest.cli import app
from hfharvest.errors import Terminated
from hfharvest.testing import HubEmulator, make_catalog
from hfharvest.testing.catalog import Catalog
from hfharvest.testing.listing import parse_query, run_query

pytestmark = pytest.mark.slow
HFHARVEST = str(Path(sys.executable).with_name("hfharvest"))
CANARY = "hf_canary_reliability_0e7c41"
runner = CliRunner()


def environment(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    env.update(HFHARVEST_BACKOFF_BASE="0", HFHARVEST_BACKOFF_MAX="0", **extra)
    return env


def fetch(hub: HubEmulator, *args: str, env: dict[str, str] | None = None) -> Any:
    return runner.invoke(app, ["fetch", "--endpoint", hub.url, *args], env=env)


def ids(stdout: str) -> list[str]:
    return [json.loads(line)["id"] for line in stdout.splitlines()]


@pytest.fixture(scope="module")
def clean(hub_catalog: Catalog) -> list[str]:
    with HubEmulator(hub_catalog) as hub:
        return ids(fetch(hub, "--inference-provider", "hf-inference", "-q").stdout)


def test_connection_refused_exits_1_with_the_cause() -> None:
    result = subprocess.run(
        [HFHARVEST, "fetch", "--endpoint", "http://127.0.0.1:9", "--retries", "2"],
        capture_output=True,
        text=True,
        env=environment(),
        check=False,
    )
    assert result.returncode == 1
    errors = [line for line in said(result.stderr) if line.startswith("hfharvest: error")]
    assert errors == [errors[0]] and "Connection refused: nothing listens there (3 att" in errors[0]
    assert "Traceback" not in result.stderr


def test_entries_without_id_are_skipped_and_counted(hub_catalog: Catalog, clean: list[str]) -> None:
    with HubEmulator(hub_catalog, faults=["junk:4@1"]) as hub:
        result = fetch(hub, "--inference-provider", "hf-inference", "--sort", "likes")
    assert result.exit_code == 0
    assert ids(result.stdout) == clean
    row = next(line for line in said(result.stderr) if line.startswith("likes"))
    assert row.split()[1:5] == ["1,381", "1,377", "0", "4"]  # returned, new, dups, skipped


def test_a_50_mb_page_is_handled(hub_catalog: Catalog, clean: list[str]) -> None:
    with HubEmulator(hub_catalog, faults=["huge:50@1"]) as hub:
        result = fetch(hub, "--inference-provider", "hf-inference", "--sort", "likes", "-q")
    assert result.exit_code == 0
    assert ids(result.stdout) == clean
    assert "padding" not in result.stdout  # unknown fields stay out of the record


def test_a_relative_link_is_followed(hub_catalog: Catalog, clean: list[str]) -> None:
    with HubEmulator(hub_catalog, faults=["relative@1"]) as hub:
        result = fetch(hub, "--inference-provider", "hf-inference", "--sort", "likes", "-q")
    assert ids(result.stdout) == clean


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_redirects_within_the_endpoint_are_followed(
    hub_catalog: Catalog, clean: list[str], status: int
) -> None:
    with HubEmulator(hub_catalog, faults=[f"redirect:{status}@2"]) as hub:
        result = fetch(
            hub,
            "--inference-provider",
            "hf-inference",
            "--sort",
            "likes",
            "-q",
            env={"HF_TOKEN": CANARY},
        )
    assert result.exit_code == 0
    assert ids(result.stdout) == clean
    assert all(r.token for r in hub.requests_log)


@pytest.mark.parametrize("fault", ["redirect-away@2", "link-away@1"])
def test_nothing_is_sent_to_another_origin(hub_catalog: Catalog, fault: str) -> None:
    with (
        HubEmulator(make_catalog(10, 0, 0, hf_inference=1)) as elsewhere,
        HubEmulator(
            hub_catalog, faults=[fault], away=elsewhere.url.replace("127.0.0.1", "localhost")
        ) as hub,
    ):
        result = fetch(
            hub, "--inference-provider", "hf-inference", "--sort", "likes", env={"HF_TOKEN": CANARY}
        )
    assert result.exit_code == 1
    assert f"leads to http://localhost:{elsewhere.url.rsplit(':', 1)[1]}" in result.stderr
    assert elsewhere.requests_log == []  # not the token, not a request: nothing
    assert CANARY not in result.stderr


def test_head_1_ends_quietly() -> None:
    with HubEmulator(make_catalog(3000, 0, 0, hf_inference=10)) as hub:
        result = subprocess.run(
            f"set -o pipefail; '{HFHARVEST}' fetch --endpoint {hub.url} --sort likes "
            "--page-size 100 | head -1",
            shell=True,
            capture_output=True,
            text=True,
            env=environment(),
            executable="/bin/bash",
            check=False,
        )
    assert result.returncode == 141
    assert len(result.stdout.splitlines()) == 1
    assert "Traceback" not in result.stderr and "BrokenPipe" not in result.stderr


@pytest.mark.usefixtures("disk_full")
def test_disk_full_while_writing_keeps_the_earlier_file(hub: HubEmulator, tmp_path: Path) -> None:
    path = tmp_path / "models.jsonl"
    path.write_text("yesterday\n")
    result = fetch(hub, "--limit", "10", "-o", str(path))
    assert result.exit_code == 1
    assert f"cannot write {path}: No space left on device" in result.stderr
    assert path.read_text() == "yesterday\n"
    assert [p.name for p in tmp_path.iterdir()] == ["models.jsonl"]


def test_sigterm_during_the_rename_keeps_the_earlier_file(
    hub: HubEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "models.jsonl"
    path.write_text("yesterday\n")

    def terminated(self: Path, target: Path) -> None:
        raise Terminated

    monkeypatch.setattr(Path, "replace", terminated)
    result = fetch(hub, "--limit", "10", "-o", str(path))
    assert result.exit_code == 143
    assert path.read_text() == "yesterday\n"
    assert [p.name for p in tmp_path.iterdir()] == ["models.jsonl"]


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--full", "--expand", "sha"], "--full"),
        (["--manifest", "m.json", "--no-manifest"], "--manifest"),
        (["--type", "paper"], "--type"),
        (["--endpoint", "ftp://hub.example"], "--endpoint"),
        (["--limit", "0"], "--limit"),
        (["--page-size", "1001"], "--page-size"),
        (["--max-rps", "-1"], "--max-rps"),
        (["--endpoint", "http://192.0.2.1", "--token", CANARY], "--allow-insecure-token"),
    ],
)
def test_misuse_fails_fast_naming_the_option(
    hub: HubEmulator, args: list[str], named: str, tmp_path: Path
) -> None:
    full = ["fetch", "--endpoint", hub.url, *args] if "--endpoint" not in args else ["fetch", *args]
    result = subprocess.run(
        [HFHARVEST, *full],
        capture_output=True,
        text=True,
        env=environment(),
        cwd=tmp_path,
        check=False,
    )
    assert result.returncode == 2
    first = said(result.stderr)[0]
    assert first.startswith("hfharvest: error: ") and named in result.stderr
    assert len(said(result.stderr)) <= 2
    assert hub.requests_log == []
    assert CANARY not in result.stderr


def test_a_state_of_other_parameters_fails_fast(hub: HubEmulator, tmp_path: Path) -> None:
    state = tmp_path / "s.state"
    hub.add_fault("503@/cursor=/x1")
    assert (
        fetch(
            hub,
            "--page-size",
            "500",
            "--state",
            str(state),
            "--retries",
            "0",
            "-o",
            str(tmp_path / "o.jsonl"),
        ).exit_code
        == 1
    )
    before = len(hub.requests_log)
    result = fetch(
        hub, "--page-size", "400", "--state", str(state), "-o", str(tmp_path / "o.jsonl")
    )
    assert result.exit_code == 2
    assert "differs in: page_size" in result.stderr
    assert len(hub.requests_log) == before


def test_the_token_is_in_no_artefact_of_any_run(hub_catalog: Catalog, tmp_path: Path) -> None:
    """A canary token through a failed run, a resumed one, --debug, manifest, stats, state."""
    token_file = tmp_path / "token"
    token_file.write_text(CANARY + "\n")
    stamp = token_file.stat().st_mtime_ns
    work = tmp_path / "out"
    args = [
        "--token-file",
        str(token_file),
        "--debug",
        "--raw",
        "--page-size",
        "300",
        "--state",
        str(work / "s.state"),
        "--stats-json",
        str(work / "stats.json"),
        "-o",
        str(work / "m-{date}.jsonl.gz"),
        "--retries",
        "1",
    ]
    outputs = []
    with HubEmulator(hub_catalog, tokens=[CANARY], faults=["503@/cursor=/"]) as hub:
        outputs.append(fetch(hub, *args))  # fails: the state and spool stay
        assert outputs[-1].exit_code == 1
        hub.faults.clear()
        spool_text = (work / "s.state.spool").read_bytes()
        assert CANARY.encode() not in spool_text
        outputs.append(fetch(hub, *args))  # resumes and completes
        assert outputs[-1].exit_code == 0, outputs[-1].stderr
        assert all(r.token for r in hub.requests_log)
    for result in outputs:
        assert CANARY not in result.stdout + result.stderr
    for artefact in work.rglob("*"):
        assert CANARY.encode() not in artefact.read_bytes(), artefact
    assert token_file.read_text() == CANARY + "\n"
    assert token_file.stat().st_mtime_ns == stamp  # read, never written


def soak(pages: int) -> None:
    """A walk of `pages` pages, 5 % of requests failing at random, with and without drift.

    Every retry must come from a fault the emulator drew, so no answer may be slow but a `slow`
    fault's: the catalog's sorted order is built before the emulator serves (cold, on a loaded
    machine, the first answer took longer than the timeout and drew a retry of its own), and a
    slow fault (1.5 s) is far beyond the timeout (0.75 s) that a normal answer never nears.
    """
    models = pages * 10
    args = [
        "--sort",
        "likes",
        "--page-size",
        "10",
        "--timeout",
        "0.75",
        "--retries",
        "8",
        "--stats-json",
    ]
    with HubEmulator(warm(make_catalog(models, 0, 0, hf_inference=10, seed=7))) as hub:
        clean = ids(fetch(hub, *args[:-1], "-q").stdout)
    assert len(clean) == models
    for drift in (0, 3):
        catalog = warm(make_catalog(models, 0, 0, hf_inference=10, seed=7))
        with (
            HubEmulator(catalog, faults=["mix:1.5@p0.05"], drift=drift, seed=drift) as hub,
            tempfile.TemporaryDirectory() as folder,
        ):
            result = fetch(hub, *args, f"{folder}/stats.json", "-q")
            stats = json.loads(Path(folder, "stats.json").read_text())
        assert result.exit_code == 0, result.stderr
        found = ids(result.stdout)
        faults = sum(1 for r in hub.requests_log if r.fault)
        assert faults >= pages * 0.02  # the faults really happened (5 % drawn at random)
        assert stats["sorts"][0]["retries"] == faults  # every fault seen is one retry counted
        assert len(found) == len(set(found))
        if drift:
            unmoved = set(clean) - hub.drifted
            assert unmoved <= set(found)  # nothing whose key held still was lost
        else:
            assert found == clean


def warm(catalog: Catalog) -> Catalog:
    """The catalog with its `likes` order built, as the soak's walks will ask for it."""
    run_query(catalog, parse_query("model", [("sort", "likes"), ("limit", "10"), ("full", "true")]))
    return catalog


def test_soak_short() -> None:
    soak(int(os.environ.get("SOAK_PAGES", "100")))
