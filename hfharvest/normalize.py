"""Pure normalization: one raw API object in, one record of the documented schema out.

No I/O and no exceptions: anything that is not an object with a usable id gives None (the walk
counts it as skipped), and a field of the wrong type becomes null rather than an invented value.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

# Repos made before the Hub recorded creation dates all carry this value: it means "unknown".
CREATED_AT_UNKNOWN = "2022-03-02T23:29:04.000Z"
BASE_MODEL_RELATIONS = frozenset({"finetune", "quantized", "adapter", "merge"})
GATED_VALUES = frozenset({"auto", "manual"})
_HUB_TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


def normalize(raw: Any, repo_type: str) -> dict[str, Any] | None:
    """Turn one listing entry into a record (without `found_by`), or None when it has no id."""
    if not isinstance(raw, dict):
        return None
    repo_id = _string(raw.get("id")) or _string(raw.get("modelId"))
    if not repo_id:
        return None
    owner, _, name = repo_id.rpartition("/")
    tags = _tags(raw.get("tags"))
    record: dict[str, Any] = {
        "id": repo_id,
        "type": repo_type,
        "author": _string(raw.get("author")) or owner or None,
        "name": name,
        "sha": _string(raw.get("sha")),
        "created_at": _created_at(raw.get("createdAt")),
        "last_modified": _timestamp(raw.get("lastModified")),
        "private": _bool(raw.get("private")),
        "disabled": _bool(raw.get("disabled")),
        "gated": _gated(raw.get("gated")),
        "likes": _int(raw.get("likes")),
        "downloads": _int(raw.get("downloads")),
        "downloads_all_time": _int(raw.get("downloadsAllTime")),
        "trending_score": _number(raw.get("trendingScore")),
        "pipeline_tag": _string(raw.get("pipeline_tag")) if repo_type == "model" else None,
        "library_name": _string(raw.get("library_name")) if repo_type == "model" else None,
        "tags": tags,
        "license": _license(tags),
        "arxiv": _tag_values(tags, "arxiv:"),
        "datasets": _tag_values(tags, "dataset:"),
        "base_models": _base_models(tags),
        "inference_providers": _providers(raw.get("inferenceProviderMapping")),
        "files": _files(raw.get("siblings")),
    }
    if repo_type == "space":
        record["sdk"] = _string(raw.get("sdk"))
    return record


def _string(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _bool(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _number(value: Any) -> int | float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return value if value == value else None  # NaN is not a number a record can carry


def _gated(value: Any) -> bool | str | None:
    if value is False:
        return False
    return value if isinstance(value, str) and value in GATED_VALUES else None


def _timestamp(value: Any) -> str | None:
    """ISO-8601 in UTC with a `Z`, milliseconds kept; None when it is no timestamp at all."""
    if not isinstance(value, str):
        return None
    if _HUB_TIMESTAMP.fullmatch(value):
        return value  # the Hub's own form, by far the common case: no parsing needed
    try:
        moment = datetime.fromisoformat(value)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        moment = moment.astimezone(UTC)
    except (ValueError, OverflowError):  # not a date, or out of datetime's range once in UTC
        return None
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _created_at(value: Any) -> str | None:
    stamp = _timestamp(value)
    return None if stamp == CREATED_AT_UNKNOWN else stamp


def _tags(value: Any) -> list[str] | None:
    if not isinstance(value, list):
        return None
    return sorted({tag for tag in value if isinstance(tag, str)})


def _tag_values(tags: list[str] | None, prefix: str) -> list[str] | None:
    if tags is None:
        return None
    return [tag[len(prefix) :] for tag in tags if tag.startswith(prefix) and len(tag) > len(prefix)]


def _license(tags: list[str] | None) -> str | None:
    licenses = _tag_values(tags, "license:")
    return licenses[0] if licenses else None


def _base_models(tags: list[str] | None) -> list[str] | None:
    values = _tag_values(tags, "base_model:")
    if values is None:
        return None
    models = set()
    for value in values:
        relation, _, rest = value.partition(":")
        models.add(rest if relation in BASE_MODEL_RELATIONS and rest else value)
    return sorted(models)


def _providers(value: Any) -> list[str] | None:
    if isinstance(value, dict):
        return sorted(str(name) for name in value)
    if isinstance(value, list):
        names = (item.get("provider") for item in value if isinstance(item, dict))
        return sorted({name for name in names if isinstance(name, str)})
    return None


def _files(value: Any) -> list[str] | None:
    if not isinstance(value, list):
        return None
    return [
        item["rfilename"]
        for item in value
        if isinstance(item, dict) and isinstance(item.get("rfilename"), str)
    ]
