"""The offline Hub emulator: faithful to hub-api.md, deterministic, and faulty on demand."""

from __future__ import annotations

import base64
import json
import random
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import unquote

import pytest
import requests

from hfharvest.hub import CREATED_AT_UNKNOWN
from hfharvest.testing import HubEmulator, make_catalog, parse_fault
from hfharvest.testing.catalog import PRESENT, Catalog, sort_key


def get(hub: HubEmulator, path: str = "/api/models", **params: Any) -> requests.Response:
    return requests.get(f"{hub.url}{path}", params=params, timeout=10)


def walk_ids(hub: HubEmulator, **params: Any) -> list[str]:
    ids: list[str] = []
    response = get(hub, **params)
    while True:
        assert response.status_code == 200, response.text
        ids.extend(entry["id"] for entry in response.json())
        next_url = response.links.get("next", {}).get("url")
        if next_url is None:
            return ids
        response = requests.get(next_url, timeout=10)


class TestCatalog:
    def test_same_arguments_same_catalog(self) -> None:
        assert (
            make_catalog(300, 30, 30, hf_inference=50).repos
            == make_catalog(300, 30, 30, hf_inference=50).repos
        )

    def test_every_field_the_schema_reads_is_there(self, hub_catalog: Catalog) -> None:
        models = hub_catalog.repos["model"]
        assert any("/" not in m["id"] for m in models)  # legacy ids with no author
        assert any(not m["id"].isascii() for m in models)
        assert {m["createdAt"] for m in models} >= CREATED_AT_UNKNOWN  # both of the family
        assert {m["gated"] for m in models} == {False, "auto", "manual"}
        tags = {t.split(":")[0] for m in models for t in m["tags"] if ":" in t}
        assert {"license", "arxiv", "dataset", "base_model"} <= tags
        assert any(t.count(":") == 2 for m in models for t in m["tags"] if t.startswith("base_"))
        assert all(m["siblings"] for m in models)
        assert {s["sdk"] for s in hub_catalog.repos["space"]} == {
            "gradio",
            "streamlit",
            "docker",
            "static",
        }
        assert len(hub_catalog.repos["dataset"]) == 500

    def test_the_facts_real_answers_show(self, hub_catalog: Catalog) -> None:
        models, spaces = hub_catalog.repos["model"], hub_catalog.repos["space"]
        statuses = {p["status"] for m in models for p in m["inferenceProviderMapping"]}
        assert statuses == {"live", "staging"}
        for key in ("pipeline_tag", "library_name", "config", "cardData", "inference"):
            assert any(m.get(key) is None for m in models), f"no model without {key}"
        assert any(m.get("config") == {} for m in models)
        assert {m.get("inference") for m in models} == {"warm", "cold", None}
        assert any(m.get("safetensors", {}).get("total", 0) > 2**32 for m in models)
        assert all("context_length" in m["gguf"] for m in models if "gguf" in m)
        assert any("gguf" in m for m in models)
        assert {s["runtime"]["stage"] for s in spaces} >= {"RUNNING", "SLEEPING", "PAUSED"}
        assert any(s.get("models") for s in spaces) and any(s.get("datasets") for s in spaces)

    def test_hf_inference_count_and_overlap_like_october_2025(self, hub_catalog: Catalog) -> None:
        served = [
            m
            for m in hub_catalog.repos["model"]
            if any(p["provider"] == "hf-inference" for p in m["inferenceProviderMapping"])
        ]
        assert len(served) == 1377
        top_likes = sorted(served, key=lambda m: (-m["likes"], m["_id"]))[:1000]
        top_downloads = sorted(served, key=lambda m: (-m["downloads"], m["_id"]))[:1000]
        union = {m["id"] for m in top_likes} | {m["id"] for m in top_downloads}
        assert 1194 <= len(union) <= 1214

    @pytest.mark.slow
    def test_200000_models_start_in_seconds(self) -> None:
        started = time.monotonic()
        catalog = make_catalog(200_000, 0, 0)
        with HubEmulator(catalog) as hub:
            assert len(get(hub, sort="likes").json()) == 1000
        assert time.monotonic() - started < 15


class TestListing:
    def test_walk_reaches_every_model_once(self, hub: HubEmulator) -> None:
        ids = walk_ids(hub, sort="likes", limit=700)
        assert len(ids) == len(set(ids)) == 3000

    def test_keyset_order_and_cursor_form(self, hub: HubEmulator, hub_catalog: Catalog) -> None:
        response = get(hub, sort="downloads", limit=5)
        entries = response.json()
        downloads = [e["downloads"] for e in entries]
        assert downloads == sorted(downloads, reverse=True)
        next_url = response.links["next"]["url"]
        assert next_url.startswith(f"{hub.url}/api/models?")
        assert "sort=downloads" in next_url and "limit=5" in next_url
        cursor = unquote(next_url.split("cursor=")[1])
        condition = json.loads(base64.b64decode(cursor))
        assert condition["$or"][0]["downloads"] == entries[-1]["downloads"]
        assert condition["$or"][0]["_id"] == {"$gt": entries[-1]["_id"]}

    @pytest.mark.parametrize(
        "sort",
        ["likes", "downloads", "trendingScore", "createdAt", "lastModified", "likes30d", "id"],
    )
    def test_every_sort_walks(self, hub: HubEmulator, sort: str) -> None:
        ids = walk_ids(hub, sort=sort, limit=1000, search="llama")
        assert len(ids) == len(set(ids)) > 0

    @pytest.mark.parametrize("sort", ["trending_score", "popularity", "created_at"])
    def test_unknown_and_snake_case_sorts_are_rejected(self, hub: HubEmulator, sort: str) -> None:
        response = get(hub, sort=sort)
        assert response.status_code == 400
        assert response.headers["X-Error-Message"] == f"Invalid sort parameter: {sort}"
        assert response.json() == {"error": f"Invalid sort parameter: {sort}"}

    @pytest.mark.parametrize("sort", ["trendingScore", "createdAt"])
    def test_sorts_refused_with_inference_provider(self, hub: HubEmulator, sort: str) -> None:
        assert get(hub, sort=sort, inference_provider="hf-inference").status_code == 400
        assert get(hub, sort=sort).status_code == 200

    def test_page_size_is_capped_at_1000(self, hub: HubEmulator) -> None:
        assert len(get(hub, limit=5000).json()) == 1000

    def test_filters(self, hub: HubEmulator) -> None:
        both = get(hub, filter=["transformers", "license:mit"], limit=1000).json()
        assert both and all({"transformers", "license:mit"} <= set(m["tags"]) for m in both)
        task = get(hub, pipeline_tag="translation").json()
        assert task and all(m["pipeline_tag"] == "translation" for m in task)
        assert all("llama" in m["id"].lower() for m in get(hub, search="LLAMA").json())
        author = get(hub, author="café-lab", full="true").json()
        assert author and all(m["author"] == "café-lab" for m in author)

    def test_providers_or_and_all(self, hub: HubEmulator) -> None:
        one = set(walk_ids(hub, inference_provider="hf-inference"))
        other = set(walk_ids(hub, inference_provider="groq"))
        either = set(walk_ids(hub, inference_provider="hf-inference,groq"))
        assert either == one | other
        assert len(one) == 1377
        assert set(walk_ids(hub, inference_provider="all")) >= either

    def test_field_sets(self, hub: HubEmulator) -> None:
        default = get(hub, limit=1).json()[0]
        assert set(default) == {
            "_id",
            "id",
            "likes",
            "trendingScore",
            "private",
            "downloads",
            "tags",
            "pipeline_tag",
            "library_name",
            "createdAt",
            "modelId",
        }
        full = get(hub, limit=1, full="true").json()[0]
        assert {"author", "sha", "lastModified", "gated", "disabled", "siblings"} <= set(full)
        expanded = get(hub, limit=1, expand=["downloadsAllTime", "sha"]).json()[0]
        assert set(expanded) == {"_id", "id", "downloadsAllTime", "sha"}
        bracket = get(hub, limit=1, **{"expand[]": "likes"}).json()[0]
        assert set(bracket) == {"_id", "id", "likes"}

    def test_expand_with_full_or_unknown_field_is_rejected(self, hub: HubEmulator) -> None:
        assert get(hub, expand="sha", full="true").status_code == 400
        response = get(hub, expand="nonsense")
        assert response.status_code == 400
        assert "nonsense" in response.headers["X-Error-Message"]

    def test_datasets_and_spaces(self, hub: HubEmulator) -> None:
        datasets = get(hub, "/api/datasets", limit=2).json()
        spaces = get(hub, "/api/spaces", limit=2, full="true").json()
        assert "pipeline_tag" not in datasets[0]
        assert spaces[0]["sdk"] in {"gradio", "streamlit", "docker", "static"}
        assert get(hub, "/api/papers").status_code == 404


class TestRateLimitsAndTokens:
    def test_headers_on_every_answer(self, hub: HubEmulator) -> None:
        for response in (get(hub), get(hub, sort="nope")):
            assert response.headers["RateLimit"].startswith('"api";r=')
            assert response.headers["RateLimit-Policy"].startswith('"fixed window";"api";q=')

    def test_quota_per_window(self, hub_catalog: Catalog) -> None:
        with HubEmulator(hub_catalog, quota=3, window=1) as hub:
            answers = [get(hub, limit=1) for _ in range(4)]
            assert [a.status_code for a in answers] == [200, 200, 200, 429]
            assert answers[2].headers["RateLimit"] == '"api";r=0;t=0'
            assert answers[3].headers["RateLimit-Policy"] == '"fixed window";"api";q=3;w=1'
            time.sleep(1.05)  # the next window opens (a real wait: this is what is tested)
            assert get(hub, limit=1).status_code == 200

    def test_tokens(self, hub_catalog: Catalog) -> None:
        with HubEmulator(hub_catalog, tokens=["hf_good"]) as hub:
            bad = requests.get(f"{hub.url}/api/models", headers={"Authorization": "Bearer x"})
            good = requests.get(
                f"{hub.url}/api/models", headers={"Authorization": "Bearer hf_good"}
            )
            anonymous = get(hub)
        assert bad.status_code == 401
        assert bad.headers["X-Error-Message"] == "Invalid credentials in Authorization header"
        assert good.status_code == anonymous.status_code == 200
        assert [entry.token for entry in hub.requests_log] == [True, True, False]


class TestFaults:
    @pytest.fixture
    def hub(self, hub_catalog: Catalog) -> Iterator[HubEmulator]:
        with HubEmulator(hub_catalog) as emulator:
            yield emulator

    @pytest.mark.parametrize(
        ("spec", "status", "check"),
        [
            ("503@1", 503, lambda r: r.json() == {"error": "emulated failure 503"}),
            ("html:502@1", 502, lambda r: r.text.startswith("<!DOCTYPE html>")),
            ("retry-after:7@1", 429, lambda r: r.headers["Retry-After"] == "7"),
            ("retry-date:5@1", 429, lambda r: r.headers["Retry-After"].endswith("GMT")),
            (
                "ratelimit:9@1",
                429,
                lambda r: (
                    "Retry-After" not in r.headers and r.headers["RateLimit"] == '"api";r=0;t=9'
                ),
            ),
            ("html200@1", 200, lambda r: r.text.startswith("<!DOCTYPE html>")),
            ("empty200@1", 200, lambda r: r.content == b""),
            ("error200@1", 200, lambda r: "error" in r.json()),
            ("junk:2@1", 200, lambda r: r.json()[1:3] == ["not an object", {"likes": 3}]),
            ("loop@1", 200, lambda r: r.links["next"]["url"] == r.url),
            ("relative@1", 200, lambda r: r.headers["Link"].startswith("</api/models?")),
            ("link-away@1", 200, lambda r: "elsewhere.invalid" in r.links["next"]["url"]),
        ],
    )
    def test_answer_faults(self, hub: HubEmulator, spec: str, status: int, check: Any) -> None:
        hub.add_fault(spec)
        response = get(hub, limit=10)
        assert response.status_code == status
        assert check(response)
        assert hub.requests_log[0].fault == parse_fault(spec).kind
        assert get(hub, limit=10).status_code == 200  # only request 1 was faulty

    @pytest.mark.parametrize("status", [301, 302, 307, 308])
    def test_redirect_within(self, hub: HubEmulator, status: int) -> None:
        hub.add_fault(f"redirect:{status}@1")
        response = get(hub, limit=3)
        assert response.status_code == 200
        assert response.history[0].status_code == status

    def test_redirect_away(self, hub: HubEmulator) -> None:
        hub.add_fault("redirect-away@1")
        response = requests.get(f"{hub.url}/api/models", allow_redirects=False, timeout=5)
        assert response.headers["Location"].startswith("http://elsewhere.invalid")

    @pytest.mark.parametrize("spec", ["reset@1", "reset-body@1", "truncate@1"])
    def test_broken_connections(self, hub: HubEmulator, spec: str) -> None:
        hub.add_fault(spec)
        with pytest.raises(requests.exceptions.RequestException):
            get(hub, limit=200)
        assert get(hub, limit=200).status_code == 200

    def test_slow_answer_and_latency(self, hub: HubEmulator) -> None:
        hub.add_fault("slow:2@1")
        with pytest.raises(requests.Timeout):
            requests.get(f"{hub.url}/api/models", timeout=0.3)
        hub.latency = 0.2
        started = time.monotonic()
        get(hub, limit=1)
        assert time.monotonic() - started >= 0.2

    def test_pattern_with_a_count_and_random_share(self, hub: HubEmulator) -> None:
        hub.add_fault("500@/cursor=/x2")
        walk = [get(hub, limit=1000)]
        statuses = [
            requests.get(walk[0].links["next"]["url"], timeout=5).status_code for _ in range(3)
        ]
        assert statuses == [500, 500, 200]
        share = parse_fault("503@p0.5", seed=1)
        fired = sum(share.applies(n, "/api/models?") for n in range(1, 1001))
        assert 430 < fired < 570

    def test_drift_moves_likes_between_pages(self) -> None:
        catalog = make_catalog(400, 0, 0, hf_inference=10)
        with HubEmulator(catalog, drift=50) as hub:
            before = {m["id"]: m["likes"] for m in catalog.repos["model"]}
            walk_ids(hub, sort="likes", limit=50)
            after = {m["id"]: m["likes"] for m in catalog.repos["model"]}
        assert before != after

    def test_drift_keeps_every_cached_order_sorted(self) -> None:
        catalog = make_catalog(400, 0, 0, hf_inference=10)
        sorts = ("likes", "downloads", "id", "createdAt")
        for sort in sorts:
            catalog.query("model", sort, (), lambda repo: True)
        catalog.query("model", "likes", ("few",), lambda repo: repo["likes"] % 3 == 0)
        rng = random.Random(5)

        def move(repo: dict[str, Any]) -> None:
            repo["likes"] = max(0, repo["likes"] + rng.randint(-50, 50))
            repo["downloads"] = rng.randint(0, 10**6)

        for _ in range(30):
            catalog.mutate("model", rng.sample(catalog.repos["model"], 7), move)
        for sort in sorts:
            keys, ordered = catalog.query("model", sort, (), lambda repo: True)
            expected = sorted(catalog.repos["model"], key=lambda repo: sort_key(repo, sort))
            assert ordered == expected
            assert keys == [sort_key(repo, sort) for repo in expected]
        _, few = catalog.query("model", "likes", ("few",), lambda repo: True)
        assert [sort_key(r, "likes") for r in few] == sorted(sort_key(r, "likes") for r in few)

    def test_request_log_over_http(self, hub: HubEmulator) -> None:
        get(hub, sort="likes", limit=3)
        log = requests.get(f"{hub.url}/_emulator/requests", timeout=5).json()
        assert log == [
            {
                "number": 1,
                "path": "/api/models",
                "query": "sort=likes&limit=3",
                "token": False,
                "status": 200,
                "fault": None,
            }
        ]

    def test_bad_fault_specs(self) -> None:
        for spec in ("explode@1", "503@x", ""):
            with pytest.raises(ValueError, match="fault"):
                parse_fault(spec)


@pytest.mark.slow
def test_command_line_prints_its_url_first_and_serves() -> None:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "hfharvest.testing",
            "--port",
            "0",
            "--models",
            "50",
            "--hf-inference",
            "5",
            "--fault",
            "503@1",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        assert requests.get(f"{url}/api/models", timeout=5).status_code == 503
        assert len(requests.get(f"{url}/api/models", timeout=5).json()) == 50
    finally:
        process.terminate()
        assert process.wait(timeout=5) == 0


def test_binds_loopback_only() -> None:
    with HubEmulator(make_catalog(10, 0, 0, hf_inference=1)) as hub:
        host = hub.url.split("//")[1].split(":")[0]
        assert host == "127.0.0.1"
        assert socket.gethostbyname(host) == "127.0.0.1"


def test_the_emulators_dates_run_up_to_its_present(hub_catalog: Any) -> None:
    """`--since` a week before the emulator's present finds the repos changed that week."""
    present = datetime.fromtimestamp(PRESENT, UTC)
    for repo_type in ("model", "dataset", "space"):
        modified = [r["lastModified"] for r in hub_catalog.repos[repo_type]]
        newest = datetime.fromisoformat(max(modified))
        assert present - timedelta(days=2) < newest <= present, repo_type
    week = (present - timedelta(days=7)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    assert sum(r["lastModified"] >= week for r in hub_catalog.repos["model"]) > 10


EMULATOR = [sys.executable, "-m", "hfharvest.testing"]


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--port", "99999"], "--port 99999: a port is 0 (any free one) to 65535"),
        (["--models", "-5"], "--models -5: a count is 0 or more"),
        (["--extra-sort", "likes7d"], "--extra-sort 'likes7d': NAME=AS"),
    ],
)
def test_an_impossible_emulator_is_one_line_and_exit_2(args: list[str], words: str) -> None:
    done = subprocess.run([*EMULATOR, *args], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and words in done.stderr


def test_a_second_emulator_on_a_busy_port_says_so(hub: HubEmulator) -> None:
    port = hub.url.rsplit(":", 1)[1]
    done = subprocess.run([*EMULATOR, "--port", port], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and done.stderr.count("\n") == 1
    assert f"127.0.0.1:{port} is in use (an emulator already running?)" in done.stderr


def test_a_sort_the_hub_adds_is_rehearsed_from_the_command_line(tmp_path: Any) -> None:
    with subprocess.Popen(
        [*EMULATOR, "--port", "0", "--extra-sort", "likes7d=likes"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as emulator:
        try:
            assert emulator.stdout is not None and emulator.stderr is not None
            url = emulator.stdout.readline().strip()
            assert "`kill" in emulator.stderr.readline()  # how to stop one in the background
            answer = requests.get(f"{url}/api/models", params={"sort": "likes7d"}, timeout=10)
            assert answer.status_code == 200 and answer.json()
        finally:
            emulator.terminate()
    assert emulator.returncode == 0  # SIGTERM ends it cleanly
