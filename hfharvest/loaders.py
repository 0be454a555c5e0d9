"""The record schema in the loaders' own terms: an Arrow schema, `datasets` Features, polars.

Derived from the shipped JSON Schema (`schema.json`), per repo type (a type's own keys are on its
records only), so a typed load of a snapshot never guesses: every key has one type whatever the
options of the run, timestamps are UTC timestamps, a key all null in one file is still typed.
In JSONL `found_by` is `{sort: rank}`: typed, it is a struct of the sorts hfharvest knows (a
sort it does not know is left out); `raw` is the API object as it came, which typed loaders
leave out of JSONL. In Parquet, `found_by` is a list of `{sort, rank}` (one type whatever the
sorts) and `raw` a JSON string.

Needs pyarrow (`pip install 'hfharvest[parquet]'`); `features` needs `datasets`, `polars_schema`
polars.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from functools import cache
from typing import TYPE_CHECKING, Any

import orjson

from hfharvest.errors import UsageError
from hfharvest.hub import REPO_TYPES, SORTS, repo_type_words
from hfharvest.schema import record_schema

if TYPE_CHECKING:
    import pyarrow as pa

TIMESTAMPS = frozenset({"created_at", "last_modified"})
PROVIDER_KEYS = ("provider", "provider_id", "status", "task")
# What installs pyarrow beside hfharvest wherever it was installed from (the `parquet` extra
# names no package index: `hfharvest[parquet]` fails from a clone).
INSTALL = "pip install pyarrow (with pipx: pipx inject hfharvest pyarrow)"


def require_pyarrow() -> None:
    """Refuse, before any request, what needs pyarrow where it is not installed."""
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        raise UsageError(
            "Parquet needs pyarrow, which is not installed",
            parameter="format",
            hint=f"install it with: {INSTALL}",
        ) from None


@cache
def record_keys(repo_type: str) -> tuple[str, ...]:
    """A record's keys, in their order, less `found_by` and `raw`: the common ones, then the
    type's own."""
    schema = orjson.loads(record_schema())
    common = [key for key in schema["required"] if key != "found_by"]
    own = next(
        rule["then"]["required"]
        for rule in schema["allOf"]
        if rule["if"]["properties"]["type"]["const"] == repo_type
    )
    return (*common, *own)


def arrow_schema(
    repo_type: str = "model", *, parquet: bool = False, raw: bool = False
) -> pa.Schema:
    """The Arrow schema of a snapshot's records of `repo_type`: of JSONL (`found_by` a struct of
    the known sorts), or of Parquet (`found_by` a list of {sort, rank}; with `raw`, a JSON
    string)."""
    import pyarrow as pa

    if repo_type not in REPO_TYPES:
        raise ValueError(f"repo_type must be one of {', '.join(REPO_TYPES)}, not {repo_type!r}")
    properties = orjson.loads(record_schema())["properties"]
    fields = [pa.field(key, _arrow_type(key, properties[key])) for key in record_keys(repo_type)]
    if parquet:
        found_by = pa.list_(pa.struct([("sort", pa.string()), ("rank", pa.int64())]))
    else:
        found_by = pa.struct([(sort, pa.int64()) for sort in SORTS])
    fields.append(pa.field("found_by", found_by))
    if parquet and raw:
        fields.append(pa.field("raw", pa.string()))
    return pa.schema(fields)


def _arrow_type(key: str, spec: dict[str, Any]) -> pa.DataType:
    import pyarrow as pa

    if key in TIMESTAMPS:
        return pa.timestamp("ms", tz="UTC")
    if key == "providers":
        return pa.list_(pa.struct([(name, pa.string()) for name in PROVIDER_KEYS]))
    kinds = spec.get("type", "string")  # an enum of strings (and null) is a string
    kind = next(k for k in ([kinds] if isinstance(kinds, str) else kinds) if k != "null")
    scalar = {
        "string": pa.string(),
        "integer": pa.int64(),
        "number": pa.float64(),
        "boolean": pa.bool_(),
    }
    if kind == "array":
        return pa.list_(scalar[spec["items"]["type"]])
    return scalar[kind]


def typed_schema(kind: str, repo_type: str) -> str:
    """One of the typed schemas of `repo_type`'s JSONL records, whole, as text its loader reads
    back: `arrow` (JSON: each field's type, and the schema as Arrow IPC in base64), `features`
    (`datasets.Features.to_dict()` as JSON), `polars` (an empty frame as polars serializes it,
    JSON) or `duckdb` (the `columns` of `read_json`)."""
    makers: dict[str, Callable[[str], str]] = {
        "arrow": _arrow_text,
        "features": lambda repo_type: json.dumps(features(repo_type).to_dict(), indent=2),
        "polars": _polars_text,
        "duckdb": lambda repo_type: _duckdb_columns(arrow_schema(repo_type)),
    }
    if kind not in makers:
        raise UsageError(f"`as` must be json, {', '.join(makers)}, not {kind!r}")
    if repo_type not in REPO_TYPES:
        raise UsageError(
            f"`repo_type` must be {repo_type_words()}, not {repo_type!r}",
            parameter="repo_type",
            value=repo_type,
        )
    require_pyarrow()
    try:
        return makers[kind](repo_type)
    except ImportError as exc:
        raise UsageError(f"`as` {kind} needs {exc.name}, which is not installed") from None


def _arrow_text(repo_type: str) -> str:
    schema = arrow_schema(repo_type)
    ipc = base64.b64encode(schema.serialize().to_pybytes()).decode()
    fields = {field.name: str(field.type) for field in schema}
    return json.dumps({"fields": fields, "ipc_base64": ipc}, indent=2)


def _polars_text(repo_type: str) -> str:
    import polars as pl

    empty = pl.from_arrow(arrow_schema(repo_type).empty_table())
    assert isinstance(empty, pl.DataFrame)
    return empty.serialize(format="json")


def _duckdb_columns(schema: pa.Schema) -> str:
    """The `columns` argument of DuckDB's `read_json` for `schema`, as SQL: `{'id': 'VARCHAR'}`."""
    columns = ", ".join(f"'{field.name}': '{_duckdb_type(field.type)}'" for field in schema)
    return "{" + columns + "}"


def _duckdb_type(kind: pa.DataType) -> str:
    import pyarrow as pa

    if pa.types.is_list(kind):
        return f"{_duckdb_type(kind.value_type)}[]"
    if pa.types.is_struct(kind):
        fields = ", ".join(f'"{field.name}" {_duckdb_type(field.type)}' for field in kind)
        return f"STRUCT({fields})"
    if pa.types.is_timestamp(kind):
        return "TIMESTAMPTZ"
    names = {"string": "VARCHAR", "int64": "BIGINT", "double": "DOUBLE", "bool": "BOOLEAN"}
    return names[str(kind)]


def features(repo_type: str = "model") -> Any:
    """The `datasets` Features of a JSONL snapshot of `repo_type` (for `load_dataset("json")`)."""
    import datasets

    return datasets.Features.from_arrow_schema(arrow_schema(repo_type))


def polars_schema(repo_type: str = "model") -> Any:
    """The polars schema of a JSONL snapshot of `repo_type` (for `polars.read_ndjson`)."""
    import polars as pl

    return pl.from_arrow(arrow_schema(repo_type).empty_table()).schema  # type: ignore[union-attr]
