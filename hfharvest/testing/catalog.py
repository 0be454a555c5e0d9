"""A deterministic synthetic Hub catalog, and the listing queries over it.

The same arguments give the same catalog, byte for byte. It carries every field the normalized
schema reads: authors and legacy ids without one, non-ASCII ids, the pre-2022 `createdAt`
sentinel, gated false/auto/manual, license/arxiv/dataset/base_model tags, files, inference
providers, and datasets and spaces (`sdk`). Likes and downloads are correlated the way they were
on the Hub in October 2025: of the 1,377 models served by `hf-inference`, the top 1,000 by likes
and the top 1,000 by downloads overlap so that their union is about 1,204.
"""

from __future__ import annotations

import bisect
import gc
import math
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from hfharvest.hub import CREATED_AT_UNKNOWN

Repo = dict[str, Any]
T = TypeVar("T")
SortKey = tuple[Any, ...]


# Spread of the independent noise on likes and downloads around a shared "quality": 1.1 gives the
# October 2025 overlap (top 1,000 by likes | top 1,000 by downloads of 1,377 ≈ 1,204).
_NOISE = 1.1
_PIPELINES = (
    "text-generation",
    "text-classification",
    "image-text-to-text",
    "automatic-speech-recognition",
    "feature-extraction",
    "text-to-image",
    "translation",
    "summarization",
    "fill-mask",
    "sentence-similarity",
    "object-detection",
    "image-classification",
)
_LIBRARIES = ("transformers", "diffusers", "sentence-transformers", "gguf", "peft", "timm", "mlx")
_LICENSES = ("mit", "apache-2.0", "other", "llama3.1", "cc-by-4.0", "openrail", "gemma")
_PROVIDERS = ("together", "fal-ai", "novita", "sambanova", "groq", "nebius", "cerebras")
_RELATIONS = ("finetune", "quantized", "adapter", "merge")
_SDKS = ("gradio", "streamlit", "docker", "static")
_WORDS = (
    "llama",
    "mistral",
    "qwen",
    "phi",
    "gemma",
    "bert",
    "t5",
    "whisper",
    "clip",
    "vit",
    "sdxl",
    "falcon",
    "olmo",
    "smol",
    "deepseek",
    "granite",
    "kimi",
    "minimax",
    "yi",
    "opus",
)
_UNICODE_AUTHORS = ("café-lab", "ñandú-ai", "日本語モデル", "straße-nlp", "mañana")
_EPOCH = int(datetime(2021, 6, 1, tzinfo=UTC).timestamp())  # what `_id`s count from
# Dates are shown shifted so that a listing's newest repo was made just before the present, and
# its oldest after 2022-03-02, when the Hub began recording creation dates, so that (as on the
# Hub) the "unknown" ones sort below every real one. `_id`s keep the epoch.
_DATE_SHIFT = 3 * 365 * 86400  # the least shift: what bounds the spacing of a big catalog
# The emulator's own fixed present: no date it serves is later, whatever the catalog's size (fixed,
# so that demos stay byte-identical). Repos are created at most every `_SPACING` seconds, closer
# when the catalog is too big for that, and changed up to `_CHANGED_WITHIN` later (never after
# the present): `--since` a week before the present finds the repos changed that week.
PRESENT = int(datetime(2026, 11, 1, tzinfo=UTC).timestamp())
_SPACING = 1020
_CHANGED_WITHIN = 400 * 86400
# The October 2025 figure: of 3,000 models, 1,377 served by hf-inference (a smaller catalog has
# as large a share; a bigger one the same count).
HF_INFERENCE, HF_INFERENCE_OF = 1377, 3000


def _iso(seconds: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(seconds))


def _epoch_ms(stamp: str) -> int:
    moment = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


_UNKNOWN = min(CREATED_AT_UNKNOWN)
_UNKNOWN_MS = _epoch_ms(_UNKNOWN)


@dataclass
class Catalog:
    """Repos by type ("model", "dataset", "space"), each a full API object (internal `_` keys).

    Sorted orders are cached per (type, sort, filters), so keyset lookups stay a bisection;
    `mutate` moves the repos it changes to their new places in every cached order.
    """

    repos: dict[str, list[Repo]]
    _cache: dict[tuple[Any, ...], tuple[list[SortKey], list[Repo]]] = field(
        default_factory=dict, repr=False
    )
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def query(
        self,
        repo_type: str,
        sort: str,
        predicate_key: tuple[Any, ...],
        predicate: Callable[[Repo], bool],
    ) -> tuple[list[SortKey], list[Repo]]:
        """The repos of `repo_type` that pass `predicate`, in `sort` order, with their keys."""
        cache_key = (repo_type, sort, predicate_key)
        with self._lock:
            cached = self._cache.get(cache_key)
            if cached is None:
                chosen = [repo for repo in self.repos[repo_type] if predicate(repo)]
                chosen.sort(key=lambda repo: sort_key(repo, sort))
                cached = ([sort_key(repo, sort) for repo in chosen], chosen)
                self._cache[cache_key] = cached
            return cached

    def mutate(
        self, repo_type: str, moving: Sequence[Repo], change: Callable[[Repo], None]
    ) -> None:
        """Apply `change` to each of `moving` (live drift), keeping every cached order sorted.

        Each changed repo leaves its place by bisection and is put back by bisection: a few
        list moves, where sorting the catalog again took tens of milliseconds a page. Orders are
        changed on copies, so an answer being written from the old ones is never disturbed.
        """
        with self._lock:
            orders = {
                cache_key: (list(keys), list(ordered))
                for cache_key, (keys, ordered) in self._cache.items()
                if cache_key[0] == repo_type
            }
            taken = {
                cache_key: _take_out(keys, ordered, moving, cache_key[1])
                for cache_key, (keys, ordered) in orders.items()
            }
            for repo in moving:
                change(repo)
            for cache_key, (keys, ordered) in orders.items():
                for repo in taken[cache_key]:
                    key = sort_key(repo, cache_key[1])
                    place = bisect.bisect_left(keys, key)
                    keys.insert(place, key)
                    ordered.insert(place, repo)
                self._cache[cache_key] = (keys, ordered)


def _take_out(
    keys: list[SortKey], ordered: list[Repo], moving: Sequence[Repo], sort: str
) -> list[Repo]:
    """Remove those of `moving` that this order holds (keys are unique); return them."""
    taken = []
    for repo in moving:
        place = bisect.bisect_left(keys, sort_key(repo, sort))
        if place < len(ordered) and ordered[place] is repo:
            del keys[place], ordered[place]
            taken.append(repo)
    return taken


def sort_key(repo: Repo, sort: str) -> SortKey:
    """Descending by the sort's value with `_id` ascending as tie-break; `id` sorts ascending."""
    if sort == "id":
        return (repo["id"],)
    if sort in ("createdAt", "lastModified"):
        return (-repo[f"_{sort}_ms"], repo["_id"])
    return (-repo[sort], repo["_id"])


def key_from_cursor(sort: str, value: Any, object_id: str) -> SortKey:
    if sort == "id":
        return (value,)
    if sort in ("createdAt", "lastModified"):
        return (-_epoch_ms(value), object_id)
    return (-value, object_id)


def make_catalog(
    models: int = 3000,
    datasets: int = 500,
    spaces: int = 500,
    *,
    hf_inference: int | None = None,
    seed: int = 2073,
) -> Catalog:
    """Build a catalog; `hf_inference` models are served by the `hf-inference` provider
    (default: 1,377 of 3,000, as many in a bigger catalog, the same share in a smaller one).

    The default seed is the one whose 1,377 `hf-inference` models give exactly the October 2025
    union of 1,204 (1,000 by likes + 204 new by downloads).
    """
    if hf_inference is None:
        hf_inference = min(HF_INFERENCE, round(models * HF_INFERENCE / HF_INFERENCE_OF))
    if hf_inference > models:
        raise ValueError(f"hf_inference ({hf_inference}) cannot exceed models ({models})")
    rng = random.Random(seed)
    # Facts added later (runtime, safetensors, statuses, ...) are drawn from a generator of their
    # own, so that the ids, likes and downloads of every seed stay what they were.
    facts = random.Random(f"facts-{seed}")
    authors = _authors(rng, max(8, models // 6))
    served = set(rng.sample(range(models), hf_inference))
    # Millions of small dicts and no cycles: the cyclic GC would only rescan them, again and again.
    collecting = gc.isenabled()
    gc.disable()
    try:
        return Catalog(
            {
                "model": [
                    _model_facts(facts, _model(rng, i, authors, i in served, _spacing(models)))
                    for i in range(models)
                ],
                "dataset": [
                    _dataset_facts(facts, _dataset(rng, i, authors, _spacing(datasets)))
                    for i in range(datasets)
                ],
                "space": [
                    _space_facts(facts, _space(rng, i, authors, _spacing(spaces)))
                    for i in range(spaces)
                ],
            }
        )
    finally:
        if collecting:
            gc.enable()


def _authors(rng: random.Random, count: int) -> list[str]:
    names = [
        f"{_pick(rng, _WORDS)}-{kind}-{i}"
        for i, kind in zip(
            range(count), ("lab", "ai", "research", "org", "team") * count, strict=False
        )
    ]
    names[: len(_UNICODE_AUTHORS)] = _UNICODE_AUTHORS
    return names


def _pick(rng: random.Random, choices: Sequence[T]) -> T:
    return choices[int(rng.random() * len(choices))]  # random.choice, at a third of the cost


def _spacing(count: int) -> tuple[int, int]:
    """Seconds between two repos' creation, and the shift of the dates shown: every date at or
    before `PRESENT`, the newest creation a day before it, at any size."""
    room = PRESENT - _DATE_SHIFT - _EPOCH - _CHANGED_WITHIN - 400  # 400: kind and jitter
    spacing = min(_SPACING, room // max(count, 1))
    return spacing, PRESENT - 86400 - 400 - _EPOCH - spacing * count


def _common(
    rng: random.Random, index: int, kind: int, authors: list[str], dates: tuple[int, int]
) -> Repo:
    """Fields every repo type has: ids, times, likes and downloads, sha, gating."""
    spacing, shift = dates
    created = _EPOCH + spacing * index + 300 * kind + int(rng.random() * 60)
    shown_created = created + shift
    within = min(_CHANGED_WITHIN, PRESENT - shown_created)
    shown_modified = shown_created + int(rng.random() * within)
    legacy = index % 97 == 0  # old repos: no creation date, and some with no author in the id
    quality = rng.gauss(0, 1)
    likes = int(math.exp(1.5 + 1.6 * (quality + _NOISE * rng.gauss(0, 1))))
    downloads = int(math.exp(5.0 + 2.2 * (quality + _NOISE * rng.gauss(0, 1))))
    return {
        "_id": f"{created:08x}{kind:02x}{index:014x}",
        "author": _pick(rng, authors),
        "likes": likes,
        "likes30d": likes // (2 + int(rng.random() * 8)),
        "downloads": downloads,
        "downloadsAllTime": downloads * (1 + int(rng.random() * 30)),
        "trendingScore": likes // (1 + index % 50),
        "private": False,
        "disabled": index % 211 == 0,
        "gated": "manual" if index % 37 == 0 else "auto" if index % 23 == 0 else False,
        "sha": f"{rng.getrandbits(160):040x}",
        "createdAt": _UNKNOWN if legacy else _iso(shown_created),
        "lastModified": _iso(shown_modified),
        "_createdAt_ms": _UNKNOWN_MS if legacy else shown_created * 1000,
        "_lastModified_ms": shown_modified * 1000,
        "_legacy": legacy,
    }


def _model(
    rng: random.Random, index: int, authors: list[str], served: bool, dates: tuple[int, int]
) -> Repo:
    repo = _common(rng, index, 0, authors, dates)
    word = _pick(rng, _WORDS)
    size = _pick(rng, (1, 3, 7, 8, 13, 70))  # billions of parameters
    name = f"{word}-{size}b-v{index}"
    if index % 53 == 0:
        name = f"modèle-{word}-ünï-{index}"
    repo_id = name if repo["_legacy"] and index % 2 == 0 else f"{repo['author']}/{name}"
    if "/" not in repo_id:
        repo["author"] = None  # a legacy id with no owner part: the Hub reports no author either
    pipeline = _pick(rng, _PIPELINES)
    library = _pick(rng, _LIBRARIES)
    tags = [library, pipeline, f"license:{_pick(rng, _LICENSES)}", "region:us"]
    if rng.random() < 0.4:
        tags += [f"arxiv:{2300 + int(rng.random() * 300)}.{int(rng.random() * 100000):05d}"]
    if rng.random() < 0.3:
        tags += [f"dataset:{_pick(rng, authors)}/{_pick(rng, _WORDS)}-data"]
    if rng.random() < 0.5:
        base = f"{_pick(rng, authors)}/{_pick(rng, _WORDS)}-base"
        relation = _pick(rng, (*_RELATIONS, ""))
        tags += [f"base_model:{base}"] + ([f"base_model:{relation}:{base}"] if relation else [])
    providers = (["hf-inference"] if served else []) + rng.sample(_PROVIDERS, int(rng.random() * 3))
    repo.update(
        _size=size,
        id=repo_id,
        modelId=repo_id,
        pipeline_tag=pipeline,
        library_name=library,
        tags=tags,
        siblings=[
            {"rfilename": f}
            for f in (".gitattributes", "README.md", "config.json", "model.safetensors")
        ],
        inferenceProviderMapping=[
            {"provider": p, "providerId": f"{p}/{name}", "status": "live", "task": pipeline}
            for p in providers
        ],
    )
    return repo


def _dataset(rng: random.Random, index: int, authors: list[str], dates: tuple[int, int]) -> Repo:
    repo = _common(rng, index, 1, authors, dates)
    name = f"{_pick(rng, _WORDS)}-corpus-{index}"
    tags = [
        f"license:{_pick(rng, _LICENSES)}",
        "format:parquet",
        "region:us",
        f"task_categories:{_pick(rng, _PIPELINES)}",
    ]
    if rng.random() < 0.3:
        tags.append(f"arxiv:{2300 + int(rng.random() * 300)}.{int(rng.random() * 100000):05d}")
    repo.update(
        id=f"{repo['author']}/{name}",
        tags=tags,
        siblings=[{"rfilename": f} for f in ("README.md", "data/train-00000.parquet")],
    )
    return repo


def _space(rng: random.Random, index: int, authors: list[str], dates: tuple[int, int]) -> Repo:
    repo = _common(rng, index, 2, authors, dates)
    sdk = _pick(rng, _SDKS)
    repo.update(
        id=f"{repo['author']}/{_pick(rng, _WORDS)}-demo-{index}",
        sdk=sdk,
        tags=[sdk, "region:us", f"license:{_pick(rng, _LICENSES)}"],
        siblings=[{"rfilename": f} for f in ("README.md", "app.py", "requirements.txt")],
    )
    return repo


_STAGES = ("RUNNING", "SLEEPING", "SLEEPING", "PAUSED", "RUNTIME_ERROR", "BUILDING")
_HARDWARE = ("cpu-basic", "cpu-upgrade", "t4-small", "a10g-small", "zero-a10g")
_CONTEXTS = (4096, 8192, 32768, 131072)


def _unknown_creation(facts: random.Random, repo: Repo) -> None:
    """An old repo's "unknown" creation date: either value of the family the Hub uses."""
    if repo["_legacy"]:
        stamp = _pick(facts, sorted(CREATED_AT_UNKNOWN))
        repo["createdAt"], repo["_createdAt_ms"] = stamp, _epoch_ms(stamp)


def _model_facts(facts: random.Random, repo: Repo) -> Repo:
    """What real answers show beyond the default listing: some keys absent, statuses, sizes."""
    _unknown_creation(facts, repo)
    for mapping in repo["inferenceProviderMapping"]:  # hf-inference stays live: the 1,377
        if mapping["provider"] != "hf-inference" and facts.random() < 0.3:
            mapping["status"] = "staging"
    if facts.random() < 0.05:  # models the Hub knows no task or library for
        repo["pipeline_tag"] = repo["library_name"] = None
    if facts.random() < 0.8:
        repo["config"] = {} if facts.random() < 0.05 else {"model_type": repo["id"][:3]}
    if facts.random() < 0.6:
        repo["cardData"] = {"license": "other", "language": ["en"]}
        # Some cards give CO2 emissions, as a number or as {emissions: ...} (both are seen); drawn
        # from the sha, not the generator, so that the facts drawn after stay as they were.
        grams = int(repo["sha"][:4], 16) % 500
        if grams % 3 == 0:
            repo["cardData"]["co2_eq_emissions"] = grams if grams % 2 else {"emissions": grams}
    total = int(repo["_size"] * 1e9 * (0.8 + 0.4 * facts.random()))  # past 2**32 for most
    if repo["library_name"] == "gguf":
        repo["gguf"] = {
            "total": total,
            "architecture": "llama",
            "context_length": _pick(facts, _CONTEXTS),
        }
    elif facts.random() < 0.8:
        repo["safetensors"] = {"parameters": {"BF16": total}, "total": total}
    inference = facts.random()
    if inference < 0.5:
        repo["inference"] = "warm" if inference < 0.2 else "cold"
    return repo


def _dataset_facts(facts: random.Random, repo: Repo) -> Repo:
    _unknown_creation(facts, repo)
    repo["tags"] += [
        f"modality:{_pick(facts, ('text', 'image', 'audio', 'tabular'))}",
        f"size_categories:{_pick(facts, ('n<1K', '1K<n<10K', '10K<n<100K', '1M<n<10M'))}",
        *(f"language:{code}" for code in facts.sample(("en", "fr", "de", "zh", "ja"), 2)),
    ]
    return repo


def _space_facts(facts: random.Random, repo: Repo) -> Repo:
    _unknown_creation(facts, repo)
    stage = _pick(facts, _STAGES)
    current = _pick(facts, _HARDWARE) if stage == "RUNNING" else None
    repo["runtime"] = {
        "stage": stage,
        "hardware": {"current": current, "requested": current or "cpu-basic"},
        "replicas": {"requested": 1},
    }
    if facts.random() < 0.4:
        repo["models"] = [f"{repo['author']}/{_pick(facts, _WORDS)}-7b"]
    if facts.random() < 0.2:
        repo["datasets"] = [f"{repo['author']}/{_pick(facts, _WORDS)}-data"]
    return repo
