"""`make bench`: hfharvest against its baselines, whole processes, side by side in one run.

Each scenario starts the project's emulator (its own process), then runs hfharvest and each
baseline in turn, alternating, several times. It reports medians, the median of the pair-by-pair
ratios (this machine is noisy: a pair shares its moment) and each side's peak RSS, prints a table
and writes it as JSON under bench/results/. Nothing here is a test: the numbers are to be read.

Baselines: the bare loop of requests.get + orjson.loads over the same pages (the floor),
huggingface_hub's list_models (the official client), and the script hfharvest replaces (one
page of 1,000 per sort, one sort after the other); and hfharvest itself without its page worker
(HFHARVEST_PAGE_WORKER=0), to measure what the worker brings.
"""

from __future__ import annotations

import argparse
import compileall
import contextlib
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests

BIN = Path(sys.executable).parent
HFHARVEST = str(BIN / "hfharvest")
RESULTS = Path(__file__).parent / "results"
CLEAN_ENV = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}

FLOOR = """
import sys, requests, orjson
url = sys.argv[1] + "/api/models?sort=likes&limit=1000&full=true"
session, count = requests.Session(), 0
while url:
    answer = session.get(url, timeout=30)
    count += len(orjson.loads(answer.content))
    url = answer.links.get("next", {}).get("url")
print(count)
"""
LIST_MODELS = """
import sys
from huggingface_hub import HfApi
models = list(HfApi(endpoint=sys.argv[1], token=False).list_models(sort="likes", full=True))
print(len(models))
"""
REPLACED_SCRIPT = """
import sys, requests
seen = {}
for sort in ("likes", "downloads"):
    page = requests.get(sys.argv[1] + "/api/models", params={"inference_provider": "hf-inference",
                        "sort": sort, "limit": 1000}, timeout=30).json()
    for model in page:
        seen.setdefault(model["id"], model)
print(len(seen))
"""


@dataclass
class Run:
    seconds: float
    peak_rss_mb: float


@dataclass
class Scenario:
    name: str
    ours: list[Run] = field(default_factory=list)
    baseline_name: str = ""
    baseline: list[Run] = field(default_factory=list)
    notes: dict[str, object] = field(default_factory=dict)

    def summary(self) -> dict[str, object]:
        ratios = [o.seconds / b.seconds for o, b in zip(self.ours, self.baseline, strict=False)]
        return {
            "scenario": self.name,
            "baseline": self.baseline_name,
            "hfharvest_median_s": _median(r.seconds for r in self.ours),
            "baseline_median_s": _median(r.seconds for r in self.baseline),
            "median_ratio": round(statistics.median(ratios), 3) if ratios else None,
            "hfharvest_peak_rss_mb": _median(r.peak_rss_mb for r in self.ours),
            "baseline_peak_rss_mb": _median(r.peak_rss_mb for r in self.baseline),
            "runs": len(self.ours),
            **self.notes,
        }


def _median(values: Iterator[float]) -> float | None:
    items = list(values)
    return round(statistics.median(items), 3) if items else None


def timed(
    command: list[str],
    *,
    stdout: int | None = subprocess.DEVNULL,
    env: dict[str, str] | None = None,
) -> Run:
    """Run a whole process: its wall time and the peak RSS of it and its page workers.

    The process's own peak comes from wait4 (so only this child's); its children's (hfharvest's
    page workers) are sampled from /proc while it runs, and added: the sum of the peaks, an
    upper bound of what they held at once.
    """
    started = time.perf_counter()
    environment = {**CLEAN_ENV, **(env or {})}
    process = subprocess.Popen(command, stdout=stdout, stderr=subprocess.PIPE, env=environment)
    children: dict[int, int] = {}
    done = threading.Event()
    sampler = threading.Thread(target=_sample_children, args=(process.pid, children, done))
    sampler.start()
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    done.set()
    sampler.join()
    if os.waitstatus_to_exitcode(status) != 0:
        assert process.stderr is not None
        raise SystemExit(f"bench: {command[:3]} failed: {process.stderr.read().decode()[-500:]}")
    peak_kb = usage.ru_maxrss + sum(children.values())
    return Run(round(seconds, 3), round(peak_kb / 1024, 1))


def _sample_children(pid: int, peaks: dict[int, int], done: threading.Event) -> None:
    """Every 20 ms, the peak RSS (VmHWM, kB) so far of each child of `pid`."""
    while not done.wait(0.02):
        with contextlib.suppress(OSError):  # the process or a child ended meanwhile
            for task in Path(f"/proc/{pid}/task").iterdir():
                for child in (task / "children").read_text().split():
                    status = Path(f"/proc/{child}/status").read_text().splitlines()
                    hwm = next((line for line in status if line.startswith("VmHWM")), None)
                    if hwm is not None:  # a child that has exited but is not reaped has none
                        peaks[int(child)] = int(hwm.split()[1])


@contextmanager
def emulator(*args: str) -> Iterator[str]:
    process = subprocess.Popen(
        [str(BIN / "python"), "-m", "hfharvest.testing", "--port", "0", *args],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=CLEAN_ENV,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        python(FLOOR, url)  # warm the emulator's sorted orders: the first walk is not measured
        yield url
    finally:
        process.terminate()
        process.wait()


def python(code: str, *args: str) -> Run:
    return timed([str(BIN / "python"), "-c", code, *args])


def fetch(url: str, *args: str, env: dict[str, str] | None = None) -> Run:
    with tempfile.TemporaryDirectory() as folder:
        return timed([HFHARVEST, "fetch", "--endpoint", url, "-q", "-o",
                      f"{folder}/out.jsonl", "--no-manifest", *args], env=env)  # fmt: skip


def alternate(scenario: Scenario, ours: Callable[[], Run], baseline: Callable[[], Run],
              repeats: int) -> Scenario:  # fmt: skip
    for _ in range(repeats):
        scenario.ours.append(ours())
        scenario.baseline.append(baseline())
    return scenario


def throughput(repeats: int) -> list[Scenario]:
    with emulator("--models", "100000", "--datasets", "0", "--spaces", "0") as url:
        ours = lambda: fetch(url, "--sort", "likes")  # noqa: E731
        floor = alternate(Scenario("100k models, full, 1 sort, JSONL file", baseline_name=
                                   "requests+orjson loop (floor)"), ours,
                          lambda: python(FLOOR, url), repeats)  # fmt: skip
        official = alternate(Scenario("100k models, full, 1 sort, JSONL file", baseline_name=
                                      "huggingface_hub list_models"), ours,
                             lambda: python(LIST_MODELS, url), repeats // 2 + 1)  # fmt: skip
        in_process = lambda: fetch(url, "--sort", "likes", env={"HFHARVEST_PAGE_WORKER": "0"})  # noqa: E731
        worker = alternate(Scenario("100k models, full, 1 sort, JSONL file", baseline_name=
                                    "hfharvest without its page worker"), ours, in_process,
                           repeats)  # fmt: skip
    return [floor, official, worker]


def memory(repeats: int) -> list[Scenario]:
    """Peak RSS at 100k and 200k models: what each extra model costs, one sort and two."""
    scenarios = []
    for sorts in (("likes",), ("likes", "downloads")):
        runs: dict[int, list[Run]] = {}
        for size in (100_000, 200_000):
            with emulator("--models", str(size), "--datasets", "0", "--spaces", "0") as url:
                args = [a for s in sorts for a in ("--sort", s)]
                runs[size] = [fetch(url, *args) for _ in range(max(1, repeats // 2))]
        small = statistics.median(r.peak_rss_mb for r in runs[100_000])
        large = statistics.median(r.peak_rss_mb for r in runs[200_000])
        scenario = Scenario(f"memory, {len(sorts)} sort(s), 100k -> 200k models",
                            baseline_name="hfharvest at 100k")  # fmt: skip
        scenario.ours, scenario.baseline = runs[200_000], runs[100_000]
        scenario.notes["bytes_per_extra_model"] = round((large - small) * 1024 * 1024 / 100_000)
        scenarios.append(scenario)
    return scenarios


def concurrency(repeats: int) -> list[Scenario]:
    with emulator("--latency", "0.2") as url:
        common = ["--inference-provider", "hf-inference"]
        both = lambda: fetch(url, "--sort", "likes", "--sort", "downloads", *common)  # noqa: E731

        def one_after_the_other() -> Run:
            first = fetch(url, "--sort", "likes", *common)
            second = fetch(url, "--sort", "downloads", *common)
            return Run(first.seconds + second.seconds, max(first.peak_rss_mb, second.peak_rss_mb))

        scenario = alternate(Scenario("2 sorts x 1,377 models, 200 ms a page", baseline_name=
                                      "the same, one sort after the other"), both,
                             one_after_the_other, repeats)  # fmt: skip
        scenario.notes["requests"] = len(logged_during(url, both)[1])  # minimum: 2 pages a sort
        replaced = alternate(Scenario("hf-inference, 2 sorts (1,377 vs 1,204 models)",
                                      baseline_name="one page per sort, sequential (replaced)"),
                             both, lambda: python(REPLACED_SCRIPT, url), repeats)  # fmt: skip
    return [scenario, replaced]


def logged_during(url: str, run: Callable[[], Run]) -> tuple[Run, list[dict[str, Any]]]:
    """One more `run`, and the requests the emulator answered meanwhile (its request log)."""
    before = len(requests.get(f"{url}/_emulator/requests", timeout=10).json())
    result = run()
    return result, requests.get(f"{url}/_emulator/requests", timeout=10).json()[before:]


def pacing() -> list[Scenario]:
    """Quota 50 per 10 s window, a walk of 120 pages: time taken and 429s drawn."""
    with emulator("--quota", "50", "--window", "10", "--models", "12000", "--datasets", "0",
                  "--spaces", "0") as url:  # fmt: skip
        time.sleep(10.5)  # the warm-up spent budget: start on a fresh window
        run, log = logged_during(
            url, lambda: fetch(url, "--sort", "likes", "--sort", "downloads", "--page-size", "200")
        )
    scenario = Scenario("pacing: quota 50 / 10 s, 120 pages", baseline_name="quota arithmetic")
    scenario.ours = [run]
    scenario.baseline = [Run(20.0, 0.0)]  # 120 requests at 50 a window: 2 waits of 10 s
    scenario.notes.update(requests=len(log), answers_429=sum(r["status"] == 429 for r in log))
    return [scenario]


def diff_million() -> list[Scenario]:
    """Two snapshots of 1,000,000 records each: peak RSS of `hfharvest diff`."""
    with tempfile.TemporaryDirectory() as folder:
        paths = [Path(folder) / "old.jsonl", Path(folder) / "new.jsonl"]
        for index, path in enumerate(paths):
            with path.open("w") as out:
                for i in range(1_000_000):
                    license_ = "apache-2.0" if index and i % 50 == 0 else "mit"
                    out.write(json.dumps({
                        "id": f"org-{i % 9973}/model-{i}", "type": "model", "license": license_,
                        "likes": i % 1000 + index, "downloads": i, "tags": ["a", "license:mit"],
                        "files": ["README.md", "config.json", "model.safetensors"],
                        "found_by": {"likes": i + 1},
                    }) + "\n")  # fmt: skip
        run = timed([HFHARVEST, "diff", str(paths[0]), str(paths[1]), "-q"])
    scenario = Scenario("diff, 2 x 1,000,000 records", baseline_name="limit: 400 MB")
    scenario.ours = [run]
    scenario.baseline = [Run(run.seconds, 400.0)]
    return [scenario]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="runs per side (default 5)")
    parser.add_argument("--only", nargs="*", default=None,
                        help="throughput memory concurrency pacing diff")  # fmt: skip
    args = parser.parse_args()
    # As pip does when it installs a wheel: without it (PYTHONDONTWRITEBYTECODE, an editable
    # install) every hfharvest run would compile its modules again, which no installed one does.
    compileall.compile_dir(Path(__file__).parent.parent / "hfharvest", quiet=1)
    chosen = args.only or ["throughput", "memory", "concurrency", "pacing", "diff"]
    scenarios: list[Scenario] = []
    for name in chosen:
        print(f"bench: {name} ...", file=sys.stderr, flush=True)
        if name == "throughput":
            scenarios += throughput(args.repeats)
        elif name == "memory":
            scenarios += memory(args.repeats)
        elif name == "concurrency":
            scenarios += concurrency(args.repeats)
        elif name == "pacing":
            scenarios += pacing()
        elif name == "diff":
            scenarios += diff_million()
    rows = [s.summary() for s in scenarios]
    machine = f"{platform.node()} · {os.cpu_count()} cores · Python {platform.python_version()}"
    print_table(rows, machine)
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H%M%SZ")
    document = {"when": stamp, "machine": machine, "platform": platform.platform(), "rows": rows,
                "raw": [asdict(s) for s in scenarios]}  # fmt: skip
    (RESULTS / f"{stamp}.json").write_text(json.dumps(document, indent=2) + "\n")
    print(f"bench: wrote bench/results/{stamp}.json", file=sys.stderr)


def print_table(rows: list[dict[str, object]], machine: str) -> None:
    print(f"machine: {machine}")
    print("| scenario | baseline | hfharvest median | baseline median | median ratio | "
          "hfharvest peak RSS | baseline peak RSS | notes |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|")
    standard = {"scenario", "baseline", "hfharvest_median_s", "baseline_median_s", "runs",
                "median_ratio", "hfharvest_peak_rss_mb", "baseline_peak_rss_mb"}  # fmt: skip
    for row in rows:
        notes = ", ".join(f"{k}={v}" for k, v in row.items() if k not in standard)
        print(f"| {row['scenario']} | {row['baseline']} | {row['hfharvest_median_s']} s | "
              f"{row['baseline_median_s']} s | {row['median_ratio']} | "
              f"{row['hfharvest_peak_rss_mb']} MB | {row['baseline_peak_rss_mb']} MB | "
              f"{notes or ''} (n={row['runs']}) |")  # fmt: skip


if __name__ == "__main__":
    main()
