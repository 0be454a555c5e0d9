"""End to end: the installed `hfharvest` command against the emulator over real sockets."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from huggingface_hub import HfApi
from killing import killed_after
from said import said

from hfharvest.testing import HubEmulator, make_catalog
from hfharvest.testing.catalog import Catalog

pytestmark = pytest.mark.slow
HFHARVEST = str(Path(sys.executable).with_name("hfharvest"))
CANARY = "hf_canary_e2e_5f1d9c"


def run(
    hub: HubEmulator, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    environment.update(HFHARVEST_BACKOFF_BASE="0", HFHARVEST_BACKOFF_MAX="0", HF_ENDPOINT=hub.url)
    environment.update(env or {})
    return subprocess.run(
        [HFHARVEST, "fetch", *args], capture_output=True, text=True, env=environment, timeout=60
    )


def ids(stdout: str) -> list[str]:
    return [json.loads(line)["id"] for line in stdout.splitlines()]


@pytest.fixture(scope="module")
def clean_ids(hub_catalog: Catalog) -> list[str]:
    with HubEmulator(hub_catalog) as hub:
        result = run(hub, "--inference-provider", "hf-inference", "-q")
    assert result.returncode == 0, result.stderr
    return ids(result.stdout)


def test_limit_1000_reproduces_the_replaced_scripts_table(hub: HubEmulator) -> None:
    result = run(
        hub,
        "--sort",
        "likes",
        "--sort",
        "downloads",
        "--inference-provider",
        "hf-inference",
        "--limit",
        "1000",
    )
    assert result.returncode == 0, result.stderr
    rows = {line.split()[0]: line.split()[1:4] for line in said(result.stderr) if line.strip()}
    assert rows["likes"] == ["1,000", "1,000", "0"]
    returned, new, duplicates = (int(n.replace(",", "")) for n in rows["downloads"])
    assert returned == 1000 and new + duplicates == 1000  # the figures: test_cli, exact
    assert len(ids(result.stdout)) == 1000 + new
    assert [r.query.count("cursor") for r in hub.requests_log] == [0, 0]  # one page per sort


def test_the_default_walk_returns_all_1377(clean_ids: list[str]) -> None:
    assert len(clean_ids) == len(set(clean_ids)) == 1377


@pytest.mark.parametrize(
    ("fault", "extra"),
    [
        ("503@2", ()),
        ("html:502@1", ()),
        ("500@/cursor=/x1", ()),
        ("retry-after:1@2", ()),
        ("retry-date:0@2", ()),
        ("ratelimit:0@1", ()),
        ("reset@1", ()),
        ("reset-body@2", ()),
        ("truncate@2", ()),
        ("html200@1", ()),
        ("empty200@2", ()),
        ("badjson200@5", ("--sort", "likes", "--page-size", "100")),  # on page 5 of the walk
        ("slow:3@1", ("--timeout", "0.5")),
        ("redirect:307@1", ()),
    ],
)
def test_transient_faults_are_recovered_with_nothing_lost(
    hub_catalog: Catalog, clean_ids: list[str], fault: str, extra: tuple[str, ...]
) -> None:
    with HubEmulator(hub_catalog, faults=[fault]) as hub:
        result = run(hub, "--inference-provider", "hf-inference", *extra)
    assert result.returncode == 0, result.stderr
    assert ids(result.stdout) == clean_ids
    if not fault.startswith("redirect"):
        assert "hfharvest: warning: sort " in result.stderr  # each retry is logged
        assert any(f.fault for f in hub.requests_log)


@pytest.mark.parametrize(
    ("fault", "extra", "message"),
    [
        ("400@3", (), "HTTP 400"),
        ("404@1", (), "HTTP 404"),
        ("error200@2", (), "emulated error in a 200 answer"),
        ("loop@1", (), "repeats a page already fetched"),
        ("link-away@1", (), "leads to http://elsewhere.invalid:8080"),
        ("redirect-away@1", (), "302 redirect leads to http://elsewhere.invalid:8080"),
        ("retry-after:600@1", ("--max-wait", "10"), "asked to wait 600 s"),
        ("503", ("--retries", "2"), "HTTP 503"),
    ],
)
def test_permanent_faults_fail_with_exit_1_and_keep_the_earlier_file(
    hub_catalog: Catalog, tmp_path: Path, fault: str, extra: tuple[str, ...], message: str
) -> None:
    output = tmp_path / "models.jsonl.gz"
    output.write_bytes(b"yesterday")
    with HubEmulator(hub_catalog, faults=[fault]) as hub:
        result = run(
            hub,
            "--inference-provider",
            "hf-inference",
            "-o",
            str(output),
            "--page-size",
            "500",
            *extra,
            env={"HF_TOKEN": CANARY},
        )
    assert result.returncode == 1
    error = [line for line in said(result.stderr) if line.startswith("hfharvest: error:")]
    assert len(error) == 1 and message in error[0], result.stderr
    assert "Traceback" not in result.stderr
    assert output.read_bytes() == b"yesterday"
    assert [p.name for p in tmp_path.iterdir()] == ["models.jsonl.gz"]
    assert CANARY not in result.stderr + result.stdout
    assert all(r.path.startswith("/api/") for r in hub.requests_log)


def test_the_token_goes_only_to_the_endpoint_and_never_into_output(hub_catalog: Catalog) -> None:
    with HubEmulator(hub_catalog, tokens=[CANARY]) as hub:
        result = run(hub, "--debug", "--limit", "1200", "--raw", env={"HF_TOKEN": CANARY})
    assert result.returncode == 0, result.stderr
    assert all(r.token for r in hub.requests_log)
    assert CANARY not in result.stdout + result.stderr
    assert "hfharvest: debug:" in result.stderr  # --debug logs every request


def test_drift_leaves_no_duplicate_id(tmp_path: Path) -> None:
    catalog = make_catalog(3000, 0, 0, hf_inference=1377)
    with HubEmulator(catalog, drift=200) as hub:
        result = run(hub, "--page-size", "100", "--sort", "likes", "--sort", "downloads", "-q")
    assert result.returncode == 0, result.stderr
    found = ids(result.stdout)
    assert len(found) == len(set(found))
    assert len(found) > 2500  # a few may be skipped by keys that moved across the cursor


@pytest.mark.parametrize(
    ("hub_args", "our_args"),
    [
        ({"sort": "likes"}, ("--sort", "likes")),
        (
            {"sort": "downloads", "inference_provider": "hf-inference"},
            ("--sort", "downloads", "--inference-provider", "hf-inference"),
        ),
        (
            {"sort": "lastModified", "filter": ["transformers", "license:mit"]},
            ("--sort", "last_modified", "--filter", "transformers", "--filter", "license:mit"),
        ),
        ({"sort": "createdAt", "search": "llama"}, ("--sort", "createdAt", "--search", "llama")),
        (
            {"sort": "id", "author": "café-lab", "full": True},
            ("--sort", "id", "--author", "café-lab"),
        ),
        (
            {"sort": "likes30d", "pipeline_tag": "translation"},
            ("--sort", "likes30d", "--pipeline-tag", "translation"),
        ),
        ({"sort": "trendingScore", "limit": 1500}, ("--sort", "trendingScore", "--limit", "1500")),
    ],
)
def test_same_ids_in_the_same_order_as_the_official_client(
    hub: HubEmulator, hub_args: dict[str, Any], our_args: tuple[str, ...]
) -> None:
    official = [m.id for m in HfApi(endpoint=hub.url, token=False).list_models(**hub_args)]
    result = run(hub, *our_args, "-q")
    assert result.returncode == 0, result.stderr
    assert ids(result.stdout) == official
    assert len(official) > 0


def children(pid: int) -> set[int]:
    """The processes `pid` started, from /proc."""
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        found.update(int(child) for child in (task / "children").read_text().split())
    return found


@pytest.fixture
def slow_hub(hub_catalog: Catalog) -> Iterator[HubEmulator]:
    with HubEmulator(hub_catalog, latency=0.3) as hub:
        yield hub


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_mid_walk_leaves_no_partial_file(
    slow_hub: HubEmulator, tmp_path: Path, signum: int, code: int
) -> None:
    output = tmp_path / "models.jsonl"
    output.write_text("yesterday\n")
    environment = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    process = subprocess.Popen(
        [HFHARVEST, "fetch", "--endpoint", slow_hub.url, "--page-size", "100", "-o", str(output)],
        stderr=subprocess.PIPE,
        text=True,
        env=environment,
    )
    deadline = time.monotonic() + 10
    while len(slow_hub.requests_log) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not children(process.pid)  # one process: pages are shaped where they are fetched
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=10)
    assert process.returncode == code
    name = "SIGTERM" if signum == signal.SIGTERM else "SIGINT"
    assert f"stopped by {name} during likes: " in stderr  # where it stopped
    assert "retry" not in stderr  # the page in flight was cut by the stop: no retry to tell of
    assert "an earlier one is untouched" in stderr
    assert output.read_text() == "yesterday\n"
    assert [p.name for p in tmp_path.iterdir()] == ["models.jsonl"]


def test_resume_after_kill_9_ends_with_the_clean_set(
    slow_hub: HubEmulator, clean_ids: list[str], tmp_path: Path
) -> None:
    args = [
        "--inference-provider",
        "hf-inference",
        "--page-size",
        "100",
        "-q",
        "-o",
        str(tmp_path / "m.jsonl"),
        "--state",
        str(tmp_path / "m.state"),
    ]
    environment = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    environment["HF_ENDPOINT"] = slow_hub.url
    killed_after(slow_hub, 7, args, environment)
    state = json.loads((tmp_path / "m.state").read_text())
    committed = sum(s["pages"] for s in state["sorts"].values())
    assert committed >= 4
    before = len(slow_hub.requests_log)
    slow_hub.latency = 0
    result = run(slow_hub, *args)
    assert result.returncode == 0, result.stderr
    assert len(slow_hub.requests_log) - before == 28 - committed  # 14 pages a sort, none again
    assert ids(Path(tmp_path / "m.jsonl").read_text()) == clean_ids
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.jsonl", "m.jsonl.manifest"]
