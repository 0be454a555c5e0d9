"""Every wait, page and loop has a bound; endings tell the truth; state files are opened safely;
the token never reaches the data (#24). Over real sockets, against the emulator's faults."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from hfharvest import merge
from hfharvest.cli import app
from hfharvest.locks import held
from hfharvest.merge import Spool, spool_line
from hfharvest.options import seconds_of
from hfharvest.records import Final
from hfharvest.signals import listen
from hfharvest.sinks import files
from hfharvest.testing import HubEmulator, make_catalog

runner = CliRunner()
HFHARVEST = str(Path(sys.executable).with_name("hfharvest"))
TOKEN = "hf_limitsCanary0123456789"


def fetch(hub: HubEmulator, *args: str, token: bool = False) -> Any:
    auth = ["--token", TOKEN, "--allow-insecure-token"] if token else ["--no-token"]
    return runner.invoke(app, ["fetch", "--endpoint", hub.url, *auth, *args])


def small(**faults: Any) -> HubEmulator:
    return HubEmulator(make_catalog(models=2500, hf_inference=10), **faults)


# -- every wait bounded -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reset", "options", "said"),
    [
        (36000, [], "more than --max-wait 301 s, one rate-limit window's reset"),
        (36000, ["--max-wait", "10"], "more than --max-wait 10 s"),
        (99999999999999999, [], "asked to wait 100000000000"),
    ],
)
def test_a_200_that_says_wait_hours_fails_the_sort_at_once(
    reset: int, options: list[str], said: str, tmp_path: Path
) -> None:
    with small(faults=[f"ratelimit200:{reset}@1"]) as hub:
        started = time.monotonic()
        result = fetch(hub, "--sort", "likes", "--stats-json", str(tmp_path / "s.json"), *options)
    assert time.monotonic() - started < 5
    assert result.exit_code == 1 and said in result.stderr, result.stderr
    assert "bug" not in result.stderr
    stats = json.loads((tmp_path / "s.json").read_text())
    assert said.replace("--max-wait", "`max_wait`") in stats["sorts"][0]["error"] or said in (
        stats["error"] or ""
    )


def test_a_retry_after_of_400_digits_is_a_named_cause() -> None:
    with small() as hub:
        hub.add_fault("retry-after:" + "9" * 30 + "@1")
        result = fetch(hub, "--sort", "likes")
    assert result.exit_code == 1 and "asked to wait 100000000000" in result.stderr
    assert "bug" not in result.stderr


# -- deadlines that hold -----------------------------------------------------------------------


def test_headers_that_trickle_are_cut_off_by_the_deadline() -> None:
    with small(faults=["trickle-headers:0.2"]) as hub:
        started = time.monotonic()
        result = fetch(
            hub, "--sort", "likes", "--timeout", "1", "--deadline", "2", "--retries", "0"
        )
        took = time.monotonic() - started
    assert result.exit_code == 1 and "did not finish within --deadline 2 s" in result.stderr
    assert took < 4, took


def test_a_page_has_a_bound_across_its_retries(tmp_path: Path) -> None:
    with small(faults=["trickle:0.05"]) as hub:
        started = time.monotonic()
        result = fetch(
            hub,
            "--sort",
            "likes",
            "--deadline",
            "0.5",
            "--retries",
            "50",
            "--page-deadline",
            "2",
            "--stats-json",
            str(tmp_path / "s.json"),
        )
        took = time.monotonic() - started
    assert result.exit_code == 1, result.stderr
    assert "no page after" in result.stderr and "--page-deadline 2 s" in result.stderr
    assert took < 4, took
    stats = json.loads((tmp_path / "s.json").read_text())
    assert stats["exit_code"] == 1 and "`page_deadline` 2 s" in stats["sorts"][0]["error"]


# -- progress or stop --------------------------------------------------------------------------


@pytest.mark.parametrize("fault", ["nonce-next", "empty-next"])
def test_pages_that_bring_nothing_new_end_the_walk(fault: str, tmp_path: Path) -> None:
    with small(faults=[f"{fault}@/sort=likes/"]) as hub:
        alone = fetch(hub, "--sort", "likes")
        assert alone.exit_code == 1 and "3 pages in a row brought no id new" in alone.stderr
        assert len(hub.requests_log) <= 5  # the first page's ids, 3 with none, 1 on its way
        partial = fetch(
            hub,
            "--sort",
            "likes",
            "--sort",
            "downloads",
            "--allow-partial",
            "-o",
            str(tmp_path / "m.jsonl"),
        )
    assert partial.exit_code == 3, partial.stderr
    manifest = json.loads((tmp_path / "m.jsonl.manifest").read_text())
    assert manifest["status"] == "partial"
    assert "no id new to the walk" in manifest["sorts"][0]["error"]


def test_max_pages_ends_a_walk_like_limit(tmp_path: Path) -> None:
    out, stats = tmp_path / "m.jsonl", tmp_path / "s.json"
    with small() as hub:
        result = fetch(
            hub,
            "--sort",
            "likes",
            "--max-pages",
            "2",
            "--page-size",
            "100",
            "-o",
            str(out),
            "--stats-json",
            str(stats),
        )
        assert len(hub.requests_log) == 2
    assert result.exit_code == 0, result.stderr
    assert "likes: stopped at --max-pages 2 (the Hub had more)" in result.stderr
    assert len(out.read_text().splitlines()) == 200
    manifest = json.loads((tmp_path / "m.jsonl.manifest").read_text())
    assert manifest["sorts"][0]["stopped_by"] == "max_pages 2"
    assert manifest["request"]["max_pages"] == 2
    assert json.loads(stats.read_text())["sorts"][0]["stopped_by"] == "max_pages 2"


def test_max_time_fails_the_run_and_keeps_what_had_ended(tmp_path: Path) -> None:
    out, stats = tmp_path / "m.jsonl", tmp_path / "s.json"
    with small(faults=["slow:8@/sort=downloads/"]) as hub:
        started = time.monotonic()
        failed = fetch(hub, "--max-time", "1s", "-o", str(out))
        assert time.monotonic() - started < 4
        assert failed.exit_code == 1, failed.stderr
        assert "had not ended when the run reached --max-time 1 s" in failed.stderr
        assert not out.exists()
        partial = fetch(
            hub, "--max-time", "1", "--allow-partial", "-o", str(out), "--stats-json", str(stats)
        )
    assert partial.exit_code == 3, partial.stderr
    assert len(out.read_text().splitlines()) == 2500
    document = json.loads(stats.read_text())
    assert document["status"] == "partial" and "`max_time` 1 s" in document["sorts"][1]["error"]
    manifest = json.loads((tmp_path / "m.jsonl.manifest").read_text())
    assert manifest["request"]["max_time"] == 1


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90), ("30m", 1800), ("2h", 7200), ("1d", 86400), ("15", 15), (2.5, 2.5)],
)
def test_durations(text: str | float, seconds: float) -> None:
    assert seconds_of(text) == seconds


def test_a_bad_duration_is_refused_before_any_request() -> None:
    with small() as hub:
        result = fetch(hub, "--max-time", "2 weeks")
        assert result.exit_code == 2 and "--max-time" in result.stderr
        assert hub.requests_log == []


# -- memory bounded per page -------------------------------------------------------------------


# The command, run so that it reports its own peak: VmHWM, the high-water mark of its memory since
# it began (ru_maxrss would count the memory of pytest, which forked it).
PEAK_REPORTED = """
import atexit, sys
from pathlib import Path
where = Path(sys.argv.pop(1))
def report():
    status = Path("/proc/self/status").read_text()
    peak = next(line for line in status.splitlines() if line.startswith("VmHWM"))
    where.write_text(peak.split()[1])
atexit.register(report)
sys.argv[0] = "hfharvest"
from hfharvest.entry import main
main()
"""


def peak_of(arguments: list[str], tmp_path: Path) -> tuple[int, int, str]:
    """(exit code, peak resident memory in MB, stderr) of `hfharvest ARGUMENTS`."""
    report = tmp_path / "peak"
    command = [sys.executable, "-c", PEAK_REPORTED, str(report), *arguments]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    return result.returncode, int(report.read_text()) // 1024, result.stderr


@pytest.mark.slow
@pytest.mark.parametrize(("cap", "inflated"), [(256, 250), (64, 63)])
def test_a_gzip_page_of_empty_objects_stays_below_500_mb(
    cap: int, inflated: int, tmp_path: Path
) -> None:
    with small(faults=[f"gzip-empties:{inflated}"]) as hub:
        code, peak, stderr = peak_of(
            [
                "fetch",
                "--endpoint",
                hub.url,
                "--sort",
                "likes",
                "--max-page-mb",
                str(cap),
                "--no-token",
            ],
            tmp_path,
        )
    assert code == 1 and "more than twice the page size asked" in stderr, stderr
    assert peak < 500, f"{peak} MB"
    print(f"a page of {inflated} MB of {{}} under --max-page-mb {cap}: {peak} MB peak")


def test_a_page_of_more_entries_than_asked_is_refused() -> None:
    with small(faults=["junk:4@1"]) as hub:  # 1,000 entries and 4 more: within twice
        assert fetch(hub, "--sort", "likes", "--limit", "1000").exit_code == 0
        result = fetch(hub, "--sort", "likes", "--page-size", "100", "--max-pages", "1")
        assert result.exit_code == 0  # the emulator answers what was asked
    with small(faults=["gzip-empties:1"]) as hub:
        result = fetch(hub, "--sort", "likes", "--page-size", "100")
    assert result.exit_code == 1 and "more than twice the page size asked (100)" in result.stderr


# -- truthful endings --------------------------------------------------------------------------


def test_a_signal_once_the_data_is_in_place_says_it_was_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SIGTERM arrives while the folder is synced after the rename (a slow fsync): the run ends
    143 and says the new file was written, and that its manifest was not."""
    out, stats = tmp_path / "m.jsonl", tmp_path / "s.json"
    out.write_text("yesterday\n")
    (tmp_path / "m.jsonl.manifest").write_text("{}\n")
    slow = files._fsync_folder

    def fsync_then_signal(folder: Path) -> None:
        if folder == tmp_path and out.read_text() != "yesterday\n":
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.5)  # the signal lands here, in the main thread
        slow(folder)

    monkeypatch.setattr(files, "_fsync_folder", fsync_then_signal)
    listen()
    with small() as hub:
        started = time.monotonic()
        result = fetch(hub, "--sort", "likes", "-o", str(out), "--stats-json", str(stats))
    assert time.monotonic() - started < 5
    assert result.exit_code == 143, result.stderr
    assert f"stopped by SIGTERM once {out} was written (2,500 records)" in result.stderr
    assert f"not written: {out}.manifest" in result.stderr
    assert "no file was written" not in result.stderr
    assert len(out.read_text().splitlines()) == 2500
    document = json.loads(stats.read_text())
    assert document["exit_code"] == 143 and document["status"] == "interrupted"
    assert document["records_written"] == 2500


# -- state and spool opened safely -------------------------------------------------------------


def test_a_state_held_by_a_live_run_is_refused_at_once(tmp_path: Path) -> None:
    state = tmp_path / ".state"
    with small() as hub, held(state):
        result = fetch(hub, "--state", str(state), "-o", str(tmp_path / "m.jsonl"))
        assert hub.requests_log == []
    assert result.exit_code == 2 and "is in use: a live run holds it" in result.stderr


def test_two_runs_on_one_state_at_once(tmp_path: Path) -> None:
    state, out = tmp_path / ".state", tmp_path / "m.jsonl"
    with small(latency=0.3) as hub:
        command = [
            HFHARVEST,
            "fetch",
            "--endpoint",
            hub.url,
            "--no-token",
            "--page-size",
            "100",
            "--state",
            str(state),
            "-o",
            str(out),
            "-q",
        ]
        first = subprocess.Popen(command, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 10
        while not state.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        second = subprocess.run(command, capture_output=True, text=True, check=False)
        first.send_signal(signal.SIGTERM)
        first.wait(timeout=10)
    assert second.returncode == 2 and "is in use" in second.stderr, second.stderr


@pytest.mark.parametrize("linked", ["state", "spool"])
def test_a_linked_state_or_spool_is_never_followed(tmp_path: Path, linked: str) -> None:
    state, out = tmp_path / ".state", tmp_path / "m.jsonl"
    with small(faults=["status:404@3"]) as hub:
        assert (
            fetch(hub, "--page-size", "1000", "--state", str(state), "-o", str(out)).exit_code == 1
        )
        victim = tmp_path / "precious"
        path = state if linked == "state" else Path(f"{state}.spool")
        victim.write_bytes(path.read_bytes())
        before = victim.read_bytes()
        path.unlink()
        path.symlink_to(victim)
        hub.requests_log.clear()
        result = fetch(hub, "--page-size", "1000", "--state", str(state), "-o", str(out))
        assert hub.requests_log == []
    assert result.exit_code == 2 and "a symbolic link, not followed" in result.stderr
    assert victim.read_bytes() == before


def test_a_spool_is_read_before_anything_is_cut(tmp_path: Path) -> None:
    state, out = tmp_path / ".state", tmp_path / "m.jsonl"
    with small(faults=["status:404@3"]) as hub:
        fetch(hub, "--page-size", "1000", "--state", str(state), "-o", str(out))
        spool = Path(f"{state}.spool")
        garbled = b"not a spool line\n" + spool.read_bytes() + b"a page cut short"
        spool.write_bytes(garbled)
        result = fetch(hub, "--page-size", "1000", "--state", str(state), "-o", str(out))
    assert result.exit_code == 2 and "the spool of --state cannot be read" in result.stderr
    assert spool.read_bytes() == garbled  # refused: nothing in it was cut


def test_a_spool_reads_back_whole_lines_across_blocks_up_to_its_length(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(merge, "READ_BLOCK", 7)  # every line crosses blocks
    lines = b"".join(spool_line(i % 2, i + 1, f"org/m-{i}", Final({"i": i})) for i in range(5))
    with tempfile.TemporaryFile() as file:
        file.write(lines + b"1\t9\ta page cut short")
        spool = Spool(file, durable=False, length=len(lines))
        read = [
            (index, rank, repo_id, record.value()) for index, rank, repo_id, record in spool.lines()
        ]
        assert read == [(i % 2, i + 1, f"org/m-{i}", {"i": i}) for i in range(5)]
        assert [repo_id for _, _, repo_id, _ in spool.lines(1)] == ["org/m-1", "org/m-3"]


@pytest.mark.skipif(not files.CAN_DROP, reason="no posix_fadvise on this system")
@pytest.mark.parametrize("durable", [False, True])
def test_a_spool_leaves_the_page_cache_as_it_grows_and_as_it_is_read(
    monkeypatch: pytest.MonkeyPatch, durable: bool
) -> None:
    dropped: list[tuple[int, bool]] = []
    monkeypatch.setattr(files, "WRITTEN_BACK", 100)
    monkeypatch.setattr(merge, "READ_BLOCK", 64)
    monkeypatch.setattr(files, "written_back", lambda fd, synced: dropped.append((fd, synced)))
    pages = [
        b"".join(
            spool_line(0, rank, f"org/m-{rank}", Final({"r": rank})) for rank in range(p, p + 3)
        )
        for p in range(1, 30, 3)
    ]
    with tempfile.TemporaryFile() as file:
        spool = Spool(file, durable=durable)
        for page in pages:
            spool.append(page)
        # Appended: once 100 bytes or more came since the last time, synced first unless each
        # page already was.
        assert dropped == [(file.fileno(), durable)] * _every_100([len(p) for p in pages])
        dropped.clear()
        assert [rank for _, rank, _, _ in spool.lines()] == list(range(1, 31))
        # Read back 64 bytes at a time: the pages behind are on the disk already.
        size = len(b"".join(pages))
        blocks = [min(64, size - start) for start in range(0, size, 64)]
        assert dropped == [(file.fileno(), True)] * _every_100(blocks)


def _every_100(sizes: list[int]) -> int:
    """How many times 100 bytes or more pass since the last time, over pieces of `sizes`."""
    times = pending = 0
    for size in sizes:
        pending += size
        if pending >= 100:
            times, pending = times + 1, 0
    return times


def test_a_state_begun_in_the_future_starts_over(tmp_path: Path) -> None:
    state, out = tmp_path / ".state", tmp_path / "m.jsonl"
    with small(faults=["status:404@3"]) as hub:
        fetch(hub, "--page-size", "1000", "--state", str(state), "-o", str(out))
        document = json.loads(state.read_text())
        document["created"] = "2099-01-01T00:00:00+00:00"
        state.write_text(json.dumps(document))
        hub.faults.clear()
        result = fetch(hub, "--page-size", "1000", "--state", str(state), "-o", str(out))
    assert result.exit_code == 0, result.stderr
    assert "later than now; the walks start over" in result.stderr


def test_a_garbage_creation_time_is_told_as_such(tmp_path: Path) -> None:
    state = tmp_path / ".state"
    with small(faults=["status:404@3"]) as hub:
        fetch(hub, "--page-size", "1000", "--state", str(state), "-o", str(tmp_path / "m.jsonl"))
        document = json.loads(state.read_text())
        document["created"] = "yesterday-ish"
        state.write_text(json.dumps(document))
        result = fetch(hub, "--page-size", "1000", "--state", str(state))
    assert result.exit_code == 2 and "cannot be read" in result.stderr
    assert "bug" not in result.stderr


def test_a_spool_that_cannot_close_on_a_full_disk_is_quiet() -> None:
    class Full:
        def seek(self, offset: int, whence: int = 0) -> int:
            return 0

        def close(self) -> None:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    Spool(Full(), durable=False).close()  # type: ignore[arg-type]  # no second failure


# -- the token never in the data, misreports told as themselves --------------------------------


def test_an_entry_carrying_the_token_is_skipped_and_said(tmp_path: Path) -> None:
    out = tmp_path / "m.jsonl"
    with small(faults=["token-entry@1"]) as hub:
        result = fetch(hub, "--sort", "likes", "--raw", "-o", str(out), token=True)
    assert result.exit_code == 0, result.stderr
    assert "1 entry carried the token (the server echoes it): skipped" in result.stderr
    assert TOKEN not in out.read_text() and TOKEN[3:] not in out.read_text()
    manifest = json.loads((tmp_path / "m.jsonl.manifest").read_text())
    assert manifest["sorts"][0]["skipped"] == 1 and manifest["unique"] == 2499


@pytest.mark.parametrize(
    ("fault", "said"),
    [
        ("http09", "its answer has no HTTP status line"),
        ("long-header", "its answer has a header line longer than 65,536 bytes"),
    ],
)
def test_a_server_that_does_not_speak_http_is_told_as_such(fault: str, said: str) -> None:
    with small(faults=[fault]) as hub:
        result = fetch(hub, "--sort", "likes", "--retries", "3")
        assert len(hub.requests_log) == 1  # no retry: it will not learn HTTP in a second
    assert result.exit_code == 1 and said in result.stderr and "cannot reach" not in result.stderr
