"""The record schema that ships with the package: what `hfharvest schema` prints, what tests
validate against, and the fields `hfharvest diff` compares."""

from __future__ import annotations

import importlib.resources

import orjson

# The version of the record schema, which the manifest names: 2 made `gated` a string ("no"
# where it was `false`), so that every key has one type besides null.
RECORD_SCHEMA_VERSION = 2


def record_schema() -> bytes:
    """The JSON Schema every record fits, as shipped in the package (`hfharvest schema`)."""
    return importlib.resources.files("hfharvest").joinpath("schema.json").read_bytes()


def record_fields() -> list[str]:
    """Every key a record may have, in the schema's order."""
    return list(orjson.loads(record_schema())["properties"])
