"""A run killed mid-walk, as `kill -9` (or the OOM killer) ends it: for the resume tests."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

from hfharvest.testing import HubEmulator

HFHARVEST = str(Path(sys.executable).with_name("hfharvest"))


def killed_after(hub: HubEmulator, requests: int, args: list[str], env: Mapping[str, str]) -> None:
    """Run `hfharvest fetch ARGS` and SIGKILL it once `hub` has logged `requests` requests (or
    10 s have passed)."""
    process = subprocess.Popen([HFHARVEST, "fetch", *args], env=env)
    deadline = time.monotonic() + 10
    while len(hub.requests_log) < requests and time.monotonic() < deadline:
        time.sleep(0.05)
    process.kill()
    process.wait(timeout=5)
