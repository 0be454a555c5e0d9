"""An offline stand-in for the Hub's listing API, for tests, demos and users' own pipelines.

`make_catalog()` builds a deterministic synthetic catalog; `HubEmulator` serves it on 127.0.0.1
with the Hub's paging, errors and rate-limit headers, plus faults on demand; `python -m
hfharvest.testing` runs it from a shell. See the README's "Offline Hub emulator" section.
"""

from hfharvest.testing.catalog import Catalog, make_catalog
from hfharvest.testing.faults import Fault, parse_fault
from hfharvest.testing.server import HubEmulator

__all__ = ["Catalog", "Fault", "HubEmulator", "make_catalog", "parse_fault"]
