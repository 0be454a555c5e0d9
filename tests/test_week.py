"""A week of cron, one trouble a day, and every recipe of docs/cron.md run as written (#17)."""

from __future__ import annotations

import _thread
import errno
import fcntl
import gzip
import hashlib
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import hfharvest.cli
from hfharvest.cli import app
from hfharvest.report import Report
from hfharvest.testing import HubEmulator, make_catalog

pytestmark = pytest.mark.slow
runner = CliRunner()
BIN = Path(sys.executable).parent
CRON = (Path(__file__).parent.parent / "docs" / "cron.md").read_text()
MONDAY = datetime(2026, 11, 30, 3, 17, tzinfo=UTC)


def recipe(snap: Path) -> list[str]:
    """The crontab's command, as docs/cron.md writes it (a smaller --min-count for the emulator)."""
    return [
        "-o",
        f"{snap}/models-{{date}}.jsonl.gz",
        "--min-count",
        "1000",
        "--state",
        f"{snap}/.models.state",
        "--stats-json",
        f"{snap}/last-run.json",
    ]


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[datetime]]:
    """The CLI's clock, set by the test: `clock[0]` is when the next run starts."""
    now = [MONDAY]

    class Frozen(datetime):
        @classmethod
        def now(cls, tz: Any = None) -> Any:
            return now[0]

    monkeypatch.setattr(hfharvest.cli, "datetime", Frozen)
    yield now


def run(hub: HubEmulator, snap: Path, *more: str) -> Any:
    return runner.invoke(app, ["fetch", "--endpoint", hub.url, *recipe(snap), *more])


def check_folder(snap: Path, days: list[str], *, state: bool = False) -> None:
    """Only complete snapshots, each with its matching manifest; a state only when expected."""
    files = sorted(p.name for p in snap.iterdir())
    snapshots = sorted(name for name in files if name.endswith(".jsonl.gz"))
    assert snapshots == [f"models-{day}.jsonl.gz" for day in days]
    assert not [name for name in files if name.endswith(".part")]
    assert (snap / ".models.state").exists() == (snap / ".models.state.spool").exists() == state
    for name in snapshots:
        data = (snap / name).read_bytes()
        document = json.loads((snap / f"{name}.manifest").read_text())
        assert document["status"] == "complete"
        assert document["output"]["sha256"] == hashlib.sha256(data).hexdigest()
        assert document["output"]["records"] == len(gzip.decompress(data).splitlines())


def records(snap: Path, day: str) -> int:
    return len(gzip.decompress((snap / f"models-{day}.jsonl.gz").read_bytes()).splitlines())


def test_a_week_of_cron_with_one_trouble_a_day(
    tmp_path: Path, clock: list[datetime], monkeypatch: pytest.MonkeyPatch
) -> None:
    snap = tmp_path / "snapshots"
    days: list[str] = []

    def day(number: int) -> str:
        clock[0] = MONDAY + timedelta(days=number)
        return clock[0].strftime("%Y-%m-%d")

    # Monday: calm.
    with HubEmulator(make_catalog(models=3000, hf_inference=100)) as hub:
        days.append(day(0))
        assert run(hub, snap).exit_code == 0
    check_folder(snap, days)
    # Tuesday: the listing comes back short, the guard fails (exit 4): no snapshot, no state.
    with HubEmulator(make_catalog(models=500, hf_inference=100)) as hub:
        day(1)
        assert run(hub, snap).exit_code == 4
    check_folder(snap, days)
    # Wednesday: interrupted mid-walk (exit 130), the state kept; the retry an hour later resumes.
    with HubEmulator(make_catalog(models=3000, hf_inference=100)) as hub:
        wednesday = day(2)
        original = Report.walking

        def interrupting(report: Report, *args: Any, **kwargs: Any) -> Any:
            walking = original(report, *args, **kwargs)
            observer = walking.__enter__()
            page_done = observer.page_done

            def stop_after_two(sort: str, returned: int, pages: int) -> None:
                page_done(sort, returned, pages)
                if pages == 2:
                    _thread.interrupt_main()

            observer.page_done = stop_after_two  # type: ignore[method-assign]
            return _Entered(walking, observer)

        with monkeypatch.context() as patch:
            patch.setattr(Report, "walking", interrupting)
            assert run(hub, snap).exit_code == 130
        check_folder(snap, days, state=True)
        clock[0] += timedelta(hours=1)
        retry = run(hub, snap)
        assert retry.exit_code == 0, retry.stderr
        assert "resuming --state" in retry.stderr
        days.append(wednesday)
    check_folder(snap, days)
    assert records(snap, wednesday) == 3000
    # Thursday: the disk fills as the snapshot is made durable (exit 1): nothing new, no state.
    with HubEmulator(make_catalog(models=3000, hf_inference=100)) as hub:
        day(3)

        def full(fd: int) -> None:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        with monkeypatch.context() as patch:
            patch.setattr(os, "fsync", full)
            assert run(hub, snap).exit_code == 1
    check_folder(snap, days)
    # Friday: the manifest's folder cannot be written: refused before any request (exit 2).
    with HubEmulator(make_catalog(models=3000, hf_inference=100)) as hub:
        day(4)
        blocker = tmp_path / "not-a-folder"
        blocker.write_text("")
        assert run(hub, snap, "--manifest", f"{blocker}/m.json").exit_code == 2
        assert hub.requests_log == []
    check_folder(snap, days)
    # Saturday: the Hub times out deep pages; the walks ask smaller and finish.
    with HubEmulator(make_catalog(models=3000, hf_inference=100), deep_timeout=(1000, 250)) as hub:
        days.append(day(5))
        assert run(hub, snap).exit_code == 0
    check_folder(snap, days)
    saturday = json.loads((snap / f"models-{days[-1]}.jsonl.gz.manifest").read_text())
    assert all(walk["resized"] for walk in saturday["sorts"])
    # Sunday: a second run while the first holds the lock: flock turns it away, nothing touched.
    with (snap / ".harvest.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        second = subprocess.run(
            ["flock", "-n", str(snap / ".harvest.lock"), str(BIN / "hfharvest"), "--version"],
            capture_output=True,
            check=False,
        )
        assert second.returncode == 1 and second.stdout == b""
    (snap / ".harvest.lock").unlink()
    check_folder(snap, days)
    # Monday again, calm: a full, fresh snapshot, not a resumed one.
    with HubEmulator(make_catalog(models=3000, hf_inference=100)) as hub:
        days.append(day(7))
        result = run(hub, snap)
        assert result.exit_code == 0 and "resum" not in result.stderr
    check_folder(snap, days)
    assert records(snap, days[-1]) == 3000


class _Entered:
    """A context manager whose `__enter__` already ran (the interrupting observer's wrapper)."""

    def __init__(self, walking: Any, observer: Any) -> None:
        self._walking, self._observer = walking, observer

    def __enter__(self) -> Any:
        return self._observer

    def __exit__(self, *exc: Any) -> Any:
        return self._walking.__exit__(*exc)


def blocks(kind: str) -> list[str]:
    return re.findall(rf"```{kind}\n(.*?)```", CRON, flags=re.DOTALL)


def environment(hub: HubEmulator) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    return {
        **env,
        "HF_ENDPOINT": hub.url,
        "PATH": f"{BIN}:{env['PATH']}",
        "HFHARVEST_BACKOFF_BASE": "0",
    }


def test_the_crontab_lines_run_as_written(tmp_path: Path) -> None:
    (first, retry) = [line.split(None, 5)[5] for line in blocks("crontab")[0].splitlines()]
    scaled = {"/srv/hub": str(tmp_path), "1500000": "1000"}
    for old, new in scaled.items():
        first, retry = first.replace(old, new), retry.replace(old, new)
    with HubEmulator(make_catalog()) as hub:
        done = subprocess.run(["sh", "-c", first], env=environment(hub), check=False)
        assert done.returncode == 0
        assert len(list((tmp_path / "snapshots").glob("models-*.jsonl.gz"))) == 1
        assert json.loads((tmp_path / "snapshots" / "last-run.json").read_text())["exit_code"] == 0
        assert not (tmp_path / "snapshots" / ".models.state").exists()
        asked = len(hub.requests_log)
        skipped = subprocess.run(["sh", "-c", retry], env=environment(hub), check=False)
        assert skipped.returncode != 0 and len(hub.requests_log) == asked  # no state: no run
    assert "error" not in (tmp_path / "harvest.log").read_text()


@pytest.mark.parametrize("script", blocks("bash"), ids=["pipefail", "since"])
def test_every_bash_recipe_runs_as_written(tmp_path: Path, script: str) -> None:
    script = script.replace("/srv/hub", str(tmp_path))
    with HubEmulator(make_catalog()) as hub:
        for _ in range(2):  # the `--since` recipe finds the first run's manifest the second time
            done = subprocess.run(
                ["bash", "-c", script], env=environment(hub), capture_output=True, check=False
            )
            assert done.returncode == 0, done.stderr
    written = [p for p in tmp_path.rglob("*.jsonl*") if not p.name.endswith(".json")]
    assert written and all(p.stat().st_size > 0 for p in written)
