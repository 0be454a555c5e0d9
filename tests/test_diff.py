"""`hfharvest diff`: changes between two snapshots, as JSONL, with diff(1) exit codes."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from said import unstamped
from typer.testing import CliRunner

from hfharvest.cli import app

runner = CliRunner()


def record(repo_id: str, **fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": repo_id,
        "type": "model",
        "license": "mit",
        "likes": 10,
        "downloads": 100,
        "gated": "no",
        "found_by": {"likes": 1},
    }
    return {**base, **fields}


def write(path: Path, records: list[dict[str, Any]], fmt: str = "jsonl") -> Path:
    if fmt == "json":
        data = ("[\n" + ",\n".join(json.dumps(r) for r in records) + "\n]\n").encode()
    else:
        data = "".join(json.dumps(r) + "\n" for r in records).encode()
    path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)
    return path


OLD = [
    record("a/kept"),
    record("a/moved", likes=5, downloads=50),
    record("a/gone"),
    record("a/relicensed"),
    record("a/gated"),
]
NEW = [
    record("a/relicensed", license="apache-2.0"),
    record("a/kept", likes=99),
    record("a/new"),
    record("a/moved", likes=500, downloads=9000, found_by={"downloads": 3}),
    record("a/gated", gated="manual"),
]


def run(*args: str) -> Any:
    return runner.invoke(app, ["diff", *args])


@pytest.mark.parametrize(
    ("old_name", "new_name", "fmt"),
    [
        ("old.jsonl", "new.jsonl", "jsonl"),
        ("old.jsonl.gz", "new.json.gz", "json"),
        ("old.json", "new.jsonl.gz", "json"),
    ],
)
def test_added_removed_changed_in_any_snapshot_format(
    tmp_path: Path, old_name: str, new_name: str, fmt: str
) -> None:
    old = write(tmp_path / old_name, OLD, fmt if old_name.startswith("old.json") else "jsonl")
    new = write(tmp_path / new_name, NEW, fmt)
    result = run(str(old), str(new))
    assert result.exit_code == 0, result.stderr  # without --exit-code: 0 whatever the result
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert lines == [
        {"change": "changed", "id": "a/relicensed", "fields": {"license": ["mit", "apache-2.0"]}},
        {"change": "added", "id": "a/new", "record": record("a/new")},
        {"change": "changed", "id": "a/gated", "fields": {"gated": ["no", "manual"]}},
        {"change": "removed", "id": "a/gone", "record": record("a/gone")},
    ]
    assert "added 1 · removed 1 · changed 2 · unchanged 2" in result.stderr
    assert "biggest moves in downloads" in result.stderr
    assert "a/moved" in result.stderr and "+8,950" in result.stderr


def test_fields_chooses_and_all_takes_every_field(tmp_path: Path) -> None:
    old, new = write(tmp_path / "o.jsonl", OLD), write(tmp_path / "n.jsonl", NEW)
    only_likes = [
        json.loads(x) for x in run(str(old), str(new), "--fields", "likes").stdout.splitlines()
    ]
    assert {(x["change"], x["id"]) for x in only_likes} == {
        ("changed", "a/kept"),
        ("changed", "a/moved"),
        ("added", "a/new"),
        ("removed", "a/gone"),
    }
    every = [json.loads(x) for x in run(str(old), str(new), "--fields", "all").stdout.splitlines()]
    moved = next(x for x in every if x["id"] == "a/moved")
    assert set(moved["fields"]) == {"likes", "downloads", "found_by"}


def test_unknown_field_is_trouble(tmp_path: Path) -> None:
    old = write(tmp_path / "o.jsonl", OLD)
    result = run(str(old), str(old), "--fields", "popularity")
    assert result.exit_code == 2
    assert "--fields: unknown field popularity" in result.stderr


@pytest.mark.parametrize(
    ("same", "flag", "code"),
    [
        (True, (), 0),
        (True, ("--exit-code",), 0),
        (False, (), 0),
        (False, ("--exit-code",), 1),
    ],
)
def test_exit_codes_follow_diff(
    tmp_path: Path, same: bool, flag: tuple[str, ...], code: int
) -> None:
    old = write(tmp_path / "o.jsonl", OLD)
    new = old if same else write(tmp_path / "n.jsonl", NEW)
    result = run(str(old), str(new), *flag)
    assert result.exit_code == code
    assert (result.stdout == "") == same


@pytest.mark.parametrize("content", [b"not json at all\n", b'{"no_id": 1}\n', b"\x1f\x8bgarbage"])
def test_trouble_is_exit_2_in_one_line(tmp_path: Path, content: bytes) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(content)
    good = write(tmp_path / "good.jsonl", OLD)
    for args in ((str(bad), str(good)), (str(good), str(bad))):
        result = run(*args)
        assert result.exit_code == 2
        assert unstamped(result.stderr).startswith("hfharvest: error: ")
        assert "Traceback" not in result.stderr
    missing = run(str(tmp_path / "absent.jsonl"), str(good))
    assert missing.exit_code == 2
    assert "cannot read" in missing.stderr


def synthetic_snapshot(path: Path, count: int, shift: int) -> None:
    """`count` realistic records; `shift` of them differ from a snapshot with shift 0."""
    with path.open("w") as out:
        for i in range(count):
            extra = {"license": "apache-2.0"} if i < shift else {}
            tags = [f"tag-{i % 50}", "license:mit", "region:us", f"arxiv:2501.{i:05d}"]
            files = [f"model-{part:05d}-of-00020.safetensors" for part in range(20)]
            out.write(
                json.dumps(
                    record(f"org-{i % 997}/model-{i}", tags=tags, likes=i, files=files, **extra)
                )
                + "\n"
            )


def peak_rss_of_diff(tmp_path: Path, count: int) -> int:
    old, new = tmp_path / f"old-{count}.jsonl", tmp_path / f"new-{count}.jsonl"
    synthetic_snapshot(old, count, 0)
    synthetic_snapshot(new, count, count // 10)
    # VmHWM starts again at exec; ru_maxrss would also count the pages the child shared with
    # this (large) test process between fork and exec, and hide the diff's own growth.
    code = (
        "import pathlib, sys\n"
        "from hfharvest.cli import main\n"
        "try:\n    main(['diff', sys.argv[1], sys.argv[2], '-q'])\n"
        "except SystemExit as e:\n"
        "    status = pathlib.Path('/proc/self/status').read_text().splitlines()\n"
        "    print(next(s for s in status if s.startswith('VmHWM')).split()[1], file=sys.stderr)\n"
        "    sys.exit(e.code)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(old), str(new)], capture_output=True, text=True, check=True
    )
    assert done.stdout.count("\n") == count // 10
    return int(done.stderr.strip().splitlines()[-1]) * 1024


@pytest.mark.slow
def test_memory_grows_with_ids_only(tmp_path: Path) -> None:
    """50,000 -> 100,000 records of ~1 KB: peak RSS grows by the index only (~160 B an id)."""
    small = peak_rss_of_diff(tmp_path, 50_000)
    large = peak_rss_of_diff(tmp_path, 100_000)
    per_record = (large - small) / 50_000
    assert per_record < 250, f"{per_record:.0f} bytes per extra record"


def test_every_line_fits_the_documented_schema(tmp_path: Path) -> None:
    import jsonschema

    schema = json.loads(runner.invoke(app, ["schema"]).stdout)
    validator = jsonschema.Draft202012Validator({**schema["$defs"]["diff_line"], "$defs": {}})
    old, new = write(tmp_path / "o.jsonl", OLD), write(tmp_path / "n.jsonl", NEW)
    lines = run(str(old), str(new), "--fields", "all").stdout.splitlines()
    assert len(lines) == 6
    for line in lines:
        validator.validate(json.loads(line))
