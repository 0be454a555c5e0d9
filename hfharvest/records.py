"""Records: their types per repo type (`ModelRecord`, `DatasetRecord`, `SpaceRecord`, held equal
to the record schema by a test), and a record on its way from the walk to a sink (`Final`): its
value or its JSON, each made once.

With one sort a record reaches its sink as the dict `normalize` made: a file sink encodes it
(once), the Python API's hand-over sink passes the dict on as it is. With several sorts a record
waits in the spool as its JSON (encoded once) and comes back as that JSON: a file sink writes the
bytes as they are, the hand-over sink decodes them (once). `raw`, the API object, travels beside
it the same way.
"""

from __future__ import annotations

from typing import Any, Literal, NotRequired, TypedDict

import orjson

Record = dict[str, Any]  # a record as the sinks see it; callers see the TypedDicts below


class Provider(TypedDict):
    """One inference provider serving a model (`providers`)."""

    provider: str
    provider_id: str | None
    status: str | None
    task: str | None


class _Common(TypedDict):
    """The keys every record has, whatever its type (docs/record.md)."""

    id: str
    author: str | None
    name: str
    sha: str | None
    created_at: str | None
    last_modified: str | None
    private: bool | None
    disabled: bool | None
    gated: Literal["no", "auto", "manual"] | None
    likes: int | None
    downloads: int | None
    downloads_all_time: int | None
    trending_score: float | None
    pipeline_tag: str | None
    library_name: str | None
    tags: list[str] | None
    license: str | None
    arxiv: list[str] | None
    datasets: list[str] | None
    base_models: list[str] | None
    inference_providers: list[str] | None
    files: list[str] | None
    found_by: dict[str, int]
    raw: NotRequired[Any]  # with `raw=True`: the API object, untouched


class ModelRecord(_Common):
    """A model's record, as `harvest()` and `stream()` hand it over."""

    type: Literal["model"]
    providers: list[Provider] | None
    parameters: int | None
    context_length: int | None
    inference: Literal["warm", "cold"] | None


class DatasetRecord(_Common):
    """A dataset's record."""

    type: Literal["dataset"]
    task_categories: list[str] | None
    modalities: list[str] | None
    formats: list[str] | None
    size_categories: list[str] | None
    languages: list[str] | None


class SpaceRecord(_Common):
    """A space's record."""

    type: Literal["space"]
    sdk: str | None
    runtime_stage: str | None
    hardware: str | None
    models: list[str] | None


AnyRecord = ModelRecord | DatasetRecord | SpaceRecord


class Final:
    """A final record and, with `raw`, its API object: as values, as JSON, or both."""

    __slots__ = ("_json", "_raw", "_raw_json", "_value", "has_raw")

    def __init__(
        self,
        value: Record | None = None,
        json: bytes | None = None,
        *,
        raw: Any = None,
        raw_json: bytes | None = None,
        has_raw: bool = False,
    ) -> None:
        self._value, self._json = value, json
        self._raw, self._raw_json = raw, raw_json
        self.has_raw = has_raw  # `raw` was asked for: the record carries its API object

    @classmethod
    def made(cls, record: Record, entry: Any, *, keep_raw: bool) -> Final:
        """A record as `normalize` made it, from `entry` (kept as `raw` with `keep_raw`)."""
        return cls(record, raw=entry if keep_raw else None, has_raw=keep_raw)

    @classmethod
    def spooled(cls, json: bytes, raw_json: bytes | None) -> Final:
        """A record as the spool kept it."""
        return cls(json=json, raw_json=raw_json, has_raw=raw_json is not None)

    def value(self) -> Record:
        """The record as a dict (decoded from its JSON the first time, if it came as JSON)."""
        if self._value is None:
            self._value = orjson.loads(self._json or b"{}")
        return self._value

    def json(self) -> bytes:
        """The record's JSON, without `found_by` (encoded the first time, if it came as a dict)."""
        if self._json is None:
            self._json = orjson.dumps(self._value)
        return self._json

    def raw(self) -> Any:
        """The API object, with `raw`; None without."""
        if self._raw is None and self._raw_json is not None:
            self._raw = orjson.loads(self._raw_json)
        return self._raw

    def raw_json(self) -> bytes | None:
        """The API object's JSON, with `raw`; None without."""
        if self._raw_json is None and self.has_raw:
            self._raw_json = orjson.dumps(self._raw)
        return self._raw_json
