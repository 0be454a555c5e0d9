"""Snapshots for cron: dated paths, manifests, stats, guards, resumable walks, warnings."""

from __future__ import annotations

import gzip
import hashlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from conftest import SettingsFactory
from hfharvest.bounds import Bounds
from hfharvest.cli import app
from hfharvest.errors import UsageError
from hfharvest.options import Options
from hfharvest.plan import whole_listing_warning
from hfharvest.settings import resolve
from hfharvest.state import StateStore
from hfharvest.testing import HubEmulator
from hfharvest.testing.catalog import Catalog

runner = CliRunner()
DAY = timedelta(days=1)
CANARY = "hf_canary_snapshot_77aa"


def fetch(hub: HubEmulator, *args: str, env: dict[str, str] | None = None) -> Any:
    return runner.invoke(app, ["fetch", "--endpoint", hub.url, *args], env=env)


def ids_in(path: Path) -> list[str]:
    data = path.read_bytes()
    if path.suffix == ".gz":
        data = gzip.decompress(data)
    return [json.loads(line)["id"] for line in data.splitlines()]


class TestDatedPaths:
    def test_date_time_and_type_are_filled_in(
        self, make_settings: SettingsFactory, tmp_path: Path
    ) -> None:
        moment = datetime(2026, 11, 26, 23, 5, 9, tzinfo=UTC)
        template = str(tmp_path / "snaps" / "{type}s-{date}T{time}.jsonl.gz")
        settings = resolve(
            Options(output=template, repo_type="dataset", token=False), {}, now=moment
        )
        assert settings.output.path == tmp_path / "snaps" / "datasets-2026-11-26T230509Z.jsonl.gz"
        assert settings.output.gzip
        assert settings.output.template == template
        assert (tmp_path / "snaps").is_dir()
        assert settings.manifest == tmp_path / "snaps" / (settings.output.path.name + ".manifest")

    def test_unknown_placeholder_is_refused(
        self, make_settings: SettingsFactory, tmp_path: Path
    ) -> None:
        with pytest.raises(UsageError, match=r"only \{date\}, \{time\} and \{type\}"):
            make_settings(output=str(tmp_path / "{hostname}.jsonl"))


class TestManifest:
    def test_beside_the_file_with_everything_a_cron_job_needs(
        self, hub: HubEmulator, tmp_path: Path
    ) -> None:
        output = tmp_path / "models-{date}.jsonl.gz"
        result = fetch(
            hub,
            "--inference-provider",
            "hf-inference",
            "--limit",
            "1200",
            "-o",
            str(output),
            env={"HF_TOKEN": CANARY},
        )
        assert result.exit_code == 0, result.stderr
        [data] = tmp_path.glob("models-*.jsonl.gz")
        manifest_path = data.with_name(data.name + ".manifest")
        text = manifest_path.read_text()
        assert CANARY not in text
        manifest = json.loads(text)
        assert manifest["version"].startswith("0.")
        assert manifest["endpoint"] == hub.url
        assert manifest["request"]["inference_providers"] == ["hf-inference"]
        assert manifest["request"]["limit"] == 1200
        assert manifest["request"]["output"] == str(output)
        assert manifest["request"]["authenticated"] is True
        assert manifest["request"]["fields"] == [  # what full stands for, and the mapping
            "likes",
            "trendingScore",
            "private",
            "downloads",
            "tags",
            "pipeline_tag",
            "library_name",
            "createdAt",
            "author",
            "sha",
            "lastModified",
            "gated",
            "disabled",
            "siblings",
            "inferenceProviderMapping",
        ]
        query = "inference_provider=hf-inference&sort=likes&limit=1000&expand=likes&"
        assert manifest["request"]["queries"]["likes"].startswith(query)
        assert "full=" not in manifest["request"]["queries"]["likes"]
        assert manifest["status"] == "complete"
        assert manifest["started"] <= manifest["ended"]
        likes = manifest["sorts"][0]
        assert (likes["sort"], likes["returned"], likes["reached_end"]) == ("likes", 1200, False)
        assert manifest["unique"] == manifest["output"]["records"] == len(ids_in(data))
        assert manifest["output"]["sha256"] == hashlib.sha256(data.read_bytes()).hexdigest()
        assert manifest["output"]["bytes"] == data.stat().st_size

    def test_on_stdout_only_when_asked_and_never_with_no_manifest(
        self, hub: HubEmulator, tmp_path: Path
    ) -> None:
        manifest = tmp_path / "run.json"
        result = fetch(hub, "--limit", "10", "--manifest", str(manifest), "-q")
        assert result.exit_code == 0
        document = json.loads(manifest.read_text())
        assert document["output"]["path"] == "-"
        assert document["output"]["sha256"] == hashlib.sha256(result.stdout_bytes).hexdigest()
        output = tmp_path / "m.jsonl"
        assert fetch(hub, "--limit", "10", "-o", str(output), "--no-manifest", "-q").exit_code == 0
        assert sorted(p.name for p in tmp_path.iterdir()) == ["m.jsonl", "run.json"]


class TestStatsJson:
    @pytest.mark.parametrize(
        ("args", "code", "status"),
        [
            ((), 0, "complete"),
            (("--min-count", "5000"), 4, "failed"),
            (("--sort", "nonsense"), 1, "failed"),  # sent as given: the Hub refuses it
            (
                ("--sort", "likes", "--sort", "trendingScore", "--inference-provider", "x"),
                1,
                "failed",
            ),
            (
                (
                    "--sort",
                    "likes",
                    "--sort",
                    "trendingScore",
                    "--inference-provider",
                    "hf-inference",
                    "--allow-partial",
                ),
                3,
                "partial",
            ),
        ],
    )
    def test_written_on_every_exit(
        self, hub: HubEmulator, tmp_path: Path, args: tuple[str, ...], code: int, status: str
    ) -> None:
        stats = tmp_path / "stats.json"
        result = fetch(hub, *args, "-o", str(tmp_path / "m.jsonl"), "--stats-json", str(stats))
        assert result.exit_code == code, result.stderr
        document = json.loads(stats.read_text())
        assert document["exit_code"] == code
        assert document["status"] == status
        assert (document["error"] is None) == (code in (0, 3))  # partial: see its sorts


class TestGuards:
    def test_min_count_exits_4_and_keeps_yesterday(self, hub: HubEmulator, tmp_path: Path) -> None:
        output = tmp_path / "models.jsonl"
        output.write_text("yesterday\n")
        result = fetch(
            hub, "--inference-provider", "hf-inference", "--min-count", "1378", "-o", str(output)
        )
        assert result.exit_code == 4
        assert "only 1,377 unique models came back, fewer than --min-count 1,378" in result.stderr
        assert output.read_text() == "yesterday\n"
        assert sorted(p.name for p in tmp_path.iterdir()) == ["models.jsonl"]

    def test_min_count_on_stdout_writes_nothing_even_with_one_sort(self, hub: HubEmulator) -> None:
        result = fetch(hub, "--sort", "likes", "--limit", "10", "--min-count", "11")
        assert result.exit_code == 4
        assert result.stdout == ""

    def test_min_count_is_checked_before_partial(self, hub: HubEmulator, tmp_path: Path) -> None:
        result = fetch(
            hub,
            "--sort",
            "likes",
            "--sort",
            "trendingScore",
            "--inference-provider",
            "hf-inference",
            "--allow-partial",
            "--min-count",
            "2000",
            "-o",
            str(tmp_path / "m.jsonl"),
        )
        assert result.exit_code == 4

    def test_a_failed_sort_is_told_as_itself_before_min_count(
        self, hub: HubEmulator, tmp_path: Path
    ) -> None:
        hub.add_fault("status:400@/sort=downloads/")
        result = fetch(
            hub,
            "--inference-provider",
            "hf-inference",
            "--min-count",
            "1000",
            "-o",
            str(tmp_path / "m.jsonl"),
        )
        assert result.exit_code == 1
        assert "HTTP 400" in result.stderr and "min-count" not in result.stderr

    def test_a_failed_sort_fails_the_run_without_allow_partial(
        self, hub: HubEmulator, tmp_path: Path
    ) -> None:
        output = tmp_path / "m.jsonl"
        result = fetch(
            hub,
            "--sort",
            "likes",
            "--sort",
            "trendingScore",
            "--inference-provider",
            "hf-inference",
            "-o",
            str(output),
        )
        assert result.exit_code == 1
        assert not output.exists()

    def test_allow_partial_writes_the_rest_and_says_so(
        self, hub: HubEmulator, tmp_path: Path
    ) -> None:
        output = tmp_path / "m.jsonl"
        result = fetch(
            hub,
            "--sort",
            "likes",
            "--sort",
            "trendingScore",
            "--inference-provider",
            "hf-inference",
            "--allow-partial",
            "-o",
            str(output),
        )
        assert result.exit_code == 3
        assert len(ids_in(output)) == 1377
        manifest = json.loads((tmp_path / "m.jsonl.manifest").read_text())
        assert manifest["status"] == "partial"
        assert "Invalid sort parameter: trendingScore" in manifest["failed"]["trendingScore"]
        assert "warning: sort trendingScore failed" in result.stderr

    def test_every_sort_failed_is_exit_1_even_with_allow_partial(
        self, hub: HubEmulator, tmp_path: Path
    ) -> None:
        result = fetch(
            hub,
            "--sort",
            "createdAt",
            "--sort",
            "trendingScore",
            "--inference-provider",
            "hf-inference",
            "--allow-partial",
            "-o",
            str(tmp_path / "m.jsonl"),
        )
        assert result.exit_code == 1
        assert list(tmp_path.iterdir()) == []


class TestResume:
    def args(self, tmp_path: Path) -> list[str]:
        return [
            "--page-size",
            "200",
            "-o",
            str(tmp_path / "out-{date}.jsonl"),
            "--state",
            str(tmp_path / "job.state"),
            "--retries",
            "0",
        ]

    def test_resume_after_a_failure_fetches_no_page_twice(
        self, hub_catalog: Catalog, tmp_path: Path
    ) -> None:
        with HubEmulator(hub_catalog) as clean_hub:
            clean = fetch(clean_hub, "--page-size", "200", "-q")
        with HubEmulator(hub_catalog, faults=["503@/cursor=/x1"]) as hub:
            first = fetch(hub, *self.args(tmp_path), env={"HF_TOKEN": CANARY})
            assert first.exit_code == 1
            assert "run the same command again to resume from --state" in first.stderr
            state_text = (tmp_path / "job.state").read_text()
            assert CANARY not in state_text
            assert CANARY.encode() not in (tmp_path / "job.state.spool").read_bytes()
            committed = json.loads(state_text)["sorts"]
            answered = [r.query for r in hub.requests_log if r.status == 200]
            done = {  # each sort's first committed pages, in the order it asked for them
                query
                for sort, progress in committed.items()
                for query in [q for q in answered if f"sort={sort}&" in q][: progress["pages"]]
            }
            assert len(done) == sum(p["pages"] for p in committed.values()) >= 2
            first_run = len(hub.requests_log)
            second = fetch(hub, *self.args(tmp_path), env={"HF_TOKEN": CANARY})
            assert second.exit_code == 0, second.stderr
            again = [r.query for r in hub.requests_log[first_run:]]
        assert not done & set(again)  # no page that was done is fetched again
        [output] = tmp_path.glob("out-*.jsonl")
        assert ids_in(output) == [json.loads(line)["id"] for line in clean.stdout.splitlines()]
        assert json.loads(Path(f"{output}.manifest").read_text())["resumed"] is True
        assert not (tmp_path / "job.state").exists()
        assert not (tmp_path / "job.state.spool").exists()

    def test_a_state_of_another_job_is_refused(self, hub: HubEmulator, tmp_path: Path) -> None:
        hub.add_fault("503@/cursor=/x1")
        assert fetch(hub, *self.args(tmp_path)).exit_code == 1
        result = fetch(hub, *self.args(tmp_path), "--limit", "500")
        assert result.exit_code == 2
        assert "belongs to another job (it differs in: limit)" in result.stderr

    def test_a_state_of_an_older_format_starts_over(self, hub: HubEmulator, tmp_path: Path) -> None:
        hub.add_fault("503@/cursor=/x1")
        assert fetch(hub, *self.args(tmp_path)).exit_code == 1
        state = tmp_path / "job.state"
        state.write_text(state.read_text().replace('"version": 5', '"version": 4'))
        result = fetch(hub, *self.args(tmp_path))
        assert result.exit_code == 0
        assert "not resumed: it was written by" in result.stderr
        assert "the walks start over" in result.stderr

    def test_a_state_that_is_no_state_is_refused(self, hub: HubEmulator, tmp_path: Path) -> None:
        state = tmp_path / "job.state"
        state.write_text('{"version": 5}')
        result = fetch(hub, *self.args(tmp_path))
        assert result.exit_code == 2
        assert "cannot be read (no bounds, created, job, sorts, spool_length)" in result.stderr
        assert "delete it (and its .spool) to start over" in result.stderr

    def test_tomorrows_dated_run_is_the_same_job(
        self, make_settings: SettingsFactory, tmp_path: Path
    ) -> None:
        template = str(tmp_path / "m-{date}.jsonl")
        days = [datetime(2026, 11, d, tzinfo=UTC) for d in (26, 27)]
        jobs = [resolve(Options(output=template, token=False), {}, now=d).job() for d in days]
        assert jobs[0] == jobs[1]


def test_whole_listing_warning_uses_the_announced_quota(make_settings: SettingsFactory) -> None:
    settings = [make_settings()]
    text = whole_listing_warning(settings, '"fixed window";"api";q=500;w=300')
    expected = "the whole listing (on the Hub, about 2,000,000 models: about 2,000 pages per sort, "
    assert expected + "4,000 requests in all)" in text
    assert "quota of 500 requests per 300 s that is 40 minutes or more" in text
    assert "quota" not in whole_listing_warning(settings, None)
    assert "quota" not in whole_listing_warning(settings, '"fixed window";"api";q=1000000;w=300')


def test_whole_listing_warning_of_several_types_counts_every_walk_under_one_quota(
    make_settings: SettingsFactory,
) -> None:
    # Each type walks two sorts by default; one quota paces all 2 x (2,000 + 1,500 + 1,500).
    each = [make_settings(repo_type=name) for name in ("model", "dataset", "space")]
    each.append(make_settings(repo_type="model", search=["llama"]))  # filtered: not counted
    text = whole_listing_warning(each, '"fixed window";"api";q=500;w=300')
    assert text.startswith("no filter and no `limit`: this walks whole listings (on the Hub, ")
    assert "about 1,500,000 datasets: about 1,500 pages per sort; " in text
    assert "10,000 requests in all); at the Hub's quota of 500 requests per 300 s" in text
    assert "that is 100 minutes or more" in text


def test_unfiltered_walk_without_limit_warns_once(hub: HubEmulator) -> None:
    result = fetch(hub, "--page-size", "1000")
    assert result.exit_code == 0
    assert result.stderr.count("no filter and no --limit: this walks the whole listing") == 1
    assert fetch(hub, "--search", "llama").stderr.count("no filter and no --limit") == 0


def test_a_state_commit_cut_short_by_kill_9_leaves_nothing_behind(tmp_path: Path) -> None:
    state = tmp_path / "job.state"
    leftover = tmp_path / ".job.state.2b7d93ae.part"  # what atomic_file had begun
    leftover.write_bytes(b'{"version": 3, "job"')
    other = tmp_path / ".other.state.2b7d93ae.part"  # another file's: not ours to remove
    other.write_bytes(b"")
    now = datetime.now(UTC)
    StateStore.open(
        state, {"endpoint": "x"}, ("likes",), Bounds(None, None, None), now=now, max_age=DAY
    ).commit()
    assert not leftover.exists() and other.exists()
