"""Writers: JSONL and JSON, files all or nothing, deterministic gzip, umask permissions."""

from __future__ import annotations

import gzip
import io
import json
import os
from pathlib import Path
from typing import Any

import pytest

from hfharvest.errors import OutputError
from hfharvest.records import Final
from hfharvest.sinks import files
from hfharvest.sinks.jsonl import JsonSink
from hfharvest.sinks.pick import open_sink
from hfharvest.sinks.target import OutputFormat, OutputTarget

RECORDS: list[dict[str, object]] = [{"id": "a/b", "likes": 1}, {"id": "c/ü", "likes": None}]
FOUND_BY = {"likes": 1}  # what the writer adds to each record


def target(path: Path | None, fmt: OutputFormat, gzip: bool) -> OutputTarget:
    return OutputTarget(path, fmt, gzip, str(path or "-"), "model", False, (), ())


def write(target: OutputTarget, records: list[dict[str, object]] = RECORDS) -> bytes:
    stdout = io.BytesIO()
    with open_sink(target, stdout) as writer:
        for record in records:
            writer.write(Final(record), FOUND_BY)
    return stdout.getvalue()


def test_jsonl_to_stdout_one_record_a_line_utf8() -> None:
    data = write(target(None, "jsonl", False))
    assert (
        data
        == (
            '{"id":"a/b","likes":1,"found_by":{"likes":1}}\n'
            '{"id":"c/ü","likes":null,"found_by":{"likes":1}}\n'
        ).encode()
    )


def test_json_is_one_array() -> None:
    data = write(target(None, "json", False))
    assert json.loads(data) == [{**record, "found_by": FOUND_BY} for record in RECORDS]
    assert write(target(None, "json", False), []) == b"[]\n"


def test_file_appears_only_when_complete(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    path.write_text("yesterday\n")
    with (
        pytest.raises(RuntimeError),
        open_sink(target(path, "jsonl", False), io.BytesIO()) as writer,
    ):
        writer.write(Final(RECORDS[0]), FOUND_BY)
        raise RuntimeError("the harvest failed")
    assert path.read_text() == "yesterday\n"
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left behind


def test_interrupt_leaves_the_earlier_file_and_no_temp(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    path.write_text("yesterday\n")
    with (
        pytest.raises(KeyboardInterrupt),
        open_sink(target(path, "jsonl", False), io.BytesIO()),
    ):
        raise KeyboardInterrupt
    assert path.read_text() == "yesterday\n"
    assert list(tmp_path.iterdir()) == [path]


def test_gzip_is_deterministic(tmp_path: Path) -> None:
    first, second = tmp_path / "a.jsonl.gz", tmp_path / "b.jsonl.gz"
    write(target(first, "jsonl", True))
    os.utime(tmp_path, (0, 0))
    write(target(second, "jsonl", True))
    assert first.read_bytes() == second.read_bytes()
    assert gzip.decompress(first.read_bytes()).count(b"\n") == 2
    header = first.read_bytes()[:10]
    assert header[4:8] == b"\0\0\0\0"  # mtime 0
    assert header[3] & 0x08 == 0  # no FNAME flag: no embedded file name


def test_permissions_follow_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o027)
    try:
        path = tmp_path / "out.jsonl"
        write(target(path, "jsonl", False))
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o640


@pytest.mark.usefixtures("disk_full")
def test_write_failure_becomes_an_output_error(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    path.write_text("yesterday\n")
    with pytest.raises(OutputError, match="No space left on device") as err:
        write(target(path, "jsonl", False))
    assert err.value.exit_code == 1
    assert path.read_text() == "yesterday\n"
    assert list(tmp_path.iterdir()) == [path]


@pytest.mark.skipif(not files.CAN_DROP, reason="no posix_fadvise on this system")
def test_a_long_output_goes_to_the_disk_and_out_of_the_cache_as_it_grows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    records: list[dict[str, object]] = [{"id": f"org/model-{i}", "likes": i} for i in range(20)]
    expected = write(target(None, "jsonl", False), records)
    calls: list[tuple[str, int]] = []
    synced, advised = os.fdatasync, os.posix_fadvise

    def fdatasync(fd: int) -> None:
        calls.append(("fdatasync", fd))
        synced(fd)

    def posix_fadvise(fd: int, offset: int, length: int, advice: int) -> None:
        assert (offset, length, advice) == (0, 0, os.POSIX_FADV_DONTNEED)  # the whole file
        calls.append(("dropped", fd))
        advised(fd, offset, length, advice)

    monkeypatch.setattr(files, "WRITTEN_BACK", 256)
    monkeypatch.setattr(JsonSink, "__init__", _small_chunks(JsonSink.__init__))
    monkeypatch.setattr(os, "fdatasync", fdatasync)
    monkeypatch.setattr(os, "posix_fadvise", posix_fadvise)
    path = tmp_path / "m.jsonl"
    write(target(path, "jsonl", False), records)
    assert path.read_bytes() == expected
    assert len(expected) > 2 * 256 + 2 * 64  # so at least two hand-overs
    assert [name for name, _ in calls] == ["fdatasync", "dropped"] * (len(calls) // 2)
    assert len(calls) >= 4
    monkeypatch.setattr(files, "CAN_DROP", False)  # macOS, Windows: written as it is
    calls.clear()
    write(target(path, "jsonl", False), records)
    assert (path.read_bytes(), calls) == (expected, [])


def _small_chunks(init: Any) -> Any:
    """JsonSink's `__init__`, its chunks made 64 bytes: every few records reach the file."""

    def small(self: JsonSink, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **{**kwargs, "chunk": 64})

    return small
