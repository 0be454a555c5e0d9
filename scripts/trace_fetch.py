"""Trace one `hfharvest fetch --sort likes --sort downloads -o out.jsonl` call by call.

Runs the real CLI (in-process) against the offline emulator, with `sys.setprofile` (and
`threading.setprofile`, so the walks' threads count too) recording every call from one module of
the package into another. Import time is excluded: the package is imported, and one fetch run,
before the trace starts; the emulator's own modules (`hfharvest.testing`) are not counted.

Prints: the package's modules entered (of how many), the distinct calls between modules (hops:
caller function -> callee function across a module boundary), the distinct pairs of modules
calling each other, each pair listed, the pairs that call each other both ways (back and
forth: against a one-way flow), and the import rings of the package (from its source, imports
inside functions and for types included: `tests/test_layers.py` builds that graph). A generator
resumed counts as a call.
Usage: `.venv/bin/python scripts/trace_fetch.py`.
"""

from __future__ import annotations

import contextlib
import io
import os
import pkgutil
import sys
import tempfile
import threading
from pathlib import Path
from types import FrameType
from typing import Any

import hfharvest
from hfharvest.testing import HubEmulator, make_catalog

PACKAGE = "hfharvest"


def _module(frame: FrameType) -> str | None:
    name = frame.f_globals.get("__name__", "")
    if not isinstance(name, str) or not name.startswith(PACKAGE):
        return None
    if name.startswith(f"{PACKAGE}.testing") or name == "__main__":
        return None
    if frame.f_code.co_name == "<module>":
        return None  # an import, not a call of the fetch
    return name.removeprefix(f"{PACKAGE}.") or "__init__"


def _package_modules() -> list[str]:
    path = Path(hfharvest.__file__).parent
    found = pkgutil.walk_packages([str(path)])
    return sorted(m.name for m in found if not m.ispkg and not m.name.startswith("testing"))


def _run_fetch(endpoint: str, out: Path) -> None:
    from hfharvest.cli import main

    argv = ["fetch", "--endpoint", endpoint, "--sort", "likes", "--sort", "downloads"]
    with contextlib.redirect_stderr(io.StringIO()), contextlib.suppress(SystemExit):
        main([*argv, "-q", "-o", str(out)])


def main() -> None:
    os.environ.update({"HFHARVEST_BACKOFF_BASE": "0", "HFHARVEST_BACKOFF_MAX": "0"})
    for name in ("HF_TOKEN", "HF_ENDPOINT", "HF_HUB_OFFLINE", "HF_HOME", "HF_TOKEN_PATH"):
        os.environ.pop(name, None)
    entered: set[str] = set()
    hops: set[tuple[str, str, str, str]] = set()
    lock = threading.Lock()

    def profile(frame: FrameType, event: str, arg: Any) -> None:
        if event != "call":
            return
        callee = _module(frame)
        caller_frame = frame.f_back
        if callee is None or caller_frame is None:
            return
        caller = _module(caller_frame)
        with lock:
            entered.add(callee)
            if caller is not None and caller != callee:
                hops.add((caller, caller_frame.f_code.co_name, callee, frame.f_code.co_name))

    with (
        HubEmulator(make_catalog(models=3000)) as hub,
        tempfile.TemporaryDirectory() as folder,
    ):
        _run_fetch(hub.url, Path(folder) / "warm.jsonl")  # imports happen here, untraced
        threading.setprofile(profile)
        sys.setprofile(profile)
        try:
            _run_fetch(hub.url, Path(folder) / "out.jsonl")
        finally:
            sys.setprofile(None)
            threading.setprofile(None)
    pairs = sorted({(a, c) for a, _, c, _ in hops})
    modules = _package_modules()
    print(f"modules entered: {len(entered & set(modules))} of {len(modules)}")
    print(f"hops (distinct calls across modules): {len(hops)}")
    print(f"pairs of modules: {len(pairs)}")
    both_ways = sorted({tuple(sorted(pair)) for pair in pairs if pair[::-1] in pairs})
    print(f"pairs calling each other both ways: {len(both_ways)} {both_ways or ''}")
    for caller, callee in pairs:
        print(f"  {caller} -> {callee}")
    print(f"not entered: {', '.join(m for m in modules if m not in entered)}")
    sys.path.insert(0, str(Path(__file__).parent.parent / "tests"))
    from test_layers import imports, rings  # the graph from the source, as the test builds it

    found = rings(imports())
    print(f"import rings: {len(found)} {[sorted(ring) for ring in found] or ''}")


if __name__ == "__main__":
    main()
