"""A user's script, type-checked against the installed wheel (#25): a misspelt option or a wrong
type fails `mypy --strict` naming the argument; a correct call passes; records are typed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any, Literal, get_type_hints

import pytest

from hfharvest.records import DatasetRecord, ModelRecord, Provider, SpaceRecord
from hfharvest.schema import record_schema

ROOT = Path(__file__).parent.parent
SCRIPTS = {
    "correct.py": """
import hfharvest

result = hfharvest.harvest(sort=["likes", "downloads"], inference_provider="hf-inference")
for record in result.records:
    reveal_type(record["downloads"])
    if record["type"] == "model":
        print([p["provider_id"] for p in record["providers"] or []])
with hfharvest.stream(repo_type="dataset", limit=5, since="2026-01-01") as records:
    for each in records:
        print(each["id"], each["found_by"])
options = hfharvest.Options(sort=("likes",), limit=5)
print(hfharvest.harvest(options, endpoint="http://127.0.0.1:1").unique)


def told(changes: hfharvest.Changes) -> None:
    print(changes.added, dict(changes.changed))


mirror = hfharvest.Mirror("served.parquet", max_age="1h", on_refresh=told, min_downloads=101)
served = mirror.get("meta-llama/Llama-3.1-8B-Instruct")
if served is not None and served["type"] == "model":
    print(served["providers"], mirror.age, mirror.last_error, mirror.refresh().removed)
several = hfharvest.harvest(repo_type=["model", "space"], min_count={"model": 10}, limit=5)
reveal_type(several)
print(several["space"].unique, hfharvest.harvest(repo_type="space").records[0]["id"])
""",
    "mirror_typo.py": 'import hfharvest\nhfharvest.Mirror("m.jsonl", max_age=[1])\n',
    "limit_as_text.py": 'import hfharvest\nhfharvest.harvest(limit="10")\n',
    "misspelt.py": 'import hfharvest\nhfharvest.harvest(sortt=["likes"])\n',
    "command_line_only.py": "import hfharvest\nhfharvest.stream(quiet=True)\n",
}


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel, built and installed offline into a folder of its own."""
    work = tmp_path_factory.mktemp("wheel")
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run(
        [*pip, "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-w", work, ROOT],
        check=True,
        capture_output=True,
    )
    wheel = next(work.glob("hfharvest-*.whl"))
    site = work / "site"
    subprocess.run(
        [*pip, "install", "--no-deps", "--no-index", "--target", site, wheel],
        check=True,
        capture_output=True,
    )
    assert (site / "hfharvest" / "py.typed").exists()
    return site


@pytest.mark.slow
def test_a_users_script_type_checks_against_the_installed_wheel(
    installed: Path, tmp_path: Path
) -> None:
    for name, text in SCRIPTS.items():
        (tmp_path / name).write_text(text)
    # The wheel's folder is where mypy finds hfharvest; what it imports (pyarrow has no types)
    # is followed silently, as for any installed package.
    checked = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--follow-imports=silent",
            "--cache-dir",
            str(tmp_path / "cache"),
            *SCRIPTS,
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
        env={"MYPYPATH": str(installed), "PATH": "/usr/bin:/bin"},
    )
    said = checked.stdout
    assert 'correct.py:6: note: Revealed type is "int | None"' in said, said
    several = "correct.py:25: note: Revealed type is \"dict[Literal['model'] | Literal["
    assert several in said and "hfharvest.api.HarvestResult[" in said, said
    notes = said.replace("correct.py:6: note", "").replace("correct.py:25: note", "")
    assert "correct.py" not in notes, said
    # harvest() is overloaded (one type: a result; several: a result a type)
    assert 'limit_as_text.py:2: error: No overload variant of "harvest" matches argument' in said
    misspelt = 'Unexpected keyword argument "sortt" for overloaded function "harvest"'
    assert f'misspelt.py:2: error: {misspelt}; did you mean "sort"?' in said
    assert 'command_line_only.py:2: error: Unexpected keyword argument "quiet"' in said
    assert 'mirror_typo.py:2: error: Argument "max_age" to "Mirror"' in said


def python_type(spec: dict[str, Any]) -> Any:
    """The Python type a record schema's property stands for."""
    if "enum" in spec:
        values = [value for value in spec["enum"] if value is not None]
        literal: Any = Literal[tuple(values)]
        return literal | None if None in spec["enum"] else literal
    kinds = spec.get("type")
    kinds = kinds if isinstance(kinds, list) else [kinds]
    simple = {"string": str, "integer": int, "number": float, "boolean": bool}
    found: list[Any] = []
    for kind in kinds:
        if kind == "array":
            items = spec.get("items", {})
            found.append(list[Provider] if items.get("type") == "object" else list[str])
        elif kind == "object":
            found.append(dict[str, int])
        elif kind != "null":
            found.append(simple[kind])
    result: Any = found[0]
    for more in found[1:]:
        result = result | more
    return result | None if "null" in kinds else result


def test_the_record_types_are_the_schemas() -> None:
    """`ModelRecord`, `DatasetRecord` and `SpaceRecord` hold the keys the record schema gives
    each type, each in the schema's type (`raw` aside: with `raw=True`, any JSON)."""
    schema = json.loads(record_schema())
    properties, common = schema["properties"], set(schema["required"])
    own = {
        rule["if"]["properties"]["type"]["const"]: rule["then"]["required"]
        for rule in schema["allOf"]
    }
    for record_type, name in (
        (ModelRecord, "model"),
        (DatasetRecord, "dataset"),
        (SpaceRecord, "space"),
    ):
        hints = get_type_hints(record_type)
        assert set(hints) == common | set(own[name]) | {"raw", "type"}, name
        assert hints["type"] == Literal[name]
        for key, hint in hints.items():
            if key not in ("raw", "type"):
                assert hint == python_type(properties[key]), f"{name}: {key}"
