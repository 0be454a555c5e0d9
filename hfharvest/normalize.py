"""Pure normalization: one raw API object in, one record of the documented schema out.

No I/O and no exceptions: anything that is not an object with a usable id gives None (the walk
counts it as skipped), and a field of the wrong type becomes null rather than an invented value.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from hfharvest.hub import CREATED_AT_UNKNOWN

BASE_MODEL_RELATIONS = frozenset({"finetune", "quantized", "adapter", "merge"})
GATED_VALUES = frozenset({"auto", "manual"})
INFERENCE_STATES = frozenset({"warm", "cold"})
# A dataset's tags `prefix:value`, and the record's key for their values.
DATASET_TAGS = (
    ("task_categories", "task_categories"),
    ("modality", "modalities"),
    ("format", "formats"),
    ("size_categories", "size_categories"),
    ("language", "languages"),
)
_HUB_TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z").fullmatch


# One rule for every number: a record holds integers of 64 bits (signed: what JSON readers,
# Arrow, polars and Parquet hold) and finite floats. A number past them (orjson reads an integer
# past 64 bits as a float that is no longer it; `1e400` is infinite) is never written as another
# number: a count (what sorts and bounds read) skips its entry, any other field is null, and
# either is said (`OUT_OF_RANGE` lists the fields, for the walk to warn).
COUNTS = ("likes", "downloads", "downloadsAllTime")
_LARGEST = 2**63 - 1
OUT_OF_RANGE = "_out_of_range"  # the fields written as null, for the walk: popped, never written


def oversized(raw: Any) -> str | None:
    """The count of an entry too big for a record (past 64 bits: read as a float, inexact), if
    any: such an entry is skipped and counted, never written with a number that is not its own."""
    if type(raw) is not dict:
        return None
    return next((key for key in COUNTS if _too_big(raw.get(key))), None)


def _too_big(value: Any) -> bool:
    return type(value) in (int, float) and not -_LARGEST - 1 <= value <= _LARGEST


def normalize(raw: Any, repo_type: str) -> dict[str, Any] | None:
    """Turn one listing entry into a record (without `found_by`), or None when it has no id, or
    a count too big for a record (`oversized`).

    This runs once per entry of a walk of millions, so it is written for speed: exact type
    checks (`type(x) is int`, which also keeps bools out), one pass over the tags, and the Hub's
    own timestamp form let through without parsing.
    """
    if type(raw) is not dict:
        return None
    get = raw.get
    repo_id = get("id")
    if type(repo_id) is not str or not repo_id:
        repo_id = get("modelId")
        if type(repo_id) is not str or not repo_id:
            return None
    owner, _, name = repo_id.rpartition("/")
    author = get("author")
    likes, downloads, all_time = get("likes"), get("downloads"), get("downloadsAllTime")
    # A count read as a float (past 64 bits), or an integer past 63, is the rare case to look at:
    # the common one costs three type checks and three comparisons.
    if (
        float in (type(likes), type(downloads), type(all_time))
        or (type(likes) is int and likes > _LARGEST)
        or (type(downloads) is int and downloads > _LARGEST)
        or (type(all_time) is int and all_time > _LARGEST)
    ) and oversized(raw) is not None:
        return None
    private, disabled, gated = get("private"), get("disabled"), get("gated")
    trending = get("trendingScore")
    sha, created, modified = get("sha"), get("createdAt"), get("lastModified")
    pipeline, library = get("pipeline_tag"), get("library_name")
    is_model = repo_type == "model"
    tags, license_, facts = _tag_facts(get("tags"))
    listed = facts.get if tags is not None else _nothing  # [] when tags came without one, else null
    providers = _providers(get("inferenceProviderMapping"))
    siblings = get("siblings")
    record: dict[str, Any] = {
        "id": repo_id,
        "type": repo_type,
        "author": author if type(author) is str and author else owner or None,
        "name": name,
        "sha": sha if type(sha) is str else None,
        # The Hub's own form is by far the common case: let it through without parsing.
        "created_at": created
        if type(created) is str and _HUB_TIMESTAMP(created) and created not in CREATED_AT_UNKNOWN
        else _created_at(created),
        "last_modified": modified
        if type(modified) is str and _HUB_TIMESTAMP(modified)
        else timestamp(modified),
        "private": private if type(private) is bool else None,
        "disabled": disabled if type(disabled) is bool else None,
        # One type per key: the Hub's `false` ("not gated") is the string "no".
        "gated": "no" if gated is False else _one_of(gated, GATED_VALUES),
        "likes": likes if type(likes) is int else None,
        "downloads": downloads if type(downloads) is int else None,
        "downloads_all_time": all_time if type(all_time) is int else None,
        "trending_score": trending
        if type(trending) is int and -_LARGEST <= trending <= _LARGEST
        else _number(trending),
        "pipeline_tag": pipeline if is_model and type(pipeline) is str else None,
        "library_name": library if is_model and type(library) is str else None,
        "tags": tags,
        "license": license_,
        "arxiv": listed("arxiv", []),
        "datasets": listed("dataset", []),
        "base_models": listed("base_model", []),
        "inference_providers": None
        if providers is None
        else sorted({p["provider"] for p in providers}),
        "files": _files(siblings) if type(siblings) is list else None,
    }
    if is_model:
        gguf = get("gguf")
        inference = get("inference")
        record["providers"] = providers
        parameters = _int_at(get("safetensors"), "total")
        record["parameters"] = parameters if parameters is not None else _int_at(gguf, "total")
        record["context_length"] = _int_at(gguf, "context_length")
        if record["parameters"] is _OUT or record["context_length"] is _OUT:
            _out_of_range(record)
        record["inference"] = _one_of(inference, INFERENCE_STATES)
    elif repo_type == "dataset":
        for key, field in DATASET_TAGS:
            record[field] = listed(key, [])
    elif repo_type == "space":
        runtime = get("runtime")
        hardware = runtime.get("hardware") if type(runtime) is dict else None
        record["sdk"] = _string(get("sdk"))
        record["runtime_stage"] = _string(runtime.get("stage")) if type(runtime) is dict else None
        record["hardware"] = _string(hardware.get("current")) if type(hardware) is dict else None
        record["models"] = _union(get("models"), None if tags is None else [])
        record["datasets"] = _union(get("datasets"), record["datasets"])
    if record["trending_score"] is _OUT:
        _out_of_range(record)
    return record


_EMISSION = re.compile(r"\d+\.\d+|\d+")


def emissions(raw: Any) -> float | None:
    """A model's CO2 emissions as its card gives them (`cardData.co2_eq_emissions`, a number or
    `{emissions: ...}`), read as huggingface_hub reads them; None when the card gives none."""
    card = raw.get("cardData") if type(raw) is dict else None
    emission = card.get("co2_eq_emissions") if type(card) is dict else None
    if type(emission) is dict:
        emission = emission.get("emissions")
    found = _EMISSION.search(str(emission)) if emission else None
    return float(found.group(0)) if found else None


def _tag_facts(value: Any) -> tuple[list[str] | None, str | None, dict[str, list[str]]]:
    """(tags sorted and unique, license, {prefix: values} of the other `prefix:value` tags).

    One pass over the tags. `base_model:<relation>:org/x` and `base_model:org/x` name the same
    model: its values are the models, without the relation.
    """
    if type(value) is not list:
        return None, None, {}  # no tags came: nothing can be said of them
    try:
        tags = sorted(set(value))  # the common case, all strings, at C speed
    except TypeError:  # something unhashable, or strings mixed with other types
        tags = None
    # Strings sort only among strings: if the first is one, all are.
    if tags is None or (tags and type(tags[0]) is not str):
        tags = sorted({tag for tag in value if type(tag) is str})
    license_ = None
    facts: dict[str, list[str]] = {}
    for tag in tags:
        if ":" not in tag:
            continue
        key, _, rest = tag.partition(":")
        if not rest:
            continue
        if key == "license":
            license_ = license_ or rest
            continue
        if key == "base_model":
            relation, _, model = rest.partition(":")
            rest = model if relation in BASE_MODEL_RELATIONS and model else rest
        facts.setdefault(key, []).append(rest)
    bases = facts.get("base_model")
    if bases is not None and len(bases) > 1:
        facts["base_model"] = sorted(set(bases))
    return tags, license_, facts


def _one_of(value: Any, allowed: frozenset[str]) -> str | None:
    return value if type(value) is str and value in allowed else None


def _nothing(key: str, default: list[str]) -> None:
    return None


def _union(own: Any, from_tags: list[str] | None) -> list[str] | None:
    """A space's own list of models or datasets with what its tags say; null when neither came."""
    if type(own) is not list:
        return from_tags
    return sorted({item for item in own if type(item) is str}.union(from_tags or ()))


class _OutOfRange:
    """A number past what a record holds, until `_out_of_range` writes it as null."""


_OUT: Any = _OutOfRange()


def _out_of_range(record: dict[str, Any]) -> None:
    fields = [key for key, value in record.items() if value is _OUT]
    for key in fields:
        record[key] = None
    record[OUT_OF_RANGE] = [*record.get(OUT_OF_RANGE, ()), *fields]


def _int_at(value: Any, key: str) -> int | None:
    item = value.get(key) if type(value) is dict else None
    if type(item) is int and -_LARGEST - 1 <= item <= _LARGEST:
        return item
    return _OUT if _too_big(item) else None


def _string(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _number(value: Any) -> int | float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if value != value:  # NaN is not a number a record can carry
        return None
    return _OUT if _too_big(value) else value


def timestamp(value: Any) -> str | None:
    """ISO-8601 in UTC with a `Z`, milliseconds kept (UTC when no zone is given); None when it is
    no timestamp at all. The one conversion of times: records and bounds both use it."""
    if not isinstance(value, str):
        return None
    if _HUB_TIMESTAMP(value):
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
    stamp = timestamp(value)
    return None if stamp in CREATED_AT_UNKNOWN else stamp


def _providers(value: Any) -> list[dict[str, str | None]] | None:
    """`inferenceProviderMapping` in either form the Hub has served (a list of objects naming
    their provider, or an object keyed by provider), as one list sorted by provider."""
    if type(value) is dict:
        items = [
            {**v, "provider": k} if type(v) is dict else {"provider": k} for k, v in value.items()
        ]
    elif type(value) is list:
        items = [item for item in value if type(item) is dict]
    else:
        return None
    providers = [
        {
            "provider": item["provider"],
            "provider_id": _string(item.get("providerId")),
            "status": _string(item.get("status")),
            "task": _string(item.get("task")),
        }
        for item in items
        if type(item.get("provider")) is str
    ]
    return sorted(providers, key=lambda p: str(p["provider"]))


def _files(value: list[Any]) -> list[str]:
    try:
        files = [item["rfilename"] for item in value]  # the common case, at comprehension speed
        # A TypeError unless every name is a string, checked in C: a generator over the names
        # took 250 ns a model more (1 % of a walk's CPU). JSON has no subclass of str.
        "".join(files)
        return files
    except (TypeError, KeyError):
        pass
    return [
        item["rfilename"]
        for item in value
        if type(item) is dict and type(item.get("rfilename")) is str
    ]
