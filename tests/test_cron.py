"""Day after day: a cron job that never freezes, never misleads, and finishes deep walks (#17)."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from hfharvest import manifest
from hfharvest.cli import app
from hfharvest.sizing import PageSize, page_size_of, without_page_size
from hfharvest.testing import HubEmulator, make_catalog

runner = CliRunner()
HFHARVEST = str(Path(sys.executable).with_name("hfharvest"))


def fetch(hub: HubEmulator, *args: str) -> Any:
    return runner.invoke(app, ["fetch", "--endpoint", hub.url, *args])


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def listing_requests(hub: HubEmulator) -> int:
    return sum(1 for r in hub.requests_log if r.path.startswith("/api/"))


class TestStateNeverOutlivesItsWalks:
    def test_after_exit_4_the_next_run_walks_afresh(self, tmp_path: Path) -> None:
        out, state = tmp_path / "models.jsonl", tmp_path / ".state"
        guarded = ["-o", str(out), "--min-count", "2000", "--state", str(state)]
        with HubEmulator(make_catalog(models=1500, hf_inference=100)) as hub:
            assert fetch(hub, *guarded).exit_code == 4
        assert not state.exists() and not Path(f"{state}.spool").exists()
        assert not out.exists()
        with HubEmulator(make_catalog(models=3000, hf_inference=100)) as hub:
            result = fetch(hub, *guarded)
            assert result.exit_code == 0, result.stderr
            assert listing_requests(hub) == 6  # 3 pages a sort: walked again, not resumed
        assert len(lines(out)) == 3000

    def interrupted(self, hub: HubEmulator, tmp_path: Path) -> tuple[Path, list[str]]:
        """A run whose downloads walk failed (likes went on: a partial run): its state stays,
        for the next run to finish the failed walk."""
        state = tmp_path / ".state"
        args = [
            "-o",
            str(tmp_path / "m.jsonl"),
            "--state",
            str(state),
            "--retries",
            "0",
            "--allow-partial",
        ]
        fault = hub.add_fault("status:500@/sort=downloads/")
        assert fetch(hub, *args).exit_code == 3
        hub.faults.remove(fault)
        hub.requests_log.clear()
        assert state.exists()
        return state, args

    def test_a_retry_resumes_and_says_so_even_when_quiet(
        self, hub: HubEmulator, tmp_path: Path
    ) -> None:
        state, args = self.interrupted(hub, tmp_path)
        result = fetch(hub, *args, "-q")
        assert result.exit_code == 0, result.stderr
        assert listing_requests(hub) == 3  # only the downloads walk: likes was done
        assert f"resuming --state {state}: pages done before this run: likes 3, downloads 0" in (
            result.stderr
        )
        document = json.loads((tmp_path / "m.jsonl.manifest").read_text())
        assert (document["resumed"], document["pages_before"]) == (True, 3)
        assert not state.exists()
        state, args = self.interrupted(hub, tmp_path / "loud")
        loud = fetch(hub, *args)
        assert "resumed: 3 pages done before this run, 3 in it" in loud.stderr

    def test_a_state_too_old_starts_over_with_a_warning(
        self, hub: HubEmulator, tmp_path: Path
    ) -> None:
        state, args = self.interrupted(hub, tmp_path)
        result = fetch(hub, *args, "--state-max-age", "0.0000001", "-q")
        assert result.exit_code == 0, result.stderr
        assert listing_requests(hub) == 6  # both walks again
        assert f"--state {state} not resumed: it was begun" in result.stderr
        assert "more than --state-max-age allows; the walks start over" in result.stderr

    def test_a_state_of_another_hfharvest_starts_over(
        self, hub: HubEmulator, tmp_path: Path
    ) -> None:
        state, args = self.interrupted(hub, tmp_path)
        document = json.loads(state.read_text())
        state.write_text(json.dumps({**document, "hfharvest": "0.0.1"}))
        result = fetch(hub, *args)
        assert result.exit_code == 0, result.stderr
        assert listing_requests(hub) == 6
        assert "not resumed: it was written by 0.0.1, not hfharvest" in result.stderr

    def test_a_state_of_another_job_is_still_refused(
        self, hub: HubEmulator, tmp_path: Path
    ) -> None:
        _, args = self.interrupted(hub, tmp_path)
        result = fetch(hub, *args, "--author", "someone")
        assert (result.exit_code, listing_requests(hub)) == (2, 0)
        assert "belongs to another job (it differs in: author)" in result.stderr
        assert "once older than --state-max-age, it is set aside by itself" in result.stderr

    def test_an_old_state_of_another_job_is_set_aside_the_newest_three_kept(
        self, hub: HubEmulator, tmp_path: Path
    ) -> None:
        """The crontab's -o changed after an interrupted run: the next runs go on."""
        for day in range(1, 6):
            state, args = self.interrupted(hub, tmp_path)  # a state left, of the old -o
            document = json.loads(state.read_text())
            begun = f"2026-11-0{day}T03:17:00+00:00"
            state.write_text(json.dumps({**document, "created": begun}))
            changed = [*args[:1], str(tmp_path / f"new-{day}.jsonl"), *args[2:]]
            result = fetch(hub, *changed)
            assert result.exit_code == 0, result.stderr
            aside = Path(f"{state}.2026110{day}T031700Z")
            assert f"set aside as {aside}; the walks start over" in result.stderr
            assert aside.exists() and Path(f"{state}.spool.2026110{day}T031700Z").exists()
        kept = sorted(p.name for p in tmp_path.glob(".state.2026*"))
        assert kept == [f".state.2026110{day}T031700Z" for day in (3, 4, 5)]
        assert len(list(tmp_path.glob(".state.spool.2026*"))) == 3

    def test_a_part_file_of_a_dead_run_is_removed_by_the_next_run(
        self, hub: HubEmulator, tmp_path: Path
    ) -> None:
        out = tmp_path / "models.jsonl"
        dead = tmp_path / ".models.jsonl.15e521aa.part"  # kill -9 during the final write
        dead.write_bytes(b"x" * 1000)
        live = tmp_path / ".models.jsonl.0badc0de.part"  # another run's, writing now
        writer = subprocess.Popen(
            [sys.executable, "-c", LOCKED_WRITER, str(live)], stdout=subprocess.PIPE, text=True
        )
        try:
            assert writer.stdout is not None and writer.stdout.readline() == "locked\n"
            result = fetch(hub, "--sort", "likes", "-o", str(out))
            assert result.exit_code == 0, result.stderr
            assert not dead.exists() and live.exists()
        finally:
            writer.kill()
            writer.wait()
        assert fetch(hub, "--sort", "likes", "-o", str(out)).exit_code == 0
        assert not live.exists()  # its writer is gone now
        assert sorted(p.name for p in tmp_path.iterdir()) == [
            "models.jsonl",
            "models.jsonl.manifest",
        ]


# A process that writes a temporary file as atomic_file does (created, then locked) and lives on.
LOCKED_WRITER = """
import os, sys, time
from hfharvest.locks import hold
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
hold(fd)
print("locked", flush=True)
time.sleep(60)
"""


class TestPathsCheckedFirst:
    @pytest.mark.parametrize("option", ["--manifest", "--stats-json", "--state"])
    def test_an_unwritable_side_path_is_exit_2_before_any_request(
        self, tmp_path: Path, option: str
    ) -> None:
        blocker = tmp_path / "a-file"
        blocker.write_text("not a folder")
        with HubEmulator(make_catalog()) as hub:
            result = fetch(hub, "-o", str(tmp_path / "m.jsonl"), option, f"{blocker}/side.json")
            assert (result.exit_code, listing_requests(hub)) == (2, 0)
        assert f"hfharvest: error: {option}: {blocker} is not a folder" in result.stderr
        assert "bug" not in result.stderr

    def test_a_side_file_that_fails_after_the_data_is_exit_5(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        def full(path: Path) -> Any:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        monkeypatch.setattr(manifest, "atomic_file", full)
        out = tmp_path / "m.jsonl"
        with HubEmulator(make_catalog()) as hub:
            result = fetch(hub, "-o", str(out), "-q")
        assert result.exit_code == 5
        assert f"the data was written, {out}.manifest not: No space left on device" in (
            result.stderr
        )
        assert len(lines(out)) == 3000


def test_a_closed_stdout_ends_the_run_quietly(hub: HubEmulator) -> None:
    command = [
        HFHARVEST,
        "fetch",
        "--endpoint",
        hub.url,
        "--sort",
        "likes",
        "--inference-provider",
        "hf-inference",
    ]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as process:
        assert process.stdout is not None and process.stderr is not None
        first = process.stdout.readline()
        process.stdout.close()  # as `| head -1` does
        stderr = process.stderr.read()
        assert process.wait(timeout=30) == 141
    assert json.loads(first)["id"]
    assert stderr == b""


class TestSayWhatAUserNeedsToHear:
    def test_an_empty_result_warns_names_the_filters_and_is_recorded(
        self, hub: HubEmulator, tmp_path: Path
    ) -> None:
        out = tmp_path / "m.jsonl"
        result = fetch(hub, "--author", "nobody-here", "--filter", "gguf", "-o", str(out), "-q")
        assert result.exit_code == 0
        assert (
            "hfharvest: warning: no models came back (--author nobody-here; --filter gguf): "
            "check the names; --min-count makes an empty result a failure"
        ) in result.stderr
        document = json.loads(Path(f"{out}.manifest").read_text())
        assert document["empty"] is True and document["unique"] == 0

    def test_the_summary_says_what_was_written_and_how_long_it_took(
        self, hub: HubEmulator, tmp_path: Path
    ) -> None:
        out = tmp_path / "m.jsonl"
        result = fetch(hub, "-o", str(out))
        assert result.exit_code == 0
        size = out.stat().st_size / 1000 / 1000
        assert f"wrote {out}: 3,000 records, {size:,.1f} MB in 0:00:0" in result.stderr

    def test_a_cron_log_gets_progress_lines(self, tmp_path: Path) -> None:
        log = tmp_path / "harvest.log"
        with (
            HubEmulator(make_catalog(models=3000), latency=0.02) as hub,
            log.open("w") as stderr,
        ):
            done = subprocess.run(
                [
                    HFHARVEST,
                    "fetch",
                    "--endpoint",
                    hub.url,
                    "--page-size",
                    "100",
                    "--progress-every",
                    "0.05",
                    "-o",
                    str(tmp_path / "m.jsonl"),
                ],
                stderr=stderr,
                env={**os.environ, "HFHARVEST_BACKOFF_BASE": "0"},
                check=False,
            )
        assert done.returncode == 0
        progress = [line for line in log.read_text().splitlines() if "hfharvest: progress" in line]
        assert len(progress) >= 3
        assert "likes" in progress[-1] and "/s)" in progress[-1] and "downloads" in progress[-1]

    def test_quiet_keeps_the_progress_away(self, tmp_path: Path) -> None:
        with HubEmulator(make_catalog(), latency=0.01) as hub:
            result = fetch(
                hub,
                "-q",
                "--page-size",
                "100",
                "--progress-every",
                "0.01",
                "-o",
                str(tmp_path / "m.jsonl"),
            )
        assert result.exit_code == 0 and result.stderr == ""


class TestDeepPagesGetSmaller:
    def test_the_size_halves_on_a_deep_timeout_and_doubles_back(self) -> None:
        size = PageSize(1000)
        url = "https://hub.test/api/models?sort=likes&limit=1000&full=true&cursor=eyJx%3D"
        assert size.halve() and size.url(url).endswith(
            "?sort=likes&limit=500&full=true&cursor=eyJx%3D"
        )
        assert size.halve() and size.halve() and size.now == 125
        assert size.halve() and size.now == 100 and not size.halve()  # never below 100
        for _ in range(10):
            size.succeeded()
        assert size.now == 200
        for _ in range(40):
            size.succeeded()
        assert size.now == 1000  # back up to the size asked for, no further
        assert page_size_of(url) == 1000 and without_page_size(url) == without_page_size(
            size.url(url)
        )
        assert not PageSize(50).halve()  # a page already small is never made smaller

    def test_a_walk_through_deep_timeouts_completes(self, tmp_path: Path) -> None:
        out = tmp_path / "m.jsonl"
        catalog = make_catalog(models=10_000, datasets=0, spaces=0, hf_inference=100)
        with HubEmulator(catalog, deep_timeout=(3000, 250)) as hub:
            result = fetch(hub, "--sort", "likes", "-o", str(out))
            limits = [page_size_of(f"?{r.query}") for r in hub.requests_log]
        assert result.exit_code == 0, result.stderr
        assert len({record["id"] for record in lines(out)}) == 10_000
        document = json.loads(Path(f"{out}.manifest").read_text())
        (walk,) = document["sorts"]
        # 1000 -> 500 -> 250, then back to 500 after 10 good pages, which times out again: each
        # halving is a retry of the same cursor
        assert walk["resized"] == walk["retries"] >= 2
        assert 250 in limits and max(limit or 0 for limit in limits[limits.index(250) :]) <= 500
        assert "resized" in result.stderr  # a column of the table


def test_progress_never_lands_among_records_on_a_terminal() -> None:
    """stdout and stderr on one terminal: the records alone, then the table, no progress frame."""
    import pty

    main, child = pty.openpty()
    hub = HubEmulator(make_catalog(), latency=0.3).start()
    command = [
        HFHARVEST,
        "fetch",
        "--endpoint",
        hub.url,
        "--sort",
        "likes",
        "--limit",
        "300",
        "--page-size",
        "100",
    ]
    with subprocess.Popen(
        command, stdout=child, stderr=child, env={**os.environ, "COLUMNS": "100"}
    ) as process:
        os.close(child)
        output = b""
        while True:
            try:
                chunk = os.read(main, 65536)
            except OSError:  # the terminal closed
                break
            if not chunk:
                break
            output += chunk
        assert process.wait(timeout=30) == 0
    os.close(main)
    hub.stop()
    text = output.decode().replace("\r\n", "\n")
    lines = [line for line in text.splitlines() if line.startswith("{")]
    assert len(lines) == 300 and all(json.loads(line)["id"] for line in lines)
    assert "returned" not in text.split(lines[-1])[0]  # no progress before the last record
