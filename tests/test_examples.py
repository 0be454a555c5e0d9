"""Every console example in README.md and docs/ that shows its output is run, and its output is
the one shown (#27): the examples are what hfharvest says, not what it once said.

The rules, stated once:

- A ```console block (or a ```text block that begins with `$ `) is a sequence of `$ COMMAND`
  lines (a trailing `\\` continues one), each followed by what it prints, stdout and stderr
  together. The blocks of one page run in order, in one folder of their own (a file one writes,
  the next reads), against the emulator with its default catalog (`HF_ENDPOINT`), at 100
  columns, stderr no terminal.
- Not run: a command shown without output (shown for its form: a crontab's, an install line), a
  command ending in `&` (the emulator the test itself starts), `export` lines, and a command
  that pipes into `jq` where jq is not installed.
- An HTML comment before a block sets it up, unseen by a reader: `<!-- example emulator: ARGS
  -->` gives the block an emulator of its own, started with ARGS; `<!-- example setup: COMMAND
  -->` runs COMMAND first.
- Compared after normalisation, on both sides: the UTC time a line begins with is dropped; a URL
  cut short (`…`) becomes `URL…`, a port PORT, a duration (`0:00:41`) H:MM:SS, seconds (`1.7 s`)
  N s, a size (`1.5 MB`, `812 bytes`) SIZE, seconds in a table (`0.2` ending a line) S.S, a
  table's rule one `─`; runs of spaces are one; a shown line `...` matches the rest. Counts
  (1,377, 1,204) are compared as they are.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from hfharvest.testing import HubEmulator, make_catalog

pytestmark = pytest.mark.slow
ROOT = Path(__file__).parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BIN = Path(sys.executable).parent


@dataclass
class Example:
    command: str
    shown: list[str]


@dataclass
class Block:
    line: int
    examples: list[Example] = field(default_factory=list)
    emulator: list[str] | None = None
    setup: list[str] = field(default_factory=list)


def blocks(page: Path) -> list[Block]:
    found: list[Block] = []
    comments: list[str] = []
    lines = page.read_text().splitlines()
    index = 0
    while index < len(lines):
        line = lines[index]
        comment = re.fullmatch(r"<!-- example (emulator|setup): (.*) -->", line)
        if comment:
            comments.append(line)
        elif line == "```console" or (line == "```text" and lines[index + 1].startswith("$ ")):
            block = Block(index + 1)
            for each in comments:
                kind, text = re.fullmatch(r"<!-- example (\w+): (.*) -->", each).groups()  # type: ignore[union-attr]
                if kind == "emulator":
                    block.emulator = text.split()
                else:
                    block.setup.append(text)
            comments = []
            index = _examples(lines, index + 1, block)
            if block.examples:
                found.append(block)
        elif line.strip():
            comments = [] if not line.startswith("<!--") else comments
        index += 1
    return found


def _examples(lines: list[str], index: int, block: Block) -> int:
    """The block's examples, from `index` to its closing fence (whose index is returned)."""
    current: Example | None = None
    while lines[index] != "```":
        line = lines[index]
        if line.startswith("$ "):
            command = line[2:]
            while command.endswith("\\"):
                index += 1
                command = command[:-1] + lines[index].strip()
            current = Example(_without_comment(command), [])
            block.examples.append(current)
        elif current is not None:
            current.shown.append(line)
        index += 1
    block.examples[:] = [e for e in block.examples if _runnable(e)]
    return index


def _without_comment(command: str) -> str:
    return re.sub(r"\s+#\s[^'\"]*$", "", command).strip()


def _runnable(example: Example) -> bool:
    command = example.command
    return bool(example.shown) and not command.endswith("&") and not command.startswith("export ")


def normalised(lines: list[str]) -> list[str]:
    out = []
    for line in lines:
        line = re.sub(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ ", "", line)
        line = re.sub(r"https?://[^\s)]*…", "URL…", line)  # cut where its port's digits end it
        line = re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:PORT", line)
        line = re.sub(r"\b\d+:\d\d:\d\d\b", "H:MM:SS", line)
        line = re.sub(r"\b\d+(\.\d+)? s\b", "N s", line)
        line = re.sub(r"\b[\d.,]+ (bytes|KB|MB|GB)\b", "SIZE", line)
        line = re.sub(r"\s\d+\.\d$", " S.S", line)
        line = re.sub(r"^─+$", "─", line)  # a table's rule, as wide as its columns
        out.append(re.sub(r"\s+", " ", line).strip())
    while out and not out[-1]:
        out.pop()
    return out


def matches(shown: list[str], said: list[str]) -> bool:
    expected, actual = normalised(shown), normalised(said)
    if "..." in expected:
        cut = expected.index("...")
        return actual[:cut] == expected[:cut]
    return actual == expected


@pytest.fixture(scope="module")
def default_hub() -> Iterator[HubEmulator]:
    with HubEmulator(make_catalog()) as hub:
        yield hub


PAGE_BLOCKS = [(page, block) for page in PAGES for block in blocks(page)]


@pytest.mark.parametrize("page", sorted({page for page, _ in PAGE_BLOCKS}), ids=lambda p: p.name)
def test_every_example_says_what_its_page_shows(
    page: Path, default_hub: HubEmulator, tmp_path: Path
) -> None:
    for block in (b for p, b in PAGE_BLOCKS if p == page):
        if block.emulator is None:
            _run(block, default_hub.url, tmp_path, page)
            continue
        own = _emulator(block.emulator)
        try:
            _run(block, own[1], tmp_path, page)
        finally:
            own[0].terminate()
            own[0].wait()


def _emulator(args: list[str]) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "hfharvest.testing", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert process.stdout is not None
    return process, process.stdout.readline().strip()


def _run(block: Block, endpoint: str, folder: Path, page: Path) -> None:
    env = {
        "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
        "HOME": str(folder),
        "HF_ENDPOINT": endpoint,
        "COLUMNS": "100",
        "TERM": "dumb",
        "HFHARVEST_BACKOFF_BASE": "0",
        "HFHARVEST_BACKOFF_MAX": "0",
    }
    for command in block.setup:
        setup = subprocess.run(["bash", "-c", command], cwd=folder, env=env, capture_output=True)
        assert setup.returncode == 0, f"{page.name}:{block.line} setup {command}: {setup.stderr!r}"
    for example in block.examples:
        if "jq " in example.command and shutil.which("jq") is None:
            continue  # jq is no Python package: a machine without it checks the rest
        done = subprocess.run(  # stderr into stdout, as a terminal shows both
            ["bash", "-c", example.command],
            cwd=folder,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=120,
        )
        said = done.stdout.splitlines()
        assert matches(example.shown, said), (
            f"{page.name}:{block.line}: $ {example.command}\n--- shown\n"
            + "\n".join(example.shown)
            + "\n--- said\n"
            + "\n".join(said)
        )
