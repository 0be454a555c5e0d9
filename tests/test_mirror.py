"""`hfharvest.Mirror`: a gateway's set of models that stays up when the Hub does not (#26).

Time is the mirror's injected clock wherever the test waits for `max_age` or for the waits between
failed refreshes; the Hub is the emulator, stopped and replaced on the same port by a listener
that never answers, a closed port, or another catalog.
"""

from __future__ import annotations

import copy
import gc
import itertools
import json
import logging
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import hfharvest
from hfharvest.cli import app
from hfharvest.testing import HubEmulator, make_catalog
from hfharvest.testing.catalog import Catalog

SERVED = 1377  # the default catalog's hf-inference models
OPTIONS: dict[str, Any] = {
    "retries": 0,
    "sort": ["likes", "downloads"],
    "inference_provider": "hf-inference",
}


class Clock:
    """The mirror's clock, moved by the test: seconds since the epoch, from now."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


class Silent:
    """A listener on `port` that accepts connections and never answers."""

    def __init__(self, port: int) -> None:
        self.socket = socket.socket()
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.socket.bind(("127.0.0.1", port))
        self.socket.listen(64)
        self.held: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self.socket.accept()
            except OSError:
                return
            self.held.append(connection)

    def close(self) -> None:
        self.socket.close()
        for connection in self.held:
            connection.close()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def listing_requests(hub: HubEmulator) -> int:
    return sum(1 for r in hub.requests_log if r.path.startswith("/api/"))


def refresh_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "refresh failed" in r.getMessage()]


@pytest.fixture
def port() -> int:
    return free_port()


@pytest.fixture
def served(hub_catalog: Catalog, port: int, tmp_path: Path) -> Iterator[Path]:
    """A mirror's file and manifest made by a first walk, the emulator stopped again."""
    path = tmp_path / "cache" / "served.parquet"
    with HubEmulator(hub_catalog, port=port), mirror_of(path, port) as mirror:
        assert len(mirror.records()) == SERVED
    yield path


def mirror_of(path: Path, port: int, **settings: Any) -> hfharvest.Mirror:
    return hfharvest.Mirror(path, endpoint=f"http://127.0.0.1:{port}", **{**OPTIONS, **settings})


def test_a_hub_that_never_answers_never_holds_up_a_caller(
    served: Path, port: int, caplog: pytest.LogCaptureFixture
) -> None:
    clock = Clock()
    with mirror_of(served, port, max_age=2, clock=clock, timeout=1, deadline=1) as mirror:
        assert len(mirror.records()) == SERVED and mirror.fresh
        silent = Silent(port)
        try:
            clock.now += 2.5
            slowest: list[float] = []
            errors: list[BaseException] = []

            def call() -> None:
                for _ in range(100):
                    began = time.perf_counter()
                    try:
                        assert len(mirror.records()) == SERVED
                    except BaseException as exc:  # counted, then asserted
                        errors.append(exc)
                    slowest.append(time.perf_counter() - began)

            threads = [threading.Thread(target=call) for _ in range(8)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            assert errors == [] and len(slowest) == 800
            assert max(slowest) < 0.05, f"slowest call {max(slowest) * 1000:.0f} ms"
            assert mirror.wait(10)  # the refresh fails at its 1 s deadline
            assert not mirror.fresh and mirror.age is not None and mirror.age >= 2.5
            assert isinstance(mirror.last_error, hfharvest.HubError)
            assert len(mirror.records()) == SERVED  # within the wait: no new attempt
            assert not mirror.refreshing
        finally:
            silent.close()
    warned = refresh_warnings(caplog)
    assert len(warned) == 1, warned
    assert f"serving the last good set ({SERVED:,} records" in warned[0]


def test_failed_refreshes_wait_longer_each_time_then_the_hub_is_back(
    served: Path, hub_catalog: Catalog, port: int, caplog: pytest.LogCaptureFixture
) -> None:
    clock = Clock()
    mirror = mirror_of(served, port, max_age=2, clock=clock, refresh_backoff=10)
    assert len(mirror.records()) == SERVED
    began = clock.now + 3
    attempts: list[float] = []
    for step in range(121):  # 60 scaled seconds, the port closed: every attempt is refused
        clock.now = began + step / 2
        assert len(mirror.records()) == SERVED
        assert mirror.wait(10)
        if len(refresh_warnings(caplog)) > len(attempts):
            attempts.append(clock.now - began)
    assert 2 <= len(attempts) <= 4, attempts
    gaps = [later - earlier for earlier, later in itertools.pairwise(attempts)]
    assert gaps == sorted(gaps) and gaps[0] >= 10, gaps
    assert isinstance(mirror.last_error, hfharvest.HubError)
    with HubEmulator(hub_catalog, port=port) as hub:
        clock.now += 1000  # past any wait
        assert len(mirror.records()) == SERVED
        assert mirror.wait(10)
        assert listing_requests(hub) == 4  # one refresh: two sorts, two pages each
    assert mirror.last_error is None and mirror.fresh and mirror.age == 0
    mirror.close()


def test_the_first_call_raises_and_then_waits_before_walking_again(
    tmp_path: Path, port: int
) -> None:
    clock = Clock()
    mirror = mirror_of(tmp_path / "served.jsonl", port, clock=clock)
    with pytest.raises(hfharvest.HubError) as first:
        mirror.records()
    with pytest.raises(hfharvest.HubError) as again:
        mirror.records()  # within the wait: the same error, no walk
    assert again.value is first.value and mirror.last_error is first.value
    assert mirror.age is None and not mirror.fresh
    mirror.close()


SUBPROCESS = """
import json, sys, time, hfharvest
path, port, max_age = sys.argv[1], sys.argv[2], float(sys.argv[3])
began = time.perf_counter()
mirror = hfharvest.Mirror(path, max_age=max_age, retries=0, sort=["likes", "downloads"],
                          inference_provider="hf-inference", endpoint=f"http://127.0.0.1:{port}")
count = len(mirror.records())
took = time.perf_counter() - began
refreshing = mirror.refreshing
mirror.close()
print(json.dumps({"count": count, "took": took, "refreshing": refreshing}))
"""


def in_a_new_process(path: Path, port: int, max_age: float) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", SUBPROCESS, str(path), str(port), str(max_age)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    answer: dict[str, Any] = json.loads(done.stdout)
    return answer


def test_a_new_process_serves_the_file_without_a_request_or_a_wait(
    served: Path, hub_catalog: Catalog, port: int
) -> None:
    with HubEmulator(hub_catalog, port=port) as hub:
        fresh = in_a_new_process(served, port, 3600)
        assert fresh == {"count": SERVED, "took": fresh["took"], "refreshing": False}
        assert hub.requests_log == []
    silent = Silent(port)
    try:
        stale = in_a_new_process(served, port, 0.001)
    finally:
        silent.close()
    assert stale["count"] == SERVED and stale["refreshing"]
    assert stale["took"] < 1, stale


def changed_catalog(catalog: Catalog) -> Catalog:
    """The catalog a day later: 20 served models no longer served, 7 with another pipeline
    tag, 30 newcomers, and every served model's likes moved (which no one counts as a change)."""
    models = copy.deepcopy(catalog.repos["model"])
    served = [m for m in models if _served(m)]
    for model in served[:20]:
        model["inferenceProviderMapping"] = [
            p for p in model["inferenceProviderMapping"] if p["provider"] != "hf-inference"
        ]
    for model in served[20:27]:
        model["pipeline_tag"] = "text-ranking"
    for model in served:
        model["likes"] += 1
    for number, model in enumerate(copy.deepcopy(served[100:130])):
        model["id"] = model["modelId"] = f"newcomer/model-{number}"
        model["_id"] = f"{number:024x}"
        models.append(model)
    return Catalog({**catalog.repos, "model": models})


def _served(model: dict[str, Any]) -> bool:
    return any(p["provider"] == "hf-inference" for p in model["inferenceProviderMapping"])


def test_a_refresh_says_what_changed_as_hfharvest_diff_does(
    served: Path, hub_catalog: Catalog, port: int, tmp_path: Path
) -> None:
    before = tmp_path / "before.parquet"
    before.write_bytes(served.read_bytes())
    told: list[hfharvest.Changes] = []
    changed = changed_catalog(hub_catalog)
    with HubEmulator(changed, port=port), mirror_of(served, port, on_refresh=told.append) as mirror:
        old = {r["id"] for r in mirror.records()}
        changes = mirror.refresh()
        new = {r["id"] for r in mirror.records()}
    assert set(changes.added) == new - old and len(changes.added) == 30
    assert set(changes.removed) == old - new and len(changes.removed) == 20
    assert changes.unique == len(new) == SERVED + 10
    diffed = CliRunner().invoke(app, ["diff", str(before), str(served)])
    lines = [json.loads(line) for line in diffed.stdout.splitlines()]
    by_diff = {line["id"]: tuple(line["fields"]) for line in lines if line["change"] == "changed"}
    assert dict(changes.changed) == by_diff
    assert set(by_diff) and all(fields == ("pipeline_tag",) for fields in by_diff.values())
    assert told == []  # a refresh in the caller's thread is returned, not called back


@pytest.mark.parametrize("left", [0, 137])
def test_a_much_smaller_set_is_refused_unless_accepted(
    served: Path, port: int, left: int, caplog: pytest.LogCaptureFixture
) -> None:
    clock = Clock()
    hub = HubEmulator(make_catalog(hf_inference=left), port=port)
    with hub, mirror_of(served, port, max_age=60, clock=clock) as mirror:
        with pytest.raises(hfharvest.SmallerSetError) as refused:
            mirror.refresh()
        assert (refused.value.got, refused.value.previous) == (left, SERVED)
        assert refused.value.exit_code == 4
        assert len(mirror.records()) == SERVED
        clock.now += 61 + 100  # stale, and past the wait after the refusal
        assert len(mirror.records()) == SERVED
        assert mirror.wait(10)
        assert isinstance(mirror.last_error, hfharvest.SmallerSetError)
        assert len(mirror.records()) == SERVED
        before = {r["id"] for r in mirror.records()}
        changes = mirror.refresh(accept_smaller=True)
        after = {r["id"] for r in mirror.records()}
        assert len(after) == left == changes.unique
        assert set(changes.removed) == before - after and changes.removed
    warned = refresh_warnings(caplog)
    assert len(warned) == 1 and "fewer than `min_ratio` 0.5 of the 1,377 served" in warned[0]


TWO_WORKERS = """
import json, sys, time, hfharvest
path, port = sys.argv[1], sys.argv[2]
mirror = hfharvest.Mirror(path, max_age=600, retries=0, sort=["likes", "downloads"],
                          inference_provider="hf-inference", endpoint=f"http://127.0.0.1:{port}")
first = len(mirror.records())
mirror.wait(60)
print(json.dumps({"first": first, "next": len(mirror.records()), "fresh": mirror.fresh}))
mirror.close()
"""


def test_two_processes_make_one_refresh_and_both_serve_it(served: Path, port: int) -> None:
    manifest = Path(f"{served}.manifest")
    document = json.loads(manifest.read_text())
    document["ended"] = "2026-01-01T00:00:00Z"  # an expired set
    manifest.write_text(json.dumps(document))
    with HubEmulator(make_catalog(hf_inference=1500), port=port, latency=0.3) as hub:
        workers = [
            subprocess.Popen(
                [sys.executable, "-c", TWO_WORKERS, str(served), str(port)],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(2)
        ]
        answers = []
        for worker in workers:
            out, err = worker.communicate(timeout=60)
            assert worker.returncode == 0, err
            answers.append(json.loads(out))
        assert listing_requests(hub) == 4  # one refresh between them: two sorts, two pages
    assert answers == [{"first": SERVED, "next": 1500, "fresh": True}] * 2


def test_a_dropped_mirror_leaves_no_thread(served: Path, port: int) -> None:
    silent = Silent(port)
    try:
        mirror = mirror_of(served, port, max_age=0.001, deadline=60, timeout=60)
        assert len(mirror.records()) == SERVED and mirror.refreshing
        thread = next(t for t in threading.enumerate() if t.name.startswith("hfharvest-mirror"))
        del mirror
        gc.collect()
        thread.join(1)
        assert not thread.is_alive()
    finally:
        silent.close()


def test_options_are_checked_when_the_mirror_is_made(tmp_path: Path) -> None:
    with pytest.raises(hfharvest.UsageError, match="`max_age` must be"):
        hfharvest.Mirror(tmp_path / "m.jsonl", max_age="soon")
    with pytest.raises(hfharvest.UsageError, match="no \\{date\\}"):
        hfharvest.Mirror(tmp_path / "m-{date}.jsonl")
    with pytest.raises(hfharvest.UsageError, match="`min_ratio` must be between 0 and 1"):
        hfharvest.Mirror(tmp_path / "m.jsonl", min_ratio=2)
    with pytest.raises(hfharvest.OptionTypeError, match="`limit` must be an int"):
        hfharvest.Mirror(tmp_path / "m.jsonl", limit="3")  # type: ignore[arg-type]
    assert hfharvest.Mirror(tmp_path / "m.jsonl", max_age="1h").max_age == 3600


def test_nothing_is_printed(
    served: Path, port: int, capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.CRITICAL + 1)
    clock = Clock()
    with mirror_of(served, port, max_age=1, clock=clock) as mirror:
        clock.now += 5
        mirror.records()
        mirror.wait(10)
    assert capfd.readouterr() == ("", "")


@pytest.mark.parametrize("name", ["served.parquet", "served.jsonl.gz", "served.json"])
def test_the_set_is_what_harvest_returns_whatever_the_format(
    hub: HubEmulator, tmp_path: Path, name: str
) -> None:
    options = {**OPTIONS, "endpoint": hub.url}
    harvested = hfharvest.harvest(**options).records
    with hfharvest.Mirror(tmp_path / name, **options) as mirror:
        mirrored = mirror.records()
    assert isinstance(mirrored, tuple) and list(mirrored) == harvested
    assert all(isinstance(record["found_by"], dict) for record in mirrored)


def test_a_file_made_with_other_options_is_walked_again(served: Path, hub_catalog: Catalog) -> None:
    with HubEmulator(hub_catalog) as hub:  # on another port: the endpoint is another request
        with hfharvest.Mirror(served, **{**OPTIONS, "endpoint": hub.url}) as mirror:
            assert len(mirror.records()) == SERVED
        assert listing_requests(hub) == 4
        with hfharvest.Mirror(served, **{**OPTIONS, "endpoint": hub.url}) as again:
            assert len(again.records()) == SERVED
        assert listing_requests(hub) == 4  # the same options now: no request
        bounded = {**OPTIONS, "endpoint": hub.url, "min_likes": 6}
        with hfharvest.Mirror(served, **bounded) as other:
            assert 0 < len(other.records()) < SERVED
        assert listing_requests(hub) > 4


def test_offline_a_mirror_serves_its_file_and_never_refreshes(
    served: Path, port: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with mirror_of(served, port, max_age=0.001) as mirror:
        assert len(mirror.records()) == SERVED
        assert not mirror.refreshing and not mirror.fresh
    with pytest.raises(hfharvest.UsageError, match="HF_HUB_OFFLINE is set"):
        mirror_of(tmp_path / "none.jsonl", port).records()


def test_a_mirror_made_in_ci_exchanges_no_token_to_serve_its_file(
    served: Path, hub_catalog: Catalog, port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With HF_OIDC_RESOURCE set, a fresh file is served with no request: the exchange waits for
    a refresh (each refresh resolves the token anew)."""
    monkeypatch.setenv("HF_OIDC_RESOURCE", "org/repo")
    monkeypatch.setenv("HF_OIDC_ID_TOKEN", "eyJ.id.token")
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    with HubEmulator(hub_catalog, port=port) as hub, mirror_of(served, port) as mirror:
        assert len(mirror.records()) == SERVED and mirror.fresh
        assert hub.requests_log == []
