"""`fetch --fresh-for`: a timer that runs more often than the data needs makes no request (#26);
durations in one syntax, each bare number in its option's own unit."""

from __future__ import annotations

import json
import os
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from hfharvest.cli import app
from hfharvest.options import Options, seconds_of
from hfharvest.settings import resolve
from hfharvest.testing import HubEmulator, make_catalog

runner = CliRunner()


def fetch(hub: HubEmulator, *args: str) -> Any:
    return runner.invoke(app, ["fetch", "--endpoint", hub.url, "--sort", "likes", *args])


def requests_made(hub: HubEmulator) -> int:
    return sum(1 for r in hub.requests_log if r.path.startswith("/api/"))


@pytest.fixture(scope="module")
def catalog() -> Any:
    return make_catalog(models=1200, hf_inference=100)


def test_the_second_run_within_fresh_for_makes_no_request(catalog: Any, tmp_path: Path) -> None:
    out, stats = tmp_path / "x.jsonl", tmp_path / "stats.json"
    with HubEmulator(catalog) as hub:
        first = fetch(hub, "-o", str(out), "--fresh-for", "1h")
        assert first.exit_code == 0, first.stderr
        walked = requests_made(hub)
        assert walked == 2
        before = out.read_bytes()
        second = fetch(hub, "-o", str(out), "--fresh-for", "1h", "--stats-json", str(stats))
        assert second.exit_code == 0, second.stderr
        assert requests_made(hub) == walked  # no request
        assert out.read_bytes() == before
        assert f"{out} is fresh: the same request made it 0:00:0" in second.stderr
        assert "(--fresh-for 1:00:00); no request made" in second.stderr
        document = json.loads(stats.read_text())
        assert document["status"] == "fresh" and document["exit_code"] == 0
        assert document["fresh"]["output"] == str(out)
        assert document["fresh"]["fresh_for"] == 3600
        quiet = fetch(hub, "-o", str(out), "--fresh-for", "1h", "-q")
        assert quiet.exit_code == 0 and quiet.stderr == ""
        assert requests_made(hub) == walked


def test_other_options_an_older_file_or_a_changed_file_walk(catalog: Any, tmp_path: Path) -> None:
    out = tmp_path / "x.jsonl"
    with HubEmulator(catalog) as hub:
        assert fetch(hub, "-o", str(out), "--fresh-for", "1h").exit_code == 0
        walked = requests_made(hub)
        other = fetch(hub, "-o", str(out), "--fresh-for", "1h", "--min-likes", "3")
        assert other.exit_code == 0, other.stderr
        assert requests_made(hub) > walked  # another request: walked
        # Back to the first request: the file on disk is now the other one's, so it walks.
        assert fetch(hub, "-o", str(out), "--fresh-for", "1h").exit_code == 0
        walked = requests_made(hub)
        # The same request, its manifest made 2 hours ago: older than `fresh_for`.
        _age(Path(f"{out}.manifest"), hours=2)
        assert fetch(hub, "-o", str(out), "--fresh-for", "1h").exit_code == 0
        assert requests_made(hub) > walked
        walked = requests_made(hub)
        # A data file that is not the one its manifest describes (cut short by hand).
        out.write_bytes(out.read_bytes()[:100])
        assert fetch(hub, "-o", str(out), "--fresh-for", "1h").exit_code == 0
        assert requests_made(hub) > walked


def test_a_new_token_asks_the_same_question(catalog: Any, tmp_path: Path) -> None:
    out = tmp_path / "x.jsonl"
    with HubEmulator(catalog, tokens=["hf_new"]) as hub:
        assert fetch(hub, "-o", str(out), "--no-token").exit_code == 0
        walked = requests_made(hub)
        with pytest.MonkeyPatch.context() as environment:
            environment.setenv("HF_TOKEN", "hf_new")
            again = fetch(hub, "-o", str(out), "--fresh-for", "1h")
        assert again.exit_code == 0, again.stderr
        assert requests_made(hub) == walked


def test_a_dated_template_reads_the_newest_manifest_it_can_name(
    catalog: Any, tmp_path: Path
) -> None:
    template = str(tmp_path / "snap" / "{date}" / "models-{time}.jsonl.gz")
    with HubEmulator(catalog) as hub:
        assert fetch(hub, "-o", template, "--fresh-for", "30m").exit_code == 0
        made = sorted((tmp_path / "snap").rglob("*.manifest"))
        assert len(made) == 1
        walked = requests_made(hub)
        assert fetch(hub, "-o", template, "--fresh-for", "30m").exit_code == 0
        assert requests_made(hub) == walked
        _age(made[0], hours=1)
        assert fetch(hub, "-o", template, "--fresh-for", "30m").exit_code == 0
        assert requests_made(hub) > walked


def test_fresh_for_is_refused_with_stdout_or_no_manifest(catalog: Any, tmp_path: Path) -> None:
    with HubEmulator(catalog) as hub:
        to_stdout = fetch(hub, "-o", "-", "--fresh-for", "1h")
        assert to_stdout.exit_code == 2
        assert "--fresh-for asks whether the output file is fresh" in to_stdout.stderr
        unmanifested = fetch(
            hub, "-o", str(tmp_path / "x.jsonl"), "--no-manifest", "--fresh-for", "1h"
        )
        assert unmanifested.exit_code == 2
        assert "drop --no-manifest" in unmanifested.stderr
        assert requests_made(hub) == 0


def _At(hour: int) -> type[datetime]:
    """`datetime` whose now() is that hour of 2026-12-01: a run's start, as the CLI reads it."""

    class At(datetime):
        @classmethod
        def now(cls, tz: Any = None) -> At:
            return cls(2026, 12, 1, hour, tzinfo=tz)

    return At


def _age(manifest: Path, *, hours: float) -> None:
    """The manifest's run as if it had ended `hours` earlier."""
    document = json.loads(manifest.read_text())
    ended = datetime.fromisoformat(document["ended"]) - timedelta(hours=hours)
    document["ended"] = ended.isoformat().replace("+00:00", "Z")
    manifest.write_text(json.dumps(document))


WRITTEN: list[tuple[Any, float, float]] = [("12", 3600, 43200), (12, 3600, 43200)]
WRITTEN += [("90s", 3600, 90), ("30m", 1, 1800), ("1.5h", 1, 5400), ("1d", 3600, 86400)]
WRITTEN += [(2.5, 1, 2.5)]


@pytest.mark.parametrize(("value", "unit", "seconds"), WRITTEN)
def test_a_bare_number_keeps_its_options_unit(value: Any, unit: float, seconds: float) -> None:
    assert seconds_of(value, unit) == seconds


def test_every_duration_option_takes_the_one_syntax() -> None:
    given = Options(
        state_max_age="30m",
        timeout="1m",
        deadline="2m",
        page_deadline="1h",
        max_wait="5m",
        max_time="1d",
        token=False,
    )
    settings = resolve(given, os.environ)
    assert settings.state_max_age == timedelta(minutes=30)
    assert settings.transport.timeout == 60 and settings.transport.deadline == 120
    assert settings.transport.retry.page_deadline == 3600
    assert settings.transport.retry.max_wait == 300 and settings.max_time == 86400
    assert resolve(Options(state_max_age=12, token=False), os.environ).state_max_age == timedelta(
        hours=12
    )


def test_a_bad_duration_names_its_option(tmp_path: Path) -> None:
    result = runner.invoke(app, ["fetch", "--state-max-age", "soon", "--dry-run"])
    assert result.exit_code == 2
    assert "--state-max-age: 'soon' is no duration" in result.stderr


def test_a_manifest_under_its_old_name_is_still_read_then_retired(
    catalog: Any, tmp_path: Path
) -> None:
    out = tmp_path / "x.jsonl"
    with HubEmulator(catalog) as hub:
        assert fetch(hub, "-o", str(out)).exit_code == 0
        old = Path(f"{out}.manifest.json")  # as hfharvest 0.1 named it
        Path(f"{out}.manifest").rename(old)
        walked = requests_made(hub)
        assert fetch(hub, "-o", str(out), "--fresh-for", "1h").exit_code == 0
        assert requests_made(hub) == walked  # read under the old name: fresh
        _age(old, hours=2)
        assert fetch(hub, "-o", str(out), "--fresh-for", "1h").exit_code == 0
        assert requests_made(hub) > walked
    assert Path(f"{out}.manifest").exists() and not old.exists()


def test_three_dated_runs_load_by_a_glob_as_exactly_their_records(
    catalog: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import duckdb

    template = str(tmp_path / "models-{date}T{time}.json")
    written = 0
    with HubEmulator(catalog) as hub:
        for hour, limit in ((1, 10), (2, 20), (3, 30)):
            monkeypatch.setattr("hfharvest.cli.datetime", _At(hour))  # each run its own {time}
            result = fetch(hub, "-o", template, "--limit", str(limit))
            assert result.exit_code == 0, result.stderr
            written += limit
    files = sorted(tmp_path.glob("models*.json"))
    assert len(files) == 3
    glob = str(tmp_path / "models*.json")
    counted = duckdb.sql(f"select count(*) from read_json('{glob}')")
    assert counted is not None and counted.fetchall() == [(written,)]
