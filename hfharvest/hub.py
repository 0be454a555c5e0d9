"""Facts about the Hugging Face Hub listing API, each written once (see docs of hub-api).

The client, the settings, the normalizer and the offline emulator all take them from here, so a
sort name, the page maximum or the "unknown creation date" cannot drift apart between them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

RepoType = Literal["model", "dataset", "space"]
REPO_TYPES: tuple[RepoType, ...] = ("model", "dataset", "space")

DEFAULT_ENDPOINT = "https://huggingface.co"
MAX_PAGE_SIZE = 1000  # observed: a larger `limit` is answered with 1,000 entries

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
    "model": ("likes", "trendingScore", "private", "downloads", "tags", "pipeline_tag",
              "library_name", "createdAt"),
    "dataset": ("author", "sha", "lastModified", "private", "gated", "disabled", "likes",
                "trendingScore", "downloads", "tags", "createdAt"),
    "space": ("likes", "trendingScore", "private", "sdk", "tags", "createdAt"),
}  # fmt: skip
FULL_FIELDS = ("author", "sha", "lastModified", "gated", "disabled", "siblings")
PROVIDER_MAPPING = "inferenceProviderMapping"

# Every field a listing's `expand` accepts, per type: huggingface_hub's ExpandModelProperty_T,
# ExpandDatasetProperty_T and ExpandSpaceProperty_T (2.4), less what listings refuse
# (`baseModels`, `childrenModelCount`, `usedStorage`: single-repo endpoints only,
# huggingface_hub PR #3182). What `--all-fields` sends.
ALL_FIELDS: Mapping[RepoType, tuple[str, ...]] = {
    "model": ("author", "cardData", "config", "createdAt", "disabled", "downloads",
              "downloadsAllTime", "evalResults", "gated", "gguf", "inference",
              "inferenceProviderMapping", "lastModified", "library_name", "likes", "mask_token",
              "model-index", "pipeline_tag", "private", "resourceGroup", "safetensors", "sha",
              "siblings", "spaces", "tags", "transformersInfo", "trendingScore", "widgetData"),
    "dataset": ("author", "cardData", "citation", "createdAt", "description", "disabled",
                "downloads", "downloadsAllTime", "gated", "lastModified", "likes", "mainSize",
                "paperswithcode_id", "private", "resourceGroup", "sha", "siblings", "tags",
                "trendingScore"),
    "space": ("author", "cardData", "createdAt", "datasets", "disabled", "lastModified", "likes",
              "models", "private", "region", "resourceGroup", "runtime", "sdk", "sha", "siblings",
              "subdomain", "tags", "trendingScore"),
}  # fmt: skip


def fields_of(repo_type: RepoType, *, full: bool) -> tuple[str, ...]:
    """What the default listing (or `full=true`) answers, as a list `expand` accepts."""
    default = DEFAULT_FIELDS[repo_type]
    return (*default, *(f for f in FULL_FIELDS if f not in default)) if full else default


# Orders of magnitude of each listing (2026), for the cost warning only: the Hub gives no count.
CATALOG_SIZE: Mapping[RepoType, int] = {
    "model": 2_000_000,
    "dataset": 1_500_000,
    "space": 1_500_000,
}
