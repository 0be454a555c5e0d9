"""The listing API's semantics, without HTTP: parse a query, pick a page, project its fields.

Mirrors what `shared/hub-api.md` records of the Hub: AND tag filters, OR providers (`all` = any),
the documented sorts plus `likes30d` and `id`, snake_case and unknown sorts rejected, sorts the Hub
refused beside `inference_provider` rejected too, page size capped at 1000, keyset cursors on
(sort key, `_id`) encoded as the Hub encodes them, default / `full` / `expand` field sets.
"""

from __future__ import annotations

import base64
import binascii
import json
from bisect import bisect_right
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import hfharvest.hub as hub
from hfharvest.hub import MAX_PAGE_SIZE, SORTS
from hfharvest.testing.catalog import Catalog, Repo, key_from_cursor

_TRUE = {"true", "1", "True"}

# What the default listing answers, and what `full=true` and `expand` may add: the package's own
# reading of the Hub (`hfharvest.hub`), with `likes30d`, which the Hub also expands.
DEFAULT_FIELDS: dict[str, tuple[str, ...]] = {
    repo_type: ("_id", "id", *fields, *(("modelId",) if repo_type == "model" else ()))
    for repo_type, fields in hub.DEFAULT_FIELDS.items()
}
EXPANDABLE: dict[str, tuple[str, ...]] = {
    repo_type: (*fields, "likes30d") for repo_type, fields in hub.ALL_FIELDS.items()
}


class ListingError(Exception):
    """A query the Hub would refuse: `status` and the text of its `error`."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class ListingQuery:
    repo_type: str
    sort: str
    limit: int
    fields: tuple[str, ...]
    search: tuple[str, ...]  # every one must be in the id (our reading of several values)
    author: str | None
    tags: tuple[str, ...]
    pipeline_tag: str | None
    providers: tuple[str, ...]
    after: tuple[Any, ...] | None
    own: tuple[tuple[str, str], ...] = ()  # gated, apps, inference, num_parameters, spaces' ...

    def predicate_key(self) -> tuple[Any, ...]:
        return (self.search, self.author, self.tags, self.pipeline_tag, self.providers, self.own)

    def matches(self, repo: Repo) -> bool:
        if any(text.lower() not in repo["id"].lower() for text in self.search):
            return False
        if self.author and (repo["author"] or "").lower() != self.author.lower():
            return False
        if self.pipeline_tag and repo.get("pipeline_tag") != self.pipeline_tag:
            return False
        if self.tags and not set(self.tags) <= _tag_set(repo):
            return False
        if not all(_OWN_FILTERS[name](repo, value) for name, value in self.own):
            return False
        return not self.providers or _served_by(repo, self.providers)


# Apps a model runs in, by its library (as the Hub's `apps` filter answers for the common ones).
_APP_LIBRARIES = {
    "ollama": "gguf",
    "llama.cpp": "gguf",
    "lmstudio": "gguf",
    "jan": "gguf",
    "mlx-lm": "mlx",
    "vllm": "transformers",
}


def _size_between(repo: Repo, text: str) -> bool:
    """`num_parameters`: `min:6B,max:128B`, either end optional (K, M, B, T)."""
    total = (repo.get("safetensors") or repo.get("gguf") or {}).get("total")
    if total is None:
        return False
    scale = {"K": 1e3, "M": 1e6, "B": 1e9, "T": 1e12}
    for part in text.split(","):
        end, _, amount = part.partition(":")
        number = (
            float(amount[:-1]) * scale[amount[-1].upper()]
            if amount[-1:].isalpha()
            else (float(amount))
        )
        if (end == "min" and total < number) or (end == "max" and total > number):
            return False
    return True


_OWN_FILTERS: dict[str, Any] = {
    # Both spellings of a boolean: huggingface_hub sends true/false, requests True/False.
    "gated": lambda repo, v: (repo.get("gated") not in (False, None)) == (v in _TRUE),
    "apps": lambda repo, v: repo.get("library_name") == _APP_LIBRARIES.get(v, v),
    "inference": lambda repo, v: repo.get("inference") == v,
    "num_parameters": _size_between,
    "datasets": lambda repo, v: v in (repo.get("datasets") or ()),
    "models": lambda repo, v: v in (repo.get("models") or ()),
    "linked": lambda repo, v: v not in _TRUE or bool(repo.get("models") or repo.get("datasets")),
}


def _tag_set(repo: Repo) -> set[str]:
    extra = {repo.get("library_name"), repo.get("pipeline_tag"), repo.get("sdk")}
    return set(repo["tags"]) | {tag for tag in extra if tag}


def _served_by(repo: Repo, providers: tuple[str, ...]) -> bool:
    live = {
        m["provider"] for m in repo.get("inferenceProviderMapping", ()) if m["status"] == "live"
    }
    return bool(live) if "all" in providers else not live.isdisjoint(providers)


def parse_query(
    repo_type: str, params: Sequence[tuple[str, str]], extra_sorts: Mapping[str, str] | None = None
) -> ListingQuery:
    """Read a listing's query string as the Hub does; raise `ListingError` where it would.

    `extra_sorts` are sorts this Hub knows beyond hfharvest's (a name -> the sort it orders as):
    a Hub that added a sort."""
    values: dict[str, list[str]] = {}
    for name, value in params:
        values.setdefault(name.removesuffix("[]"), []).append(value)

    def one(name: str) -> str | None:
        return values[name][-1] if name in values else None

    sort = one("sort") or "likes"  # the Hub's listing is by likes when no sort is given
    sort = (extra_sorts or {}).get(sort, sort)
    if sort not in SORTS:
        raise ListingError(400, f"Invalid sort parameter: {sort}")
    providers = tuple(p for v in values.get("inference_provider", ()) for p in v.split(",") if p)
    if providers and sort in hub.NOT_WITH_PROVIDER:
        raise ListingError(400, f"Invalid sort parameter: {sort}")
    if one("direction") not in (None, "-1"):
        raise ListingError(400, "Invalid direction parameter: only -1 is supported")
    return ListingQuery(
        repo_type=repo_type,
        sort=sort,
        limit=_limit(one("limit")),
        fields=_fields(repo_type, one("full") in _TRUE, tuple(values.get("expand", ())))
        + _asked_besides(repo_type, one),
        search=tuple(values.get("search", ())),
        author=one("author"),
        tags=tuple(sorted(set(values.get("filter", ())))),
        pipeline_tag=one("pipeline_tag"),
        providers=tuple(sorted(set(providers))),
        after=_decode_cursor(sort, one("cursor")),
        own=tuple(sorted((name, value) for name in _OWN_FILTERS for value in values.get(name, ()))),
    )


def _asked_besides(repo_type: str, one: Callable[[str], str | None]) -> tuple[str, ...]:
    """huggingface_hub's `cardData=true` and `config=true`: those fields too (models)."""
    if repo_type != "model":
        return ()
    return tuple(name for name in ("cardData", "config") if one(name) in _TRUE)


def _limit(text: str | None) -> int:
    if text is None:
        return MAX_PAGE_SIZE
    try:
        limit = int(text)
    except ValueError:
        raise ListingError(400, f"Invalid limit parameter: {text}") from None
    if limit < 1:
        raise ListingError(400, f"Invalid limit parameter: {text}")
    return min(limit, MAX_PAGE_SIZE)


def _fields(repo_type: str, full: bool, expand: tuple[str, ...]) -> tuple[str, ...]:
    if expand and full:
        raise ListingError(400, "Cannot use 'expand' together with 'full'")
    if expand:
        unknown = sorted(set(expand) - set(EXPANDABLE[repo_type]))
        if unknown:
            raise ListingError(400, f"Invalid expand field: {unknown[0]}")
        return ("_id", "id", *dict.fromkeys(expand))
    fields = DEFAULT_FIELDS[repo_type]
    return (*fields, *(f for f in hub.FULL_FIELDS if f not in fields)) if full else fields


def encode_cursor(sort: str, repo: Repo) -> str:
    """The Hub's cursor form: a MongoDB-style keyset condition, base64-encoded JSON."""
    value = repo[sort]
    if sort == "id":
        condition: dict[str, Any] = {"id": {"$gt": value}}
    else:
        condition = {"$or": [{sort: value, "_id": {"$gt": repo["_id"]}}, {sort: {"$lt": value}}]}
    return base64.b64encode(json.dumps(condition, separators=(",", ":")).encode()).decode()


def _decode_cursor(sort: str, cursor: str | None) -> tuple[Any, ...] | None:
    if cursor is None:
        return None
    try:
        condition = json.loads(base64.b64decode(cursor, validate=True))
        if sort == "id":
            return key_from_cursor(sort, condition["id"]["$gt"], "")
        first = condition["$or"][0]
        return key_from_cursor(sort, first[sort], first["_id"]["$gt"])
    except (ValueError, KeyError, IndexError, TypeError, binascii.Error):
        raise ListingError(400, "Invalid cursor") from None


def run_query(
    catalog: Catalog, query: ListingQuery, deep: tuple[int, int] | None = None
) -> tuple[list[Repo], str | None]:
    """One page of answers (fields projected) and the cursor of the next page, if any.

    `deep` = (depth, size): a page that starts deeper than `depth` entries and asks for more
    than `size` takes the gateway past its limit (`ListingError` 504), as the Hub's deep pages
    of big walks were reported to (huggingface_hub #2460, #2581; a model, not a measurement).
    """
    keys, repos = catalog.query(query.repo_type, query.sort, query.predicate_key(), query.matches)
    start = 0 if query.after is None else bisect_right(keys, query.after)
    if deep is not None and start >= deep[0] and query.limit > deep[1]:
        raise ListingError(504, "Gateway Time-out")
    chosen = repos[start : start + query.limit]
    more = start + query.limit < len(repos)
    cursor = encode_cursor(query.sort, chosen[-1]) if chosen and more else None
    return [project(repo, query.fields) for repo in chosen], cursor


def project(repo: Repo, fields: tuple[str, ...]) -> Repo:
    return {name: repo[name] for name in fields if name in repo and repo[name] is not None}
