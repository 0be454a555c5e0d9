"""The documentation stays true: every relative link resolves, every test it names exists."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
PAGES = [ROOT / "README.md", ROOT / "CONTRIBUTING.md", *sorted((ROOT / "docs").glob("*.md"))]
_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
_TEST_NAME = re.compile(r"`(test_\w+\.py)::((?:\w+::)?test_\w+)`")


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)  # no headings in code blocks
    return {slug(line.lstrip("#")) for line in text.splitlines() if line.startswith("#")}


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(page: Path) -> None:
    for target in _LINK.findall(page.read_text()):
        if re.match(r"[a-z]+:", target):
            continue  # https:, mailto: — not ours to check offline
        path, _, anchor = target.partition("#")
        linked = (page.parent / path).resolve() if path else page
        assert linked.exists(), f"{page.name}: {target} names no file"
        if anchor:
            assert anchor in anchors(linked), f"{page.name}: {target} names no heading"


def test_every_test_the_reliability_table_names_exists() -> None:
    named = _TEST_NAME.findall((ROOT / "docs" / "reliability.md").read_text())
    assert len(named) > 30
    for module, name in named:
        tree = ast.parse((ROOT / "tests" / module).read_text())
        defined = {
            f"{outer.name}::{inner.name}" if inner is not outer else inner.name
            for outer in tree.body
            for inner in (ast.walk(outer) if isinstance(outer, ast.ClassDef) else [outer])
            if isinstance(inner, ast.FunctionDef)
        }
        assert name in defined, f"docs/reliability.md names {module}::{name}, which is no test"


def test_the_demo_has_no_pipeline_whose_status_depends_on_timing() -> None:
    """Under pipefail, `writer | head` fails when head exits before the writer is done (141)."""
    script = (ROOT / "scripts" / "demo.sh").read_text()
    assert "pipefail" in script
    commands = re.sub(r"\\\n", " ", script)  # continuation lines joined
    early_readers = re.compile(r"\|\s*(head|sed\s+-n\s+'?\d+q|grep\s+-\w*[qm])\b")
    for line in commands.splitlines():
        code = line.split("#", 1)[0]
        assert not early_readers.search(code), f"an early-exiting reader in: {line.strip()}"
