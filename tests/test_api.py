"""hfharvest from Python, written as a user would: the same records as the CLI, and no surprises."""

from __future__ import annotations

import logging
import re
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import orjson
import pytest
from typer.testing import CliRunner

import hfharvest
from hfharvest.cli import app
from hfharvest.testing import HubEmulator, make_catalog

DOCS = Path(__file__).parent.parent / "docs" / "python.md"


def serialized(records: Sequence[Mapping[str, Any]]) -> bytes:
    return b"".join(orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE) for record in records)


@pytest.mark.parametrize("sorts", [["likes"], ["likes", "downloads"]])
def test_the_same_records_byte_for_byte_and_the_same_counts_as_the_cli(
    hub: HubEmulator, sorts: list[str], tmp_path: Path
) -> None:
    result = hfharvest.harvest(
        sort=sorts, inference_provider="hf-inference", endpoint=hub.url, token=False
    )
    manifest = tmp_path / "run.json"
    args = [a for sort in sorts for a in ("--sort", sort)]
    cli = CliRunner().invoke(
        app,
        [
            "fetch",
            "--endpoint",
            hub.url,
            "--inference-provider",
            "hf-inference",
            "-q",
            "--manifest",
            str(manifest),
            *args,
        ],
    )
    assert cli.exit_code == 0, cli.stderr
    assert serialized(result.records) == cli.stdout_bytes
    cli_stats = orjson.loads(manifest.read_bytes())["sorts"]
    assert [s.sort for s in result.stats] == sorts
    for ours, theirs in zip(result.stats, cli_stats, strict=True):
        assert (ours.returned, ours.new, ours.duplicates, ours.skipped, ours.pages) == (
            theirs["returned"],
            theirs["new"],
            theirs["duplicates"],
            theirs["skipped"],
            theirs["pages"],
        )
    assert result.unique == len(result.records) == 1377
    assert result.failed == ()


def test_two_calls_from_two_threads_at_once(hub: HubEmulator) -> None:
    results: dict[str, hfharvest.HarvestResult[Any]] = {}
    inside = threading.Barrier(2, timeout=10)

    def call(name: str, **options: Any) -> None:
        inside.wait()  # both calls under way together
        results[name] = hfharvest.harvest(endpoint=hub.url, token=False, **options)

    threads = [
        threading.Thread(
            target=call,
            args=("served",),
            kwargs={"sort": "likes", "inference_provider": "hf-inference"},
        ),
        threading.Thread(
            target=call, args=("top",), kwargs={"sort": "downloads", "limit": 250, "page_size": 100}
        ),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results["served"].unique == 1377
    top = [r["downloads"] for r in results["top"].records]
    assert len(top) == 250 and top == sorted(top, reverse=True)


def test_nothing_is_printed_and_warnings_go_to_the_logger(
    hub: HubEmulator, capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="hfharvest"):
        result = hfharvest.harvest(sort="likes", endpoint=hub.url, token=False)
    assert len(result.records) == 3000
    assert capfd.readouterr() == ("", "")
    assert "no filter and no `limit`: this walks the whole listing" in caplog.text
    limited = hfharvest.harvest(sort="likes", limit=5, endpoint=hub.url, token=False)
    assert limited.stats[0].stopped_by == "limit 5"  # said in the counts, not as a warning


def test_warnings_are_not_printed_without_a_handler(hub: HubEmulator) -> None:
    code = (
        "import hfharvest, sys\n"
        "r = hfharvest.harvest(sort='likes', limit=5, endpoint=sys.argv[1], token=False)\n"
        "assert len(r.records) == 5\n"
    )
    done = subprocess.run([sys.executable, "-c", code, hub.url], capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert (done.stdout, done.stderr) == (b"", b"")


def test_a_bad_option_raises_with_exit_code_2_before_any_request(hub: HubEmulator) -> None:
    with pytest.raises(hfharvest.UsageError, match="must be model, dataset or space") as error:
        hfharvest.harvest(repo_type="paper", endpoint=hub.url)  # type: ignore[call-overload]
    assert error.value.exit_code == 2
    with pytest.raises(hfharvest.HarvestError) as failure:
        hfharvest.harvest(page_size=5000, endpoint=hub.url)
    assert failure.value.exit_code == 2
    assert hub.requests_log == []


def test_the_hubs_refusal_raises_with_exit_code_1(hub: HubEmulator) -> None:
    with pytest.raises(hfharvest.HubResponseError) as error:
        hfharvest.harvest(
            sort="trendingScore", inference_provider="hf-inference", endpoint=hub.url, token=False
        )
    assert (error.value.exit_code, error.value.status) == (1, 400)


def test_progress_is_told_after_every_page(hub: HubEmulator) -> None:
    seen: list[tuple[str, int, int]] = []

    def progress(sort: str, returned: int, pages: int) -> None:
        seen.append((sort, returned, pages))

    hfharvest.harvest(
        sort="likes", limit=250, page_size=100, endpoint=hub.url, token=False, progress=progress
    )
    assert seen == [("likes", 100, 1), ("likes", 200, 2), ("likes", 250, 3)]


def test_leaving_a_stream_early_stops_the_walk(hub: HubEmulator) -> None:
    with hfharvest.stream(sort="likes", page_size=100, endpoint=hub.url, token=False) as records:
        first = [record for _, record in zip(range(150), records, strict=False)]
    assert len(first) == 150
    assert len(hub.requests_log) <= 4  # 30 pages in the listing: the walk did not go on


def test_a_stream_of_several_sorts_and_its_stats(hub: HubEmulator) -> None:
    with hfharvest.stream(
        sort=["likes", "downloads"], limit=300, endpoint=hub.url, token=False
    ) as records:
        ids = [record["id"] for record in records]
    assert len(ids) == len(set(ids)) == records.unique
    assert records.stats is not None and [s.sort for s in records.stats] == ["likes", "downloads"]


@pytest.mark.slow
def test_streaming_100000_records_holds_memory_to_the_clis_bound(tmp_path: Path) -> None:
    """In a process of its own: its peak RSS is what a user's process would see.

    The peak is VmHWM, which starts again at exec (ru_maxrss would count the test process's own
    pages, shared with the child between fork and exec).
    """
    code = (
        "import pathlib, sys, hfharvest\n"
        "count = 0\n"
        "with hfharvest.stream(sort='likes', endpoint=sys.argv[1], token=False) as records:\n"
        "    for record in records:\n"
        "        count += 1\n"
        "status = pathlib.Path('/proc/self/status').read_text().splitlines()\n"
        "print(count, next(line for line in status if line.startswith('VmHWM')).split()[1])\n"
    )
    with HubEmulator(make_catalog(100_000, 0, 0, hf_inference=10)) as hub:
        done = subprocess.run(
            [sys.executable, "-c", code, hub.url], capture_output=True, text=True, timeout=300
        )
    assert done.returncode == 0, done.stderr
    count, peak_kb = (int(n) for n in done.stdout.split())
    assert count == 100_000
    assert peak_kb < 100 * 1024, f"peak RSS {peak_kb / 1024:.0f} MB"  # the CLI's bound


def test_the_documented_gateway_runs_as_written(
    hub_catalog: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    section = DOCS.read_text().split("## A gateway's mirror of the Hub", 1)[1]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    assert len(blocks) == 2
    bounded = [m for m in hub_catalog.repos["model"] if m["downloads"] > 100 and m["likes"] > 5]
    live, provider_id = next((m, _live_id(m)) for m in bounded if _live_id(m))
    monkeypatch.chdir(tmp_path)
    with HubEmulator(hub_catalog) as hub:
        namespace: dict[str, Any] = {"EMULATOR": hub.url}
        exec(compile(blocks[0], str(DOCS), "exec"), namespace)
        route = namespace["route"]
        assert route(live["id"]) == provider_id
        assert route("no/such-model") is None
        requests_made = len(hub.requests_log)
        assert requests_made > 0
        exec(compile(blocks[1], str(DOCS), "exec"), namespace)  # asyncio, then closed
        assert len(hub.requests_log) == requests_made  # within the hour: from memory
    assert (tmp_path / "cache" / "served.parquet.manifest").exists()


def _live_id(model: dict[str, Any]) -> str | None:
    """The model's id at hf-inference, if hf-inference serves it live."""
    mappings = model["inferenceProviderMapping"]
    live = [p for p in mappings if p["provider"] == "hf-inference" and p["status"] == "live"]
    return str(live[0]["providerId"]) if live else None


def test_the_readme_examples_run(
    hub: HubEmulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Against the emulator through HF_ENDPOINT, as a user would point it at a mirror."""
    readme = (DOCS.parent.parent / "README.md").read_text()
    harvested, mirrored = re.findall(r"```python\n(.*?)```", readme, flags=re.S)
    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, Any] = {}
    exec(compile(harvested, "README.md", "exec"), namespace)
    assert namespace["result"].unique == len(namespace["served"]) == 1377
    exec(compile(mirrored, "README.md", "exec"), namespace)
    assert len(namespace["served"].records()) == 1377
    namespace["served"].close()
