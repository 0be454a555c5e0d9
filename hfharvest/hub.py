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

# Repos made before the Hub recorded creation dates carry this value: it means "unknown".
CREATED_AT_UNKNOWN = "2022-03-02T23:29:04.000Z"

# Orders of magnitude of each listing (2026), for the cost warning only: the Hub gives no count.
CATALOG_SIZE: Mapping[RepoType, int] = {
    "model": 2_000_000,
    "dataset": 1_500_000,
    "space": 1_500_000,
}
