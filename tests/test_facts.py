"""Each fact once (#25): every default comes from the options table (or the Hub's facts), and the
repo types are listed in `hub` alone."""

from __future__ import annotations

import ast
from dataclasses import MISSING, fields
from pathlib import Path

import pytest

from hfharvest.bounds import Bounds
from hfharvest.query import Query
from hfharvest.retry import RetryPolicy
from hfharvest.settings import Settings
from hfharvest.sinks.target import OutputTarget
from hfharvest.transport import Transport
from hfharvest.walk import WalkPlan

PACKAGE = Path(__file__).parent.parent / "hfharvest"
REPO_TYPES = {"model", "dataset", "space"}


@pytest.mark.parametrize(
    "record", [Settings, Query, Transport, RetryPolicy, OutputTarget, Bounds, WalkPlan]
)
def test_the_records_made_from_the_options_hold_no_default_of_their_own(record: type) -> None:
    for each in fields(record):
        assert each.default is MISSING and each.default_factory is MISSING, each.name


def listed_repo_types(tree: ast.AST) -> list[int]:
    """Lines where a tuple, list or set literal names every repo type (type annotations aside)."""
    annotations = {
        id(node.slice) for node in ast.walk(tree) if isinstance(node, ast.Subscript)
    }  # Literal["model", ...] is a type, not a list of values
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Tuple | ast.List | ast.Set) and id(node) not in annotations:
            words = {
                e.value.rstrip("s")
                for e in node.elts
                if isinstance(e, ast.Constant) and isinstance(e.value, str)
            }
            if words >= REPO_TYPES:
                found.append(node.lineno)
    return found


def test_the_repo_types_are_listed_in_hub_alone() -> None:
    for path in PACKAGE.rglob("*.py"):
        if path.name != "hub.py":
            assert listed_repo_types(ast.parse(path.read_text())) == [], path
