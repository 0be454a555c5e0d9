"""pytest fixtures for the emulator, opt-in: `pytest_plugins = ["hfharvest.testing.pytest_plugin"]`
in a project's `conftest.py` (installing hfharvest adds no fixture to anyone's tests).

`hub_catalog` is the default catalog, built once per session (do not mutate it: ask for a
`make_catalog()` of your own for drift); `hub` is an emulator serving it on a free port, started
for one test and stopped after it.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from hfharvest.testing.catalog import Catalog, make_catalog
from hfharvest.testing.server import HubEmulator


@pytest.fixture(scope="session")
def hub_catalog() -> Catalog:
    return make_catalog()


@pytest.fixture
def hub(hub_catalog: Catalog) -> Iterator[HubEmulator]:
    with HubEmulator(hub_catalog) as emulator:
        yield emulator
