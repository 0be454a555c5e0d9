"""`make bench`: hfharvest against its baselines, whole processes, side by side in one run.

Each scenario starts the project's emulator (its own process), then runs hfharvest and each
baseline in turn, alternating, several times. It reports medians, the median of the pair-by-pair
ratios (this machine is noisy: a pair shares its moment) and each side's peak RSS, prints a table
and writes it as JSON under bench/results/. Nothing here is a test: the numbers are to be read.

What users feel is the network and the quota, so the wall-clock race is run at realistic
latency (the emulator answering in 0.3 s a page; the Hub takes 1-3 s): hfharvest against the
bare loop of requests.get + orjson.loads over the same pages (the floor). On loopback, where the
emulator and the client share the machine, only CPU seconds are compared, against
huggingface_hub's list_models (the official client) and the floor. Then memory, concurrency of
sorts, walks that stop at a bound, pacing under a quota, and `hfharvest diff` on a million
records.
"""

from __future__ import annotations

import argparse
import compileall
import contextlib
import functools
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
ROOT = Path(__file__).parent.parent
RESULTS = ROOT / "bench" / "results"
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

# harvest() against the same fetch writing JSONL to a file, alternating in one process: CPU seconds
# of each (time.process_time: every thread of the process), imports and a warm-up excluded.
IN_PROCESS = """
import gc, json, sys, tempfile, time
from pathlib import Path
import hfharvest
from hfharvest.cli import run
url, repeats, tuned = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "tuned"
if tuned:  # the garbage collector as `entry` tunes the hfharvest process
    gc.freeze()
    gc.set_threshold(100_000, 50, 100)
folder = Path(tempfile.mkdtemp())
def to_file():
    out = str(folder / "m.jsonl")
    run(["fetch", "--endpoint", url, "--sort", "likes", "-q", "--no-token", "-o", out])
def to_python():
    assert hfharvest.harvest(sort="likes", endpoint=url, token=False).unique
times = {"harvest": [], "jsonl": []}
to_file(); to_python()  # warm-up: every import done
for _ in range(repeats):
    for name, call in (("harvest", to_python), ("jsonl", to_file)):
        began = time.process_time()
        call()
        times[name].append(time.process_time() - began)
print(json.dumps(times))
"""

BOUNDS = """
from hfharvest.testing import make_catalog
models = make_catalog(30_000, 0, 0).repos["model"]
print(sorted((m["downloads"] for m in models), reverse=True)[len(models) // 10 - 1])
print(sorted((m["lastModified"] for m in models), reverse=True)[len(models) // 20 - 1])
"""


@dataclass
class Run:
    seconds: float
    peak_rss_mb: float
    cpu_seconds: float = 0.0  # user + sys, its children's included
    sys_seconds: float = 0.0  # of which in the kernel
    children: int = 0  # processes it started


@dataclass
class Scenario:
    name: str
    ours: list[Run] = field(default_factory=list)
    baseline_name: str = ""
    baseline: list[Run] = field(default_factory=list)
    notes: dict[str, object] = field(default_factory=dict)

    def summary(self) -> dict[str, object]:
        pairs = list(zip(self.ours, self.baseline, strict=False))
        ratios = [o.seconds / b.seconds for o, b in pairs]
        cpu_ratios = [o.cpu_seconds / b.cpu_seconds for o, b in pairs if b.cpu_seconds]
        return {
            "scenario": self.name,
            "baseline": self.baseline_name,
            "hfharvest_median_s": _median(r.seconds for r in self.ours),
            "baseline_median_s": _median(r.seconds for r in self.baseline),
            "median_ratio": round(statistics.median(ratios), 3) if ratios else None,
            "hfharvest_peak_rss_mb": _median(r.peak_rss_mb for r in self.ours),
            "baseline_peak_rss_mb": _median(r.peak_rss_mb for r in self.baseline),
            "hfharvest_median_cpu_s": _median(r.cpu_seconds for r in self.ours),
            "baseline_median_cpu_s": _median(r.cpu_seconds for r in self.baseline),
            "median_cpu_ratio": round(statistics.median(cpu_ratios), 3) if cpu_ratios else None,
            "hfharvest_child_processes": max((r.children for r in self.ours), default=0),
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
    core: int | None = None,
) -> Run:
    """Run a whole process: its wall time, CPU time, peak RSS, and the processes it started.

    Its own peak RSS and CPU time come from wait4 (CPU time includes its waited-for children);
    any children it starts are sampled from /proc while it runs, counted, and their peaks added:
    the sum of the peaks, an upper bound of what they held at once.
    """
    started = time.perf_counter()
    environment = {**CLEAN_ENV, **(env or {})}
    process = subprocess.Popen(
        command, stdout=stdout, stderr=subprocess.PIPE, env=environment, preexec_fn=pinned(core)
    )
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
    cpu = usage.ru_utime + usage.ru_stime
    return Run(
        round(seconds, 3),
        round(peak_kb / 1024, 1),
        round(cpu, 3),
        round(usage.ru_stime, 3),
        len(children),
    )


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


def pinned(core: int | None) -> Callable[[], None] | None:
    """For Popen: the child runs on `core` alone (None: wherever the OS puts it)."""
    if core is None:
        return None
    return lambda: os.sched_setaffinity(0, {core})


def two_cores() -> tuple[int, int] | tuple[None, None]:
    """A core for hfharvest and another for the emulator, where the OS lets a process choose."""
    if not hasattr(os, "sched_getaffinity") or len(os.sched_getaffinity(0)) < 2:
        return None, None
    first, second, *_ = sorted(os.sched_getaffinity(0))
    return first, second


@contextmanager
def emulator(*args: str, core: int | None = None) -> Iterator[str]:
    process = subprocess.Popen(
        [str(BIN / "python"), "-m", "hfharvest.testing", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=CLEAN_ENV,
        preexec_fn=pinned(core),
    )
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


def fetch(
    url: str,
    *args: str,
    env: dict[str, str] | None = None,
    name: str = "out.jsonl",
    program: str = HFHARVEST,
    core: int | None = None,
) -> Run:
    with tempfile.TemporaryDirectory() as folder:
        return timed(
            [
                program,
                "fetch",
                "--endpoint",
                url,
                "-q",
                "-o",
                f"{folder}/{name}",
                "--no-manifest",
                *args,
            ],
            env=env,
            core=core,
        )


def alternate(
    scenario: Scenario, ours: Callable[[], Run], baseline: Callable[[], Run], repeats: int
) -> Scenario:
    for _ in range(repeats):
        scenario.ours.append(ours())
        scenario.baseline.append(baseline())
    return scenario


def latency(repeats: int) -> list[Scenario]:
    """What a user waits for: 30 pages of 1,000 full models at 0.3 s a page, one sort."""
    with emulator(
        "--models", "30000", "--datasets", "0", "--spaces", "0", "--latency", "0.3"
    ) as url:
        floor = alternate(
            Scenario(
                "30k models, full, 1 sort, 0.3 s a page",
                baseline_name="requests+orjson loop (floor)",
            ),
            lambda: fetch(url, "--sort", "likes"),
            lambda: python(FLOOR, url),
            repeats,
        )
    return [floor]


def cpu(repeats: int) -> list[Scenario]:
    """CPU seconds of a 100k-model walk on loopback, against the official client and the floor."""
    with emulator("--models", "100000", "--datasets", "0", "--spaces", "0") as url:
        ours = lambda: fetch(url, "--sort", "likes")  # noqa: E731
        official = alternate(
            Scenario(
                "CPU: 100k models, full, 1 sort, loopback",
                baseline_name="huggingface_hub list_models",
            ),
            ours,
            lambda: python(LIST_MODELS, url),
            repeats // 2 + 1,
        )
        floor = alternate(
            Scenario(
                "CPU: 100k models, full, 1 sort, loopback",
                baseline_name="requests+orjson loop (floor)",
            ),
            ours,
            lambda: python(FLOOR, url),
            repeats,
        )
    return [official, floor]


def bounded(repeats: int) -> list[Scenario]:
    """Walks that stop at a bound, against the full walk they filter: pages asked, and time."""
    # The bounds, from the emulator's own catalog (same seed, same data), in a process of its own:
    # built here, its pages would count in the peak RSS of every process this one starts next.
    quantiles = subprocess.run(
        [str(BIN / "python"), "-c", BOUNDS], capture_output=True, text=True, check=True
    ).stdout.split()
    downloads, changed = quantiles
    rows = []
    with emulator(
        "--models", "30000", "--datasets", "0", "--spaces", "0", "--latency", "0.3"
    ) as url:
        for name, sort, bound in (
            ("--min-downloads (10 % pass)", "downloads", ("--min-downloads", str(downloads))),
            ("--since (5 % pass)", "lastModified", ("--since", changed)),
        ):
            ours = functools.partial(fetch, url, "--sort", sort, *bound)
            full = functools.partial(fetch, url, "--sort", sort)
            scenario = alternate(
                Scenario(
                    f"30k models, 0.3 s a page, {name}", baseline_name=f"the full {sort} walk"
                ),
                ours,
                full,
                repeats,
            )
            scenario.notes["pages"] = len(logged_during(url, ours)[1])
            scenario.notes["full_walk_pages"] = len(logged_during(url, full)[1])
            rows.append(scenario)
    return rows


def memory(repeats: int) -> list[Scenario]:
    """Peak RSS at about 100k and at 1,000,000 full models: what each extra model costs, one sort
    and two; and the CPU a model costs at each size (the id table must not slow as it grows).

    Both sizes walk one 1,000,000-model emulator, alternating, three times each: the small size
    its `text-generation` models (about 80,000: both sorts return that one set, as they return
    the whole catalog). An emulator of 100k models answers a page faster than one of 1,000,000
    and holds 3 GB less beside the client: with one each, the row measured them, not the table.

    hfharvest runs on one core and the emulator on the other, as the Hub runs on machines of its
    own: sharing a core with an emulator that serves pages out of 3 GB, hfharvest's CPU a model
    at 1,000,000 rose by 1.19 against 0.99 on a core of its own (user time, two sorts).
    """
    scenarios = []
    catalog = ("--datasets", "0", "--spaces", "0")
    ours, its = two_cores()
    with emulator("--models", "1000000", *catalog, core=its) as url:
        for sorts in (("likes",), ("likes", "downloads")):
            args = [a for s in sorts for a in ("--sort", s)]
            small: list[tuple[Run, int]] = []
            large: list[tuple[Run, int]] = []
            for _ in range(max(1, (repeats + 1) // 2)):
                tag = ("--pipeline-tag", "text-generation")
                small.append(fetch_counted(url, *args, *tag, core=ours))
                large.append(fetch_counted(url, *args, core=ours))
            scenarios.append(_memory_row(sorts, small, large))
            scenarios[-1].notes["cores"] = "apart" if ours is not None else "shared"
    return scenarios


def fetch_counted(url: str, *args: str, core: int | None = None) -> tuple[Run, int]:
    """`fetch`, and the unique models it wrote (from `--stats-json`)."""
    with tempfile.TemporaryDirectory() as folder:
        stats = Path(folder) / "stats.json"
        run = fetch(url, *args, "--stats-json", str(stats), core=core)
        return run, int(json.loads(stats.read_text())["unique"])


def _memory_row(
    sorts: tuple[str, ...], small: list[tuple[Run, int]], large: list[tuple[Run, int]]
) -> Scenario:
    def per_model(runs: list[tuple[Run, int]], seconds: Callable[[Run], float]) -> float:
        return statistics.median(seconds(run) / models for run, models in runs) * 1e6

    sizes = {"small": small, "1m": large}
    cpu = {size: per_model(runs, lambda r: r.cpu_seconds) for size, runs in sizes.items()}
    kernel = {size: per_model(runs, lambda r: r.sys_seconds) for size, runs in sizes.items()}
    scenario = Scenario(
        f"memory, {len(sorts)} sort(s), ~100k -> 1,000,000 models",
        baseline_name="hfharvest at ~100k (one pipeline tag of the same emulator)",
    )
    scenario.ours, scenario.baseline = [r for r, _ in large], [r for r, _ in small]
    extra = statistics.median(n for _, n in large) - statistics.median(n for _, n in small)
    grown = statistics.median(r.peak_rss_mb for r, _ in large) - statistics.median(
        r.peak_rss_mb for r, _ in small
    )
    scenario.notes["small_models"] = statistics.median(n for _, n in small)
    scenario.notes["bytes_per_extra_model"] = round(grown * 1024 * 1024 / extra)
    scenario.notes["cpu_us_per_model_small"] = round(cpu["small"], 2)
    scenario.notes["cpu_us_per_model_1m"] = round(cpu["1m"], 2)
    scenario.notes["cpu_per_model_ratio"] = round(cpu["1m"] / cpu["small"], 3)
    # The kernel's share, apart: this VM makes memory never touched before cost (the page cache
    # of a 1.8 GB spool and file: 2.9 s of sys the first time, 0.3 s the next).
    scenario.notes["sys_us_per_model_small"] = round(kernel["small"], 2)
    scenario.notes["sys_us_per_model_1m"] = round(kernel["1m"], 2)
    user = {size: cpu[size] - kernel[size] for size in sizes}
    scenario.notes["user_per_model_ratio"] = round(user["1m"] / user["small"], 3)
    return scenario


def concurrency(repeats: int) -> list[Scenario]:
    """Two sorts walked together against one alone, 30k models at 0.3 s a page: what the second
    walk costs when both run side by side (1.0: nothing)."""
    with emulator(
        "--models", "30000", "--datasets", "0", "--spaces", "0", "--latency", "0.3"
    ) as url:
        both = lambda: fetch(url, "--sort", "likes", "--sort", "downloads")  # noqa: E731
        together = alternate(
            Scenario("2 sorts x 30k models, 0.3 s a page", baseline_name="1 sort alone, the same"),
            both,
            lambda: fetch(url, "--sort", "likes"),
            repeats,
        )
        together.notes["requests"] = len(logged_during(url, both)[1])  # 30 pages a sort
    with emulator("--latency", "0.2") as url:
        common = ["--inference-provider", "hf-inference"]
        replaced = alternate(
            Scenario(
                "hf-inference, 2 sorts (1,377 vs 1,204 models)",
                baseline_name="one page per sort, sequential (replaced)",
            ),
            lambda: fetch(url, "--sort", "likes", "--sort", "downloads", *common),
            lambda: python(REPLACED_SCRIPT, url),
            repeats,
        )
    return [together, replaced]


def logged_during(url: str, run: Callable[[], Run]) -> tuple[Run, list[dict[str, Any]]]:
    """One more `run`, and the requests the emulator answered meanwhile (its request log)."""
    before = len(requests.get(f"{url}/_emulator/requests", timeout=10).json())
    result = run()
    return result, requests.get(f"{url}/_emulator/requests", timeout=10).json()[before:]


def pacing(repeats: int) -> list[Scenario]:
    """Quota 50 per 10 s window, a walk of 120 pages: time taken and 429s drawn."""
    with emulator(
        "--quota", "50", "--window", "10", "--models", "12000", "--datasets", "0", "--spaces", "0"
    ) as url:
        time.sleep(10.5)  # the warm-up spent budget: start on a fresh window
        run, log = logged_during(
            url, lambda: fetch(url, "--sort", "likes", "--sort", "downloads", "--page-size", "200")
        )
    scenario = Scenario("pacing: quota 50 / 10 s, 120 pages", baseline_name="quota arithmetic")
    scenario.ours = [run]
    scenario.baseline = [Run(20.0, 0.0)]  # 120 requests at 50 a window: 2 waits of 10 s
    scenario.notes.update(requests=len(log), answers_429=sum(r["status"] == 429 for r in log))
    return [scenario]


THREE_TYPES = ["-t", "model", "-t", "dataset", "-t", "space"]


def started_together(commands: list[list[str]]) -> Run:
    """Processes started at once: the wall time until the last ends, their CPU, their peaks
    summed (an upper bound of what they held at once)."""
    began = time.perf_counter()
    processes = [
        subprocess.Popen(c, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=CLEAN_ENV)
        for c in commands
    ]
    cpu, kernel, peak = 0.0, 0.0, 0
    for process in processes:
        _, status, usage = os.wait4(process.pid, 0)
        if os.waitstatus_to_exitcode(status) != 0:
            assert process.stderr is not None
            said = process.stderr.read().decode(errors="replace")
            raise SystemExit(f"bench: {process.args!r} failed: {said[-500:]}")
        cpu += usage.ru_utime + usage.ru_stime
        kernel += usage.ru_stime
        peak += usage.ru_maxrss
    seconds = time.perf_counter() - began
    return Run(
        round(seconds, 3), round(peak / 1024, 1), round(cpu, 3), round(kernel, 3), len(commands)
    )


def several(repeats: int) -> list[Scenario]:
    """Three listings in one run against the models walk alone (30k models, 10k datasets, 10k
    spaces at 0.3 s a page); then, under one quota of 50 requests per 10 s, three separate
    processes started together (the baseline, first) against one run of the three."""
    with emulator(
        "--models", "30000", "--datasets", "10000", "--spaces", "10000", "--latency", "0.3"
    ) as url:
        time_row = alternate(
            Scenario(
                "3 listings in one run (30k models, 10k datasets, 10k spaces), 0.3 s a page",
                baseline_name="the models walk alone",
            ),
            lambda: fetch(url, *THREE_TYPES, name="{type}.jsonl"),
            lambda: fetch(url, "-t", "model"),
            repeats,
        )
    common = ["--page-size", "200", "-q", "--no-manifest"]
    catalog = {
        "--quota": 50,
        "--window": 10,
        "--models": 6000,
        "--datasets": 2000,
        "--spaces": 2000,
    }
    arguments = [str(text) for pair in catalog.items() for text in pair]
    with tempfile.TemporaryDirectory() as folder, emulator(*arguments) as url:
        each = [HFHARVEST, "fetch", "--endpoint", url, *common, "-o"]
        separate = [[*each, f"{folder}/{t}.jsonl", "-t", t] for t in ("model", "dataset", "space")]
        one = [*each, f"{folder}/{{type}}-one.jsonl", *THREE_TYPES]
        quota = Scenario(
            "3 listings under one quota (50 / 10 s), 100 pages: one run",
            baseline_name="3 processes started together",
        )
        drawn: dict[str, list[int]] = {"baseline": [], "ours": []}
        for _ in range(max(1, repeats // 3)):
            for side, command in (
                ("baseline", lambda: started_together(separate)),
                ("ours", lambda: timed(one)),
            ):
                time.sleep(10.5)  # a fresh window: what the last run spent is not drawn on
                run, log = logged_during(url, command)
                getattr(quota, side).append(run)
                drawn[side].append(sum(r["status"] == 429 for r in log))
                quota.notes[f"{side}_requests"] = len(log)
        quota.notes.update(baseline_429s=drawn["baseline"], ours_429s=drawn["ours"])
    return [time_row, quota]


def diff_million(repeats: int) -> list[Scenario]:
    """Two snapshots of 1,000,000 records each: peak RSS of `hfharvest diff`."""
    with tempfile.TemporaryDirectory() as folder:
        paths = [Path(folder) / "old.jsonl", Path(folder) / "new.jsonl"]
        for index, path in enumerate(paths):
            with path.open("w") as out:
                for i in range(1_000_000):
                    license_ = "apache-2.0" if index and i % 50 == 0 else "mit"
                    out.write(
                        json.dumps(
                            {
                                "id": f"org-{i % 9973}/model-{i}",
                                "type": "model",
                                "license": license_,
                                "likes": i % 1000 + index,
                                "downloads": i,
                                "tags": ["a", "license:mit"],
                                "files": ["README.md", "config.json", "model.safetensors"],
                                "found_by": {"likes": i + 1},
                            }
                        )
                        + "\n"
                    )
        run = timed([HFHARVEST, "diff", str(paths[0]), str(paths[1]), "-q"])
    scenario = Scenario("diff, 2 x 1,000,000 records", baseline_name="limit: 400 MB")
    scenario.ours = [run]
    scenario.baseline = [Run(run.seconds, 400.0)]
    return [scenario]


def parquet(repeats: int) -> list[Scenario]:
    """200k full models written as Parquet against the same as JSONL: CPU seconds and peak RSS,
    hfharvest as `pip install 'hfharvest[parquet]'` installs it, then in this environment, where
    the tests' pandas and polars bring numpy (which pyarrow imports whenever it can, and which
    the console therefore refuses for `fetch`: the row shows that refusal holds). The four runs
    of a round take turns, so both places share the machine's moments."""
    models = ("--models", "200000", "--datasets", "0", "--spaces", "0")
    with emulator(*models) as url, installed("parquet") as folder:
        places = {"beside numpy": HFHARVEST}
        if folder is not None:
            places = {"as installed": str(folder / "hfharvest"), **places}
        rows = {
            place: Scenario(
                f"200k models, full, 1 sort, to Parquet ({place})",
                baseline_name="the same to JSONL",
            )
            for place in places
        }
        for _ in range(repeats // 2 + 1):
            for place, program in places.items():
                rows[place].ours.append(
                    fetch(url, "--sort", "likes", name="out.parquet", program=program)
                )
                rows[place].baseline.append(fetch(url, "--sort", "likes", program=program))
    return list(rows.values())


@contextmanager
def installed(extra: str) -> Iterator[Path | None]:
    """The `bin` of a fresh venv holding `pip install 'hfharvest[extra]'` of this checkout (what
    a user gets, and nothing the tests need), or None where pip reaches no package index."""
    with tempfile.TemporaryDirectory() as folder:
        venv = Path(folder) / "venv"
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        pip = [str(venv / "bin" / "pip"), "install", "-q", f"{ROOT}[{extra}]"]
        done = subprocess.run(pip, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            print(f"bench: no fresh install ({done.stderr.strip()[-200:]})", file=sys.stderr)
        yield venv / "bin" if done.returncode == 0 else None


PARQUET_MILLION = """
import sys, hfharvest
index = int(sys.argv[2])
records = (
    {"id": f"org-{i % 9973}/model-{i}", "type": "model", "name": f"model-{i}",
     "license": "apache-2.0" if index and i % 50 == 0 else "mit", "likes": i % 1000 + index,
     "downloads": i, "tags": ["a", "license:mit"], "created_at": "2024-05-01T12:00:00.000Z",
     "files": ["README.md", "config.json", "model.safetensors"], "found_by": {"likes": i + 1}}
    for i in range(1_000_000)
)
hfharvest.write_parquet(records, sys.argv[1], repo_type="model")
"""


def diff_parquet(repeats: int) -> list[Scenario]:
    """Two Parquet snapshots of 1,000,000 models each: peak RSS of `hfharvest diff`."""
    with tempfile.TemporaryDirectory() as folder:
        paths = [Path(folder) / "old.parquet", Path(folder) / "new.parquet"]
        for index, path in enumerate(paths):
            python(PARQUET_MILLION, str(path), str(index))
        run = timed([HFHARVEST, "diff", str(paths[0]), str(paths[1]), "-q"])
    scenario = Scenario("diff, 2 x 1,000,000 models, Parquet", baseline_name="limit: 400 MB")
    scenario.ours = [run]
    scenario.baseline = [Run(run.seconds, 400.0)]
    return [scenario]


def python_api(repeats: int) -> list[Scenario]:
    """harvest() of 100k models against the same fetch writing JSONL to a file, in one process:
    with Python's default garbage collector (a user's process), and tuned as `entry` tunes it."""
    scenarios = []
    with emulator("--models", "100000", "--datasets", "0", "--spaces", "0") as url:
        for gc_setting in ("default", "tuned"):
            done = subprocess.run(
                [str(BIN / "python"), "-c", IN_PROCESS, url, str(repeats), gc_setting],
                capture_output=True,
                text=True,
                check=True,
                env=CLEAN_ENV,
            )
            times = json.loads(done.stdout)
            scenario = Scenario(
                f"harvest() of 100k models, 1 sort, in one process, {gc_setting} GC",
                baseline_name="the same fetch to a JSONL file",
            )
            scenario.ours = [Run(cpu, 0.0, cpu) for cpu in times["harvest"]]
            scenario.baseline = [Run(cpu, 0.0, cpu) for cpu in times["jsonl"]]
            scenarios.append(scenario)
    return scenarios


def startup(repeats: int) -> list[Scenario]:
    """What a run costs before its first request: `fetch --dry-run` against the interpreter's own
    start (typer 0.29 validates every option through pydantic: about 0.1 s more than 0.28)."""
    dry = [HFHARVEST, "fetch", "--dry-run", "--endpoint", "http://127.0.0.1:9", "--limit", "1"]
    scenario = alternate(
        Scenario("start-up: fetch --dry-run", baseline_name="python -c pass"),
        lambda: timed(dry),
        lambda: python("pass"),
        repeats * 3,
    )
    scenario.notes["typer"] = subprocess.run(
        [str(BIN / "python"), "-c", "import typer; print(typer.__version__)"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    # With a token file, huggingface_hub's own resolution is asked (an OAuth token may need a
    # refresh): what importing it costs, against the same dry run without one.
    with tempfile.TemporaryDirectory() as home:
        (Path(home) / ".cache" / "huggingface").mkdir(parents=True)
        (Path(home) / ".cache" / "huggingface" / "token").write_text("hf_bench\n")
        with_file = {**CLEAN_ENV, "HOME": home}
        hub = alternate(
            Scenario(
                "start-up: fetch --dry-run, a token file (huggingface_hub asked)",
                baseline_name="fetch --dry-run, HF_TOKEN",
            ),
            lambda: timed(dry, env=with_file),
            lambda: timed(dry, env={**CLEAN_ENV, "HF_TOKEN": "hf_bench"}),
            repeats * 3,
        )
    return [scenario, hub]


SCENARIOS: dict[str, Callable[[int], list[Scenario]]] = {
    "latency": latency,
    "cpu": cpu,
    "memory": memory,
    "bounded": bounded,
    "concurrency": concurrency,
    "pacing": pacing,
    "several": several,
    "diff": diff_million,
    "parquet": parquet,
    "diff-parquet": diff_parquet,
    "startup": startup,
    "python-api": python_api,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="runs per side (default 5)")
    parser.add_argument(
        "--only",
        nargs="*",
        default=None,
        choices=list(SCENARIOS),
        help="which scenarios (default: all)",
    )
    args = parser.parse_args()
    # As pip does when it installs a wheel: without it (PYTHONDONTWRITEBYTECODE, an editable
    # install) every hfharvest run would compile its modules again, which no installed one does.
    compileall.compile_dir(ROOT / "hfharvest", quiet=1)
    scenarios: list[Scenario] = []
    for name in args.only or SCENARIOS:
        print(f"bench: {name} ...", file=sys.stderr, flush=True)
        scenarios += SCENARIOS[name](args.repeats)
    rows = [s.summary() for s in scenarios]
    machine = f"{platform.node()} · {os.cpu_count()} cores · Python {platform.python_version()}"
    print_table(rows, machine)
    RESULTS.mkdir(exist_ok=True)  # one file a run, named by its time: no tracked file touched
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H%M%SZ")
    document = {
        "when": stamp,
        "machine": machine,
        "platform": platform.platform(),
        "rows": rows,
        "raw": [asdict(s) for s in scenarios],
    }
    (RESULTS / f"{stamp}.json").write_text(json.dumps(document, indent=2) + "\n")
    print(f"bench: wrote bench/results/{stamp}.json", file=sys.stderr)


def print_table(rows: list[dict[str, object]], machine: str) -> None:
    print(f"machine: {machine}")
    print(
        "| scenario | baseline | hfharvest median | baseline median | median ratio | "
        "CPU s (hfharvest / baseline) | CPU ratio | peak RSS (hfharvest / baseline) | "
        "notes |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    standard = {
        "scenario",
        "baseline",
        "hfharvest_median_s",
        "baseline_median_s",
        "runs",
        "median_ratio",
        "hfharvest_peak_rss_mb",
        "baseline_peak_rss_mb",
        "hfharvest_median_cpu_s",
        "baseline_median_cpu_s",
        "median_cpu_ratio",
    }
    for row in rows:
        notes = ", ".join(f"{k}={v}" for k, v in row.items() if k not in standard)
        print(
            f"| {row['scenario']} | {row['baseline']} | {row['hfharvest_median_s']} s | "
            f"{row['baseline_median_s']} s | {row['median_ratio']} | "
            f"{row['hfharvest_median_cpu_s']} / {row['baseline_median_cpu_s']} | "
            f"{row['median_cpu_ratio']} | "
            f"{row['hfharvest_peak_rss_mb']} / {row['baseline_peak_rss_mb']} MB | "
            f"{notes or ''} (n={row['runs']}) |"
        )


if __name__ == "__main__":
    main()
