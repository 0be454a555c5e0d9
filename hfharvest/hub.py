"""Facts about the Hugging Face Hub listing API, each written once (see docs of hub-api), and
the checks that follow from them (a sort or a field known, refused, or new).

The client, the settings, the normalizer and the offline emulator all take them from here, so a
sort name, the page maximum or the "unknown creation date" cannot drift apart between them.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from typing import Literal

from hfharvest.errors import UsageError

RepoType = Literal["model", "dataset", "space"]
REPO_TYPES: tuple[RepoType, ...] = ("model", "dataset", "space")
# What names a type: itself, or its plural (as the tables and `{type}s` paths write it).
REPO_TYPE_NAMES: Mapping[str, RepoType] = {
    **{t: t for t in REPO_TYPES},
    **{f"{t}s": t for t in REPO_TYPES},
}

DEFAULT_ENDPOINT = "https://huggingface.co"
MAX_PAGE_SIZE = 1000  # observed: a larger `limit` is answered with 1,000 entries
RATE_WINDOW = 300  # seconds: the Hub's fixed rate-limit window (RateLimit-Policy w)

# The sorts the Hub accepts (all descending); it rejects snake_case spellings, which users type
# anyway, so those are mapped to these names before any request.
SORTS = ("likes", "downloads", "trendingScore", "createdAt", "lastModified", "likes30d", "id")
SORT_ALIASES: Mapping[str, str] = {
    **{sort: sort for sort in SORTS},
    "trending_score": "trendingScore",
    "created_at": "createdAt",
    "last_modified": "lastModified",
    "likes_30d": "likes30d",
}

# Sorts the Hub was seen to refuse (400) beside `inference_provider` (October 2025).
# What a fetch walks when no sort and no bound is given: two orders, among those the listing has
# (spaces have no downloads: `trendingScore` is their second).
DEFAULT_SORTS: Mapping[RepoType, tuple[str, ...]] = {
    "model": ("likes", "downloads"),
    "dataset": ("likes", "downloads"),
    "space": ("likes", "trendingScore"),
}
NOT_WITH_PROVIDER = frozenset({"createdAt", "trendingScore"})

# Repos made before the Hub recorded creation dates carry one of these values (the backfill took
# more than a second): they mean "unknown", not that date.
CREATED_AT_UNKNOWN = frozenset({"2022-03-02T23:29:04.000Z", "2022-03-02T23:29:05.000Z"})

# The fields of a listing entry. Every answer carries `_id` and `id`. The default listing adds
# DEFAULT_FIELDS (models also `modelId`, which `expand` cannot ask for); `full=true` adds
# FULL_FIELDS. With `expand`, only the fields asked come back, and `full` may not be sent beside
# it (the official client forbids it), so "full plus X" is written as the list FULL_FIELDS
# stands for, plus X.
DEFAULT_FIELDS: Mapping[RepoType, tuple[str, ...]] = {
    "model": (
        "likes",
        "trendingScore",
        "private",
        "downloads",
        "tags",
        "pipeline_tag",
        "library_name",
        "createdAt",
    ),
    "dataset": (
        "author",
        "sha",
        "lastModified",
        "private",
        "gated",
        "disabled",
        "likes",
        "trendingScore",
        "downloads",
        "tags",
        "createdAt",
    ),
    "space": ("likes", "trendingScore", "private", "sdk", "tags", "createdAt"),
}
FULL_FIELDS = ("author", "sha", "lastModified", "gated", "disabled", "siblings")
PROVIDER_MAPPING = "inferenceProviderMapping"

# Every field a listing's `expand` accepts, per type: huggingface_hub's ExpandModelProperty_T,
# ExpandDatasetProperty_T and ExpandSpaceProperty_T (2.4), less what listings refuse
# (`baseModels`, `childrenModelCount`, `usedStorage`: single-repo endpoints only,
# huggingface_hub PR #3182). What `--all-fields` sends.
ALL_FIELDS: Mapping[RepoType, tuple[str, ...]] = {
    "model": (
        "author",
        "cardData",
        "config",
        "createdAt",
        "disabled",
        "downloads",
        "downloadsAllTime",
        "evalResults",
        "gated",
        "gguf",
        "inference",
        "inferenceProviderMapping",
        "lastModified",
        "library_name",
        "likes",
        "mask_token",
        "model-index",
        "pipeline_tag",
        "private",
        "resourceGroup",
        "safetensors",
        "sha",
        "siblings",
        "spaces",
        "tags",
        "transformersInfo",
        "trendingScore",
        "widgetData",
    ),
    "dataset": (
        "author",
        "cardData",
        "citation",
        "createdAt",
        "description",
        "disabled",
        "downloads",
        "downloadsAllTime",
        "gated",
        "lastModified",
        "likes",
        "mainSize",
        "paperswithcode_id",
        "private",
        "resourceGroup",
        "sha",
        "siblings",
        "tags",
        "trendingScore",
    ),
    "space": (
        "author",
        "cardData",
        "createdAt",
        "datasets",
        "disabled",
        "lastModified",
        "likes",
        "models",
        "private",
        "region",
        "resourceGroup",
        "runtime",
        "sdk",
        "sha",
        "siblings",
        "subdomain",
        "tags",
        "trendingScore",
    ),
}


# Fields a listing refuses (single-repo endpoints only; huggingface_hub PR #3182).
REFUSED_BY_LISTINGS = frozenset({"baseModels", "childrenModelCount", "usedStorage"})


def sort_names(names: Iterable[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The sorts to send (`a,b` split, aliases mapped, repeats dropped), and those hfharvest does
    not know: sent as given, for the Hub may have added them. A sort that differs from a known
    one only in case, `_` or a plural (`Likes`, `like`, `download`) is refused: the Hub would
    answer 400 after a request, and the sort meant is plain."""
    given = [part.strip() for name in names for part in name.split(",") if part.strip()]
    sorts = tuple(dict.fromkeys(SORT_ALIASES.get(name, name) for name in given))
    for sort in sorts:
        meant = _FOLDED.get(_folded(sort))
        if sort not in SORTS and meant is not None:
            raise UsageError(
                f"`sort` {sort!r} is not a sort the Hub knows: did you mean {meant}?",
                parameter="sort",
                value=sort,
                hint=f"the sorts hfharvest knows: {', '.join(SORTS)}",
            )
    return sorts, tuple(sort for sort in sorts if sort not in SORTS)


def closest_sort(name: str) -> str | None:
    """The known sort a name is nearest to (`trending`: trendingScore), if any is near."""
    found = difflib.get_close_matches(name, SORTS, n=1, cutoff=0.6)
    return found[0] if found else None


def _folded(name: str) -> str:
    """A sort's name without case, `_` or a plural's `s`: what a typo keeps of it."""
    return name.lower().replace("_", "").removesuffix("s")


_FOLDED = {_folded(name): SORT_ALIASES[name] for name in SORT_ALIASES}


def expand_fields(
    repo_type: RepoType, given: Iterable[str]
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The fields to ask for (`a,b` split; repeats dropped), and those in no list hfharvest
    knows: sent as given. A field known to be wrong is refused before any request."""
    fields = tuple(dict.fromkeys(f.strip() for name in given for f in name.split(",") if f.strip()))
    for name in fields:
        if name in REFUSED_BY_LISTINGS:
            raise UsageError(
                f"`expand` {name} is refused by listings (single-repo answers only)",
                parameter="expand",
                value=name,
                hint="drop it; `all_fields` asks for every field a listing allows",
            )
        owners = [t for t in REPO_TYPES if name in ALL_FIELDS[t]]
        if owners and repo_type not in owners:
            raise UsageError(
                f"`expand` {name} is a field of {' and '.join(t + 's' for t in owners)}, not of "
                f"{repo_type}s",
                parameter="expand",
                value=name,
                hint=f"the fields of {repo_type}s: {', '.join(ALL_FIELDS[repo_type])}",
            )
    unknown = tuple(name for name in fields if name not in ALL_FIELDS[repo_type])
    return fields, unknown


def fields_of(repo_type: RepoType, *, full: bool) -> tuple[str, ...]:
    """What the default listing (or `full=true`) answers, as a list `expand` accepts."""
    default = DEFAULT_FIELDS[repo_type]
    return (*default, *(f for f in FULL_FIELDS if f not in default)) if full else default


# The listing filters huggingface_hub's list_models, list_datasets and list_spaces (2.4) take
# besides search, author, filter, pipeline_tag and inference_provider, and how each goes on the
# wire: as its own parameter (repeated for a list, booleans as requests writes them, "True"), or
# as a tag of `filter` (`dataset:X`, `language:fr`, `benchmark:official`).
OWN_PARAMETERS = (
    "apps",
    "gated",
    "inference",
    "num_parameters",
    "datasets",
    "models",
    "linked",
    "card_data",
    "fetch_config",
)
# The parameters whose wire name is not their own, and the switches sent only when on.
WIRE_NAMES = {"card_data": "cardData", "fetch_config": "config"}
SWITCHES = frozenset({"linked", "card_data", "fetch_config"})
TAG_FILTERS = {
    "trained_dataset": "dataset",
    "language_creators": "language_creators",
    "language": "language",
    "multilinguality": "multilinguality",
    "size_categories": "size_categories",
    "task_categories": "task_categories",
    "task_ids": "task_ids",
    "benchmark": "benchmark",
}
HUB_FILTERS = (*OWN_PARAMETERS, *TAG_FILTERS)


# huggingface_hub 2.4's listing parameters (`list_models`, `list_datasets`, `list_spaces`) are
# hfharvest's options of the same name, but these (docs/usage.md shows them side by side; a test
# fails when the installed huggingface_hub has one with no counterpart).
HF_RENAMED: Mapping[str, str] = {"cardData": "card_data"}


def counterpart(hf_name: str) -> str:
    """The option of hfharvest that stands for huggingface_hub's listing parameter `hf_name`."""
    return HF_RENAMED.get(hf_name, hf_name)


def filter_params(values: Mapping[str, object]) -> tuple[tuple[str, str], ...]:
    """The wire form of the filters in `values` (name -> value), as huggingface_hub sends them;
    those at their default (None, empty, `linked` False) are not sent; `gated=False` is."""
    params: list[tuple[str, str]] = []
    for name in HUB_FILTERS:
        value = values.get(name)
        if value is None or value == () or (value is False and name in SWITCHES):
            continue
        items = value if isinstance(value, tuple) else (value,)
        for item in items:
            # A boolean as huggingface_hub's client (httpx) writes it: true, false.
            text = str(item).lower() if isinstance(item, bool) else str(item)
            if name in TAG_FILTERS:
                prefix = f"{TAG_FILTERS[name]}:"
                params.append(("filter", text if text.startswith(prefix) else prefix + text))
            else:
                params.append((WIRE_NAMES.get(name, name), text))
    return tuple(params)


# The numbers of a listing entry a record is made from (a dotted path within the entry): the
# walk says itself which of them no record can hold; the other numbers only `raw` keeps.
RECORD_NUMBERS = frozenset(
    {
        "likes",
        "downloads",
        "downloadsAllTime",
        "trendingScore",
        "safetensors.total",
        "gguf.total",
        "gguf.context_length",
    }
)

# Orders of magnitude of each listing (2026), for the cost warning only: the Hub gives no count.
CATALOG_SIZE: Mapping[RepoType, int] = {
    "model": 2_000_000,
    "dataset": 1_500_000,
    "space": 1_500_000,
}


def repo_type_words() -> str:
    """The repo types, for a message: "model, dataset or space"."""
    return f"{', '.join(REPO_TYPES[:-1])} or {REPO_TYPES[-1]}"
