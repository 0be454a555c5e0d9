"""Shaping pages, here and in the page worker: the same lines either way, and its failures."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest
import requests
from hypothesis import given
from hypothesis import strategies as st

from conftest import models
from hfharvest.pageworker import PAGES_BEFORE_WORKER, PageReader, PageWorker, PageWorkerError
from hfharvest.shaping import (
    ErrorBody,
    NotAnArray,
    NotJSON,
    Shaped,
    Shaper,
    WalkShape,
    check_array,
    parse_entries,
)
from hfharvest.testing import HubEmulator

STREAMED = WalkShape("model", "likes", 0, streaming=True, with_raw=False)
SPOOLED = WalkShape("model", "downloads", 1, streaming=False, with_raw=True)


def emulator_bodies(hub: HubEmulator, pages: int) -> list[bytes]:
    """Real listing bodies (full models), as the walk would read them."""
    url: str | None = f"{hub.url}/api/models?sort=likes&limit=100&full=true"
    bodies: list[bytes] = []
    while url and len(bodies) < pages:
        answer = requests.get(url, timeout=10)
        bodies.append(answer.content)
        url = answer.links.get("next", {}).get("url")
    return bodies


def shape_all(
    bodies: list[bytes], shape: WalkShape, *, offload: bool, limit: int | None = None
) -> list[Shaped]:
    """Read every body as the fetching thread would, then take them as the walk's thread would."""
    reader = PageReader(Shaper(shape, returned=0, limit=limit), offload=offload)
    try:
        for number, body in enumerate(bodies, 1):
            reader.read(body, more=number < len(bodies))
        return [reader.take() for _ in bodies]
    finally:
        reader.close()


@pytest.mark.parametrize("shape", [STREAMED, SPOOLED], ids=["streamed", "spooled-with-raw"])
def test_a_worker_shapes_exactly_as_this_process(
    hub: HubEmulator, shape: WalkShape, caplog: pytest.LogCaptureFixture
) -> None:
    bodies = emulator_bodies(hub, 4)
    junk = orjson.dumps([*models(0, 2), "junk", {"no": "id"}, *models(0, 1)])  # skipped, repeated
    bodies.insert(2, junk)
    with caplog.at_level(logging.DEBUG, logger="hfharvest"):
        offloaded = shape_all(bodies, shape, offload=True)
    assert "page worker" in caplog.text and "shapes its next pages" in caplog.text
    assert offloaded == shape_all(bodies, shape, offload=False)
    ranks = [rank for page in offloaded for rank in page.ranks]
    assert ranks == sorted(ranks) and len(ranks) == 3 * 100 + 3 + 100  # skipped take a rank too
    assert offloaded[2].skipped == 2


def test_a_walk_of_two_pages_and_a_limited_walk_start_no_process(
    hub: HubEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*args: Any) -> None:
        raise AssertionError("no worker was to be started")

    monkeypatch.setattr(PageWorker, "start", refuse)
    bodies = emulator_bodies(hub, 3)
    shape_all(bodies[:2], STREAMED, offload=True)
    limited = shape_all(bodies, STREAMED, offload=True, limit=250)  # it counts each page
    assert [page.returned for page in limited] == [100, 100, 50]


def test_no_worker_can_start_so_pages_are_shaped_here(
    hub: HubEmulator, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def no_processes(*args: Any, **kwargs: Any) -> None:
        raise PermissionError("not allowed to start processes")

    bodies = emulator_bodies(hub, 3)
    expected = shape_all(bodies, STREAMED, offload=False)
    monkeypatch.setattr(subprocess, "Popen", no_processes)
    with caplog.at_level(logging.DEBUG, logger="hfharvest"):
        assert shape_all(bodies, STREAMED, offload=True) == expected
    assert "no page worker could start" in caplog.text


def test_the_worker_imports_nothing_from_the_working_folder(
    hub: HubEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "orjson.py").write_text("raise SystemExit('a stray orjson.py was imported')\n")
    monkeypatch.chdir(tmp_path)
    bodies = emulator_bodies(hub, 3)
    assert shape_all(bodies, STREAMED, offload=True) == shape_all(bodies, STREAMED, offload=False)


def test_a_body_that_only_looks_like_an_array_is_refused_by_the_worker() -> None:
    reader = PageReader(Shaper(STREAMED, returned=0, limit=None), offload=True)
    try:
        reader.read(orjson.dumps(models(0, 2)), more=True)
        reader.read(orjson.dumps(models(2, 1)), more=True)  # starts the worker
        reader.read(b'[{"id": "a/b"},]', more=False)  # the shape of an array: sent as it is
        assert [reader.take().ids for _ in range(2)] == [["org/m0", "org/m1"], ["org/m2"]]
        with pytest.raises(NotJSON, match="trailing comma is not allowed"):
            reader.take()
    finally:
        reader.close()


def started_worker() -> tuple[PageReader, PageWorker]:
    reader = PageReader(Shaper(STREAMED, returned=0, limit=None), offload=True)
    for page in range(PAGES_BEFORE_WORKER):
        reader.read(orjson.dumps(models(page, 1)), more=True)
        reader.take()
    worker = reader._worker
    assert worker is not None
    return reader, worker


def test_a_worker_that_dies_stops_the_walk_with_what_to_do() -> None:
    reader, worker = started_worker()
    os.kill(worker.pid, signal.SIGKILL)
    with pytest.raises(PageWorkerError, match=r"exited with code -9; the pages it held are lost"):
        reader.read(orjson.dumps(models(1, 1)), more=False)
        reader.take()
    reader.close()


def test_the_worker_is_in_a_session_of_its_own_and_close_ends_it() -> None:
    reader, worker = started_worker()
    assert os.getsid(worker.pid) == worker.pid != os.getsid(0)  # Ctrl-C does not reach it
    reader.close()
    with pytest.raises(ProcessLookupError):
        os.kill(worker.pid, 0)  # gone, and reaped


def test_the_worker_ends_when_the_walk_closes_its_stdin() -> None:
    command = [sys.executable, "-m", "hfharvest.pageworker"]
    process = subprocess.Popen(command, stdin=subprocess.PIPE, stderr=subprocess.PIPE)
    _, stderr = process.communicate(b"", timeout=10)
    assert process.returncode == 0 and stderr == b""  # quietly: no traceback


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b"<!DOCTYPE html><html>Maintenance</html>", NotJSON),
        (b"", NotJSON),
        (b'[{"id": "a/b"', NotJSON),
        (b'{"error": "Invalid sort"}', ErrorBody),
        (b'{"x": 1}', NotAnArray),
        (b"7", NotAnArray),
    ],
)
def test_what_is_no_page_is_caught_before_it_is_sent(body: bytes, error: type[Exception]) -> None:
    with pytest.raises(error):
        check_array(body)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner),
    max_leaves=8,
)


@given(value=json_values, cut=st.integers(0, 40), pad=st.sampled_from([b"", b" ", b"\n "]))
def test_the_check_agrees_with_parsing_unless_the_body_is_array_shaped(
    value: object, cut: int, pad: bytes
) -> None:
    encoded = orjson.dumps(value)
    body = pad + encoded[: len(encoded) - cut] + pad
    try:
        parse_entries(body)
        parsed: type[Exception] | None = None
    except (NotJSON, NotAnArray, ErrorBody) as exc:
        parsed = type(exc)
    try:
        check_array(body)
        checked: type[Exception] | None = None
    except (NotJSON, NotAnArray, ErrorBody) as exc:
        checked = type(exc)
    assert checked is None or checked is parsed  # it never refuses a page
    if checked is None and parsed is not None:
        assert body.strip()[:1] == b"[" and body.strip()[-1:] == b"]"  # left to the worker
