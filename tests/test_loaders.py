"""Files that load anywhere (#18): every snapshot, in JSONL with the shipped schema and in Parquet,
loads in pyarrow, pandas, polars, DuckDB and `datasets`, alone and beside another of its type."""

from __future__ import annotations

import itertools
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import hfharvest
from hfharvest.cli import app
from hfharvest.testing import HubEmulator, make_catalog

pytestmark = pytest.mark.slow
pyarrow = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")
pj = pytest.importorskip("pyarrow.json")
runner = CliRunner()
TYPES = ("model", "dataset", "space")
OPTIONS = {  # a snapshot per set of options
    "default": [],
    "all-fields": ["--all-fields"],
    "expand": ["--expand", "likes", "--expand", "createdAt", "--sort", "likes"],
}
RECORD_DOCS = (Path(__file__).parent.parent / "docs" / "record.md").read_text()


@pytest.fixture(scope="module")
def snapshots(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str, str], Path]:
    """(type, options, suffix) -> a snapshot the emulator gave."""
    folder = tmp_path_factory.mktemp("snapshots")
    made: dict[tuple[str, str, str], Path] = {}
    with HubEmulator(make_catalog(models=400, datasets=150, spaces=150, hf_inference=50)) as hub:
        for repo_type, (name, options), suffix in itertools.product(
            TYPES, OPTIONS.items(), ("jsonl", "parquet")
        ):
            path = folder / f"{repo_type}s-{name}.{suffix}"
            args = ["--type", repo_type, "-q", "--no-token", *options, "-o", str(path)]
            result = runner.invoke(app, ["fetch", "--endpoint", hub.url, *args])
            assert result.exit_code == 0, result.stderr
            made[repo_type, name, suffix] = path
    return made


def load_jsonl(paths: list[Path], repo_type: str, loader: str) -> int:
    schema = hfharvest.arrow_schema(repo_type)
    options = pj.ParseOptions(explicit_schema=schema, unexpected_field_behavior="ignore")
    if loader == "pyarrow":
        tables = [pj.read_json(path, parse_options=options) for path in paths]
        return pyarrow.concat_tables(tables).num_rows  # type: ignore[no-any-return]
    if loader == "pandas":
        return sum(len(pj.read_json(path, parse_options=options).to_pandas()) for path in paths)
    if loader == "polars":
        polars = pytest.importorskip("polars")
        frames = [
            polars.read_ndjson(path, schema=hfharvest.polars_schema(repo_type)) for path in paths
        ]
        return polars.concat(frames).height  # type: ignore[no-any-return]
    if loader == "duckdb":
        duckdb = pytest.importorskip("duckdb")
        files = ", ".join(f"'{path}'" for path in paths)
        rows = duckdb.sql(f"SELECT count(*) FROM read_json([{files}], union_by_name = true)")
        return rows.fetchall()[0][0]  # type: ignore[no-any-return]
    datasets = pytest.importorskip("datasets")
    return datasets.load_dataset(  # type: ignore[no-any-return]
        "json",
        data_files=[str(p) for p in paths],
        features=hfharvest.features(repo_type),
        split="train",
        cache_dir=str(paths[0].parent / ".cache"),
    ).num_rows


def load_parquet(paths: list[Path], loader: str) -> int:
    if loader == "pyarrow":
        return pyarrow.concat_tables([pq.read_table(p) for p in paths]).num_rows  # type: ignore[no-any-return]
    if loader == "pandas":
        pandas = pytest.importorskip("pandas")
        return len(pandas.concat([pandas.read_parquet(p) for p in paths]))
    if loader == "polars":
        polars = pytest.importorskip("polars")
        return polars.concat([polars.read_parquet(p) for p in paths]).height  # type: ignore[no-any-return]
    if loader == "duckdb":
        duckdb = pytest.importorskip("duckdb")
        files = ", ".join(f"'{path}'" for path in paths)
        return duckdb.sql(f"SELECT count(*) FROM read_parquet([{files}])").fetchall()[0][0]  # type: ignore[no-any-return]
    datasets = pytest.importorskip("datasets")
    return datasets.load_dataset(  # type: ignore[no-any-return]
        "parquet",
        data_files=[str(p) for p in paths],
        split="train",
        cache_dir=str(paths[0].parent / ".cache"),
    ).num_rows


def rows(path: Path) -> int:
    if path.suffix == ".parquet":
        return pq.ParquetFile(path).metadata.num_rows  # type: ignore[no-any-return]
    return len(path.read_text().splitlines())


LOADERS = ("pyarrow", "pandas", "polars", "duckdb", "datasets")


@pytest.mark.parametrize("loader", LOADERS)
@pytest.mark.parametrize("suffix", ["jsonl", "parquet"])
@pytest.mark.parametrize("repo_type", TYPES)
def test_every_snapshot_loads_alone_and_with_each_other_of_its_type(
    snapshots: dict[tuple[str, str, str], Path], repo_type: str, suffix: str, loader: str
) -> None:
    paths = [snapshots[repo_type, name, suffix] for name in OPTIONS]

    def load(chosen: list[Path]) -> int:
        if suffix == "parquet":
            return load_parquet(chosen, loader)
        return load_jsonl(chosen, repo_type, loader)

    for path in paths:
        assert load([path]) == rows(path)
    for pair in itertools.combinations(paths, 2):
        assert load(list(pair)) == sum(rows(p) for p in pair), pair


def test_timestamps_load_as_timestamps(snapshots: dict[tuple[str, str, str], Path]) -> None:
    polars = pytest.importorskip("polars")
    for suffix in ("jsonl", "parquet"):
        path = snapshots["model", "all-fields", suffix]
        schema = hfharvest.polars_schema("model")
        frame = (
            polars.read_parquet(path)
            if suffix == "parquet"
            else polars.read_ndjson(path, schema=schema)
        )
        assert frame.schema["created_at"] == polars.Datetime("ms", "UTC")
        assert frame["created_at"].drop_nulls().len() > 0


def test_a_parquet_and_a_jsonl_of_the_same_run_hold_the_same_records(
    snapshots: dict[tuple[str, str, str], Path],
) -> None:
    from hfharvest.sinks.parquet import parquet_records

    for name in OPTIONS:
        jsonl = [
            json.loads(line) for line in snapshots["model", name, "jsonl"].read_text().splitlines()
        ]
        parquet = list(parquet_records(snapshots["model", name, "parquet"]))
        assert parquet == jsonl
        both = [str(snapshots["model", name, suffix]) for suffix in ("jsonl", "parquet")]
        result = runner.invoke(app, ["diff", *both, "--fields", "all"])
        assert result.exit_code == 0 and result.stdout == ""
        assert "changed 0" in result.stderr and "added 0" in result.stderr


def test_write_parquet_from_python_gives_the_cli_s_file(
    snapshots: dict[tuple[str, str, str], Path], tmp_path: Path
) -> None:
    records = [
        json.loads(line) for line in snapshots["model", "default", "jsonl"].read_text().splitlines()
    ]
    written = hfharvest.write_parquet(records, tmp_path / "m.parquet", repo_type="model")
    assert written.records == len(records)
    cli = pq.read_table(snapshots["model", "default", "parquet"])
    assert pq.read_table(tmp_path / "m.parquet").equals(cli)


def test_the_record_docs_one_liners_run(
    snapshots: dict[tuple[str, str, str], Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (block,) = re.findall(r"## Loading it.*?```python\n(.*?)```", RECORD_DOCS, flags=re.DOTALL)
    names = {
        "models.jsonl": ("model", "default", "jsonl"),
        "models-all-fields.jsonl": ("model", "all-fields", "jsonl"),
        "models.parquet": ("model", "default", "parquet"),
        "models-all-fields.parquet": ("model", "all-fields", "parquet"),
    }
    for name, key in names.items():
        (tmp_path / name).write_bytes(snapshots[key].read_bytes())
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, Any] = {}
    exec(compile(block, "docs/record.md", "exec"), namespace)
    assert namespace["dataset"].num_rows == 2 * rows(snapshots["model", "default", "parquet"])


def test_parquet_without_pyarrow_and_unknown_suffixes_are_refused_before_any_request(
    hub: HubEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("x.csv", "x.parquet.gz"):
        result = runner.invoke(app, ["fetch", "--endpoint", hub.url, "-o", str(tmp_path / name)])
        assert result.exit_code == 2 and "hfharvest writes .json, .jsonl" in result.stderr
    allowed = runner.invoke(
        app,
        [
            "fetch",
            "--endpoint",
            hub.url,
            "--format",
            "jsonl",
            "-o",
            str(tmp_path / "x.csv"),
            "-q",
            "--limit",
            "3",
        ],
    )
    assert allowed.exit_code == 0  # the format named: any name goes
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # as if not installed
    hub.requests_log.clear()
    result = runner.invoke(app, ["fetch", "--endpoint", hub.url, "-o", str(tmp_path / "x.parquet")])
    assert result.exit_code == 2 and hub.requests_log == []
    assert "pip install pyarrow (with pipx: pipx inject hfharvest pyarrow)" in result.stderr


def test_an_older_snapshot_with_gated_false_is_not_all_changed(tmp_path: Path) -> None:
    old, new = tmp_path / "old.jsonl", tmp_path / "new.jsonl"
    old.write_text('{"id": "a/b", "gated": false, "found_by": {"likes": 1}}\n')
    new.write_text('{"id": "a/b", "gated": "no", "found_by": {"likes": 1}}\n')
    result = runner.invoke(app, ["diff", str(old), str(new), "--fields", "all"])
    assert result.exit_code == 0 and result.stdout == ""


@pytest.mark.parametrize("suffix", ["jsonl", "parquet"])
def test_numbers_past_what_loaders_hold_never_fail_a_run_or_a_load(
    tmp_path: Path, suffix: str
) -> None:
    """One rule for every number (#27): 2**63 + 1, 2**64 and 1e400 in a listing."""
    path = tmp_path / f"models.{suffix}"
    with HubEmulator(make_catalog(models=300, hf_inference=50), faults=["out-of-range@1"]) as hub:
        args = ["--no-token", "--sort", "likes", "--all-fields", "-o", str(path)]
        result = runner.invoke(app, ["fetch", "--endpoint", hub.url, *args])
        first, second = _first_two(hub)
    assert result.exit_code == 0, result.stderr
    warned = [line for line in result.stderr.splitlines() if "past what" in line]
    nulled = [line for line in warned if "written as null" in line]
    skipped = [line for line in warned if "skipped" in line]
    assert len(nulled) == 1 and first in nulled[0] and "parameters, context_length" in nulled[0]
    assert len(skipped) == 1 and second in skipped[0] and "likes" in skipped[0]
    assert [first in line or second in line for line in warned] == [True, True]  # one each
    if suffix == "parquet":
        rows = pq.read_table(path).to_pylist()
    else:
        for loader in ("pyarrow", "polars", "duckdb", "datasets"):
            assert load_jsonl([path], "model", loader) == 299, loader
        rows = [json.loads(line) for line in path.read_text().splitlines()]
    by_id = {row["id"]: row for row in rows}
    assert len(by_id) == 299 and second not in by_id  # likes 1e400: skipped, as today
    assert by_id[first]["parameters"] is None and by_id[first]["context_length"] is None


def _first_two(hub: HubEmulator) -> tuple[str, str]:
    """The ids of the first two entries of the likes walk's first page."""
    ordered = sorted(hub.catalog.repos["model"], key=lambda m: (-m["likes"], m["_id"]))
    return ordered[0]["id"], ordered[1]["id"]


def _schema_text(kind: str, repo_type: str) -> str:
    result = runner.invoke(app, ["schema", "--as", kind, "--type", repo_type])
    assert result.exit_code == 0, result.stderr
    return result.stdout


@pytest.mark.parametrize("repo_type", TYPES)
def test_each_schema_form_is_whole_and_loads_back(
    snapshots: dict[tuple[str, str, str], Path], repo_type: str
) -> None:
    import base64
    import io

    polars = pytest.importorskip("polars")
    datasets = pytest.importorskip("datasets")
    duckdb = pytest.importorskip("duckdb")
    expected = hfharvest.arrow_schema(repo_type)
    arrow = json.loads(_schema_text("arrow", repo_type))
    assert "omitted" not in json.dumps(arrow) and set(arrow["fields"]) == set(expected.names)
    ipc = pyarrow.py_buffer(base64.b64decode(arrow["ipc_base64"]))
    assert pyarrow.ipc.read_schema(ipc).equals(expected)
    features = datasets.Features.from_dict(json.loads(_schema_text("features", repo_type)))
    assert features == hfharvest.features(repo_type)
    frame = polars.DataFrame.deserialize(
        io.StringIO(_schema_text("polars", repo_type)), format="json"
    )
    assert frame.schema == hfharvest.polars_schema(repo_type)
    path = snapshots[repo_type, "all-fields", "jsonl"]
    columns = _schema_text("duckdb", repo_type).strip()
    typed = duckdb.sql(f"select * from read_json('{path}', columns={columns})")
    assert typed is not None and typed.columns == expected.names
    assert typed.fetchall() and len(typed.fetchall()) == len(path.read_text().splitlines())


def test_a_parquet_file_says_what_made_it_and_equal_answers_give_equal_bytes(
    tmp_path: Path,
) -> None:
    paths = [tmp_path / "a.parquet", tmp_path / "b.parquet"]
    with HubEmulator(make_catalog(models=300, hf_inference=50)) as hub:
        for path in paths:
            args = ["--sort", "likes", "--inference-provider", "hf-inference", "-o", str(path)]
            result = runner.invoke(app, ["fetch", "--endpoint", hub.url, "--token", "hf_x", *args])
            assert result.exit_code == 0, result.stderr
    assert paths[0].read_bytes() == paths[1].read_bytes()
    about = json.loads(pq.read_metadata(paths[0]).metadata[b"hfharvest"])
    assert about["version"] == hfharvest.__version__ and about["type"] == "model"
    assert about["request"]["inference_providers"] == ["hf-inference"]
    assert about["request"]["sorts"] == ["likes"] and "hf_x" not in paths[0].read_bytes().decode(
        "latin-1"
    )


# The console entry, run so that it says at its end which of numpy and pandas it had imported.
IMPORTS_REPORTED = """
import atexit, sys
def report():
    print(*(name for name in ("numpy", "pandas") if sys.modules.get(name)), file=sys.stderr)
atexit.register(report)
sys.argv[0] = "hfharvest"
from hfharvest.entry import main
main()
"""


def test_the_console_writes_parquet_without_numpy_and_pandas_where_they_are_installed(
    tmp_path: Path,
) -> None:
    pytest.importorskip("pandas")  # with numpy: both installed, as beside an analyst's tools
    output = tmp_path / "m.parquet"
    with HubEmulator(make_catalog(models=300, hf_inference=50)) as hub:
        for arguments in (
            ["fetch", "--endpoint", hub.url, "-o", str(output)],
            ["diff", *[str(output)] * 2],
        ):
            done = subprocess.run(
                [sys.executable, "-c", IMPORTS_REPORTED, *arguments],
                capture_output=True,
                text=True,
                check=False,
            )
            assert done.returncode == 0, done.stderr
            assert done.stderr.splitlines()[-1] == ""  # neither imported
    assert rows(output) == 300
    features = subprocess.run(
        [sys.executable, "-c", IMPORTS_REPORTED, "schema", "--as", "features"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert features.returncode == 0 and '"dtype": "string"' in features.stdout
