"""hfharvest: harvest the Hugging Face Hub catalog, every sort walked to the end and merged.

From Python::

    import hfharvest

    result = hfharvest.harvest(sort=["likes", "downloads"], inference_provider="hf-inference")
    for record in result.records:
        ...

`harvest()` and `stream()` live in `hfharvest.api`, `Mirror` in `hfharvest.mirror`; the errors
they raise in `hfharvest.errors`. They are loaded when first asked for, so that `hfharvest
schema` and `hfharvest diff` do not pay for the HTTP stack.
"""

from __future__ import annotations

import importlib
import logging
from typing import TYPE_CHECKING, Any

from hfharvest.version import __version__

if TYPE_CHECKING:
    from hfharvest.api import HarvestResult, RecordStream, harvest, stream, write_parquet
    from hfharvest.errors import (
        HarvestError,
        HubError,
        HubResponseError,
        OptionTypeError,
        OutputError,
        SmallerSetError,
        TooFewRecordsError,
        UsageError,
    )
    from hfharvest.loaders import arrow_schema, features, polars_schema
    from hfharvest.mirror import Changes, Mirror
    from hfharvest.options import Options, PythonOptions
    from hfharvest.outcome import SortStats
    from hfharvest.records import DatasetRecord, ModelRecord, Provider, SpaceRecord

__all__ = [
    "Changes",
    "DatasetRecord",
    "HarvestError",
    "HarvestResult",
    "HubError",
    "HubResponseError",
    "Mirror",
    "ModelRecord",
    "OptionTypeError",
    "Options",
    "OutputError",
    "Provider",
    "PythonOptions",
    "RecordStream",
    "SmallerSetError",
    "SortStats",
    "SpaceRecord",
    "TooFewRecordsError",
    "UsageError",
    "__version__",
    "arrow_schema",
    "features",
    "harvest",
    "polars_schema",
    "stream",
    "write_parquet",
]
_HOMES = {
    "harvest": "api",
    "stream": "api",
    "HarvestResult": "api",
    "RecordStream": "api",
    "write_parquet": "api",
    "Mirror": "mirror",
    "Changes": "mirror",
    "arrow_schema": "loaders",
    "features": "loaders",
    "polars_schema": "loaders",
    "SortStats": "outcome",
    "Options": "options",
    "PythonOptions": "options",
    "ModelRecord": "records",
    "DatasetRecord": "records",
    "SpaceRecord": "records",
    "Provider": "records",
    "HarvestError": "errors",
    "HubError": "errors",
    "HubResponseError": "errors",
    "OptionTypeError": "errors",
    "OutputError": "errors",
    "TooFewRecordsError": "errors",
    "SmallerSetError": "errors",
    "UsageError": "errors",
}

# A library's warnings go to the `hfharvest` logger; with no handler configured by the
# application, Python would print them to stderr (its "last resort"): a library prints nothing.
logging.getLogger("hfharvest").addHandler(logging.NullHandler())


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'hfharvest' has no attribute {name!r}")
    return getattr(importlib.import_module(f"hfharvest.{home}"), name)
