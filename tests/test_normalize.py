"""normalize(): the real samples field by field, every derived field, and what it must skip."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from hypothesis import given
from hypothesis import strategies as st

from hfharvest.normalize import normalize
from hfharvest.schema import record_schema

FIXTURES = Path(__file__).parent / "fixtures"
SCHEMA = json.loads(record_schema())
KEY_ORDER = [
    "id",
    "type",
    "author",
    "name",
    "sha",
    "created_at",
    "last_modified",
    "private",
    "disabled",
    "gated",
    "likes",
    "downloads",
    "downloads_all_time",
    "trending_score",
    "pipeline_tag",
    "library_name",
    "tags",
    "license",
    "arxiv",
    "datasets",
    "base_models",
    "inference_providers",
    "files",
]
OWN_KEYS = {
    "model": ["providers", "parameters", "context_length", "inference"],
    "dataset": ["task_categories", "modalities", "formats", "size_categories", "languages"],
    "space": ["sdk", "runtime_stage", "hardware", "models"],
}


def samples() -> list[dict[str, Any]]:
    loaded: list[dict[str, Any]] = json.loads(
        (FIXTURES / "models-default-listing.json").read_text()
    )
    return loaded


def test_real_sample_kimi_field_by_field() -> None:
    record = normalize(samples()[0], "model")
    assert record == {
        "id": "moonshotai/Kimi-K2-Thinking",
        "type": "model",
        "author": "moonshotai",
        "name": "Kimi-K2-Thinking",
        "sha": None,  # the default listing carries no sha: null, never invented
        "created_at": "2025-11-04T08:25:31.000Z",
        "last_modified": None,
        "private": False,
        "disabled": None,
        "gated": None,
        "likes": 578,
        "downloads": 5119,
        "downloads_all_time": None,
        "trending_score": 580,
        "pipeline_tag": "text-generation",
        "library_name": "transformers",
        "tags": sorted(samples()[0]["tags"]),
        "license": "other",
        "arxiv": [],
        "datasets": [],
        "base_models": [],
        "inference_providers": None,
        "files": None,
        "providers": None,  # the default listing carries no mapping, sizes or inference state
        "parameters": None,
        "context_length": None,
        "inference": None,
    }
    assert list(record) == KEY_ORDER + OWN_KEYS["model"]


def test_real_sample_minimax_tag_facts() -> None:
    record = normalize(samples()[1], "model")
    assert record is not None
    assert record["id"] == "MiniMaxAI/MiniMax-M2"
    assert record["author"] == "MiniMaxAI"
    assert record["license"] == "mit"
    assert record["arxiv"] == ["2504.07164", "2509.06501", "2509.13160"]
    assert record["likes"] == 1178
    assert record["downloads"] == 846249
    assert record["trending_score"] == 319
    assert record["tags"] == sorted(set(record["tags"]))


def test_full_object_with_every_field() -> None:
    raw = {
        "_id": "x",
        "id": "org/model",
        "author": "org",
        "sha": "abc",
        "private": False,
        "disabled": True,
        "gated": "manual",
        "likes": 3,
        "downloads": 4,
        "downloadsAllTime": 40,
        "trendingScore": 1.5,
        "createdAt": "2023-05-01T10:00:00+02:00",
        "lastModified": "2024-01-02T03:04:05.678Z",
        "tags": [
            "b",
            "a",
            "a",
            "dataset:org/data",
            "base_model:org/base",
            "base_model:quantized:org/base",
            "base_model:finetune:other/base2",
            7,
        ],
        "siblings": [{"rfilename": "README.md"}, {"rfilename": "model.safetensors"}, {"x": 1}],
        "inferenceProviderMapping": [{"provider": "together"}, {"provider": "hf-inference"}],
    }
    record = normalize(raw, "model")
    assert record is not None
    assert record["created_at"] == "2023-05-01T08:00:00.000Z"
    assert record["last_modified"] == "2024-01-02T03:04:05.678Z"
    assert record["gated"] == "manual"
    assert record["disabled"] is True
    assert record["downloads_all_time"] == 40
    assert record["tags"] == sorted(
        [
            "a",
            "b",
            "dataset:org/data",
            "base_model:org/base",
            "base_model:quantized:org/base",
            "base_model:finetune:other/base2",
        ]
    )
    assert record["datasets"] == ["org/data"]
    assert record["base_models"] == ["org/base", "other/base2"]
    assert record["files"] == ["README.md", "model.safetensors"]
    assert record["inference_providers"] == ["hf-inference", "together"]


@pytest.mark.parametrize("created", ["2022-03-02T23:29:04.000Z", "2022-03-02T23:29:05.000Z"])
def test_the_unknown_creation_date_family_is_null(created: str) -> None:
    record = normalize({"id": "gpt2", "createdAt": created}, "model")
    assert record is not None
    assert record["created_at"] is None
    assert record["author"] is None  # a legacy id with no owner part
    assert record["name"] == "gpt2"


@pytest.mark.parametrize(
    ("gated", "expected"),
    [
        (False, "no"),
        ("auto", "auto"),
        ("manual", "manual"),
        ("yes", None),
        (None, None),
        ("no", None),
    ],
)
def test_gated_values(gated: object, expected: object) -> None:
    record = normalize({"id": "a/b", "gated": gated}, "model")
    assert record is not None
    assert record["gated"] == expected


def test_model_id_fallback_and_expand_only_answer() -> None:
    record = normalize({"_id": "1", "modelId": "a/b", "downloadsAllTime": 9}, "model")
    assert record is not None
    assert record["id"] == "a/b"
    assert record["downloads_all_time"] == 9
    # tags did not come: tag-derived lists are null, not []
    assert record["tags"] is None
    assert record["arxiv"] is None
    assert record["license"] is None
    assert record["likes"] is None


PROVIDERS = [
    {
        "provider": "fal-ai",
        "provider_id": "fal-ai/flux/dev",
        "status": "live",
        "task": "text-to-image",
    },
    {"provider": "nebius", "provider_id": "org/flux-dev", "status": "staging", "task": None},
]


@pytest.mark.parametrize(
    "mapping",
    [
        # newer listings: a list of objects naming their provider (extra keys are dropped)
        [
            {"provider": "nebius", "providerId": "org/flux-dev", "status": "staging"},
            {
                "provider": "fal-ai",
                "providerId": "fal-ai/flux/dev",
                "status": "live",
                "task": "text-to-image",
                "adapter": "x",
            },
        ],
        # older and single-model answers: an object keyed by provider
        {
            "nebius": {"status": "staging", "providerId": "org/flux-dev"},
            "fal-ai": {"status": "live", "providerId": "fal-ai/flux/dev", "task": "text-to-image"},
        },
    ],
)
def test_providers_from_either_form_of_the_mapping(mapping: object) -> None:
    record = normalize({"id": "a/b", "inferenceProviderMapping": mapping}, "model")
    assert record is not None
    assert record["providers"] == PROVIDERS
    assert record["inference_providers"] == ["fal-ai", "nebius"]


def test_model_sizes_and_inference_state() -> None:
    big = 141_000_000_000  # beyond 2**32, as real totals are
    safetensors = {"parameters": {"BF16": big}, "total": big}
    gguf = {"total": 8_030_261_248, "architecture": "llama", "context_length": 131072}
    record = normalize({"id": "a/b", "safetensors": safetensors, "inference": "cold"}, "model")
    assert record is not None
    assert (record["parameters"], record["context_length"], record["inference"]) == (
        big,
        None,
        "cold",
    )
    record = normalize({"id": "a/b", "gguf": gguf, "inference": "hot"}, "model")
    assert record is not None
    assert (record["parameters"], record["context_length"], record["inference"]) == (
        8_030_261_248,
        131072,
        None,
    )


def test_dataset_facts_from_tags() -> None:
    tags = [
        "task_categories:text-generation",
        "modality:text",
        "modality:image",
        "format:parquet",
        "size_categories:10K<n<100K",
        "language:en",
        "language:fr",
        "license:mit",
    ]
    record = normalize({"id": "a/d", "tags": tags}, "dataset")
    assert record is not None
    assert list(record) == KEY_ORDER + OWN_KEYS["dataset"]
    assert record["task_categories"] == ["text-generation"]
    assert record["modalities"] == ["image", "text"]
    assert record["formats"] == ["parquet"]
    assert record["size_categories"] == ["10K<n<100K"]
    assert record["languages"] == ["en", "fr"]
    untagged = normalize({"id": "a/d"}, "dataset")
    assert untagged is not None and untagged["languages"] is None


def test_space_runtime_and_its_own_lists_of_models_and_datasets() -> None:
    runtime = {
        "stage": "RUNNING",
        "hardware": {"current": "cpu-basic", "requested": "cpu-basic"},
        "replicas": {"current": 1, "requested": 1},
    }
    raw = {
        "id": "a/s",
        "sdk": "gradio",
        "pipeline_tag": "x",
        "runtime": runtime,
        "models": ["org/m"],
        "datasets": ["org/d2"],
        "tags": ["gradio", "dataset:org/d1"],
    }
    space = normalize(raw, "space")
    assert space is not None
    assert list(space) == KEY_ORDER + OWN_KEYS["space"]
    assert (space["sdk"], space["runtime_stage"], space["hardware"]) == (
        "gradio",
        "RUNNING",
        "cpu-basic",
    )
    assert space["models"] == ["org/m"]
    assert space["datasets"] == ["org/d1", "org/d2"]  # the answer's list and the tags, together
    assert space["pipeline_tag"] is None
    bare = normalize({"id": "a/s"}, "space")
    assert bare is not None
    assert (bare["models"], bare["datasets"], bare["runtime_stage"]) == (None, None, None)


def test_type_specific_keys_appear_on_their_type_only() -> None:
    for repo_type, own in OWN_KEYS.items():
        record = normalize({"id": "a/b"}, repo_type)
        assert record is not None
        assert list(record) == KEY_ORDER + own


@pytest.mark.parametrize(
    "raw", [None, 3, "org/x", [], {}, {"id": ""}, {"id": 5}, {"likes": 3}, {"modelId": None}]
)
def test_entries_without_a_usable_id_are_skipped(raw: object) -> None:
    assert normalize(raw, "model") is None


def test_wrong_types_become_null() -> None:
    raw = {
        "id": "a/b",
        "likes": "3",
        "downloads": True,
        "private": "no",
        "trendingScore": "x",
        "createdAt": "yesterday",
        "tags": "license:mit",
        "siblings": "README.md",
    }
    record = normalize(raw, "model")
    assert record is not None
    for key in ("likes", "downloads", "private", "trending_score", "created_at", "tags", "files"):
        assert record[key] is None, key


@pytest.mark.parametrize(
    "siblings",
    [
        [{"rfilename": "a.json"}, {"rfilename": 5}, {"rfilename": "b.bin"}],
        [{"rfilename": "a.json"}, "b.bin", {"rfilename": "b.bin"}],
        [{"rfilename": "a.json"}, None, {"rfilename": None}, {"rfilename": "b.bin"}],
        [{"rfilename": "a.json"}, {"name": "x"}, {"rfilename": ["c"]}, {"rfilename": "b.bin"}],
    ],
)
def test_a_file_list_keeps_only_the_names_that_are_strings(siblings: list[object]) -> None:
    record = normalize({"id": "a/b", "siblings": siblings}, "model")
    assert record is not None and record["files"] == ["a.json", "b.bin"]


def test_records_validate_against_the_shipped_schema() -> None:
    for raw in samples():
        record = normalize(raw, "model")
        assert record is not None
        jsonschema.validate({**record, "found_by": {"likes": 1}}, SCHEMA)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
API_KEYS = (
    "id",
    "modelId",
    "author",
    "tags",
    "siblings",
    "gated",
    "likes",
    "createdAt",
    "inferenceProviderMapping",
    "trendingScore",
    "private",
    "sdk",
)
api_like = st.fixed_dictionaries(
    {},
    optional=dict.fromkeys(API_KEYS, json_values),
)


@given(raw=json_values | api_like, repo_type=st.sampled_from(["model", "dataset", "space"]))
def test_normalize_never_raises_and_any_record_fits_the_schema(raw: Any, repo_type: str) -> None:
    record = normalize(raw, repo_type)
    if record is not None:
        jsonschema.validate({**record, "found_by": {"likes": 1}}, SCHEMA)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2025-11-04T08:25:31.000Z", "2025-11-04T08:25:31.000Z"),
        ("2025-11-04T08:25:31Z", "2025-11-04T08:25:31.000Z"),
        ("2025-11-04T08:25:31.123456+01:00", "2025-11-04T07:25:31.123Z"),
        ("2025-11-04", "2025-11-04T00:00:00.000Z"),
        ("0001-01-01T00:00:00+01:00", None),  # out of range once in UTC
        ("xxxxxxxxxxTxxxxxxxxxxxxZ", None),
        ("", None),
    ],
)
def test_timestamps_become_utc_with_milliseconds(value: str, expected: str | None) -> None:
    record = normalize({"id": "a/b", "lastModified": value}, "model")
    assert record is not None
    assert record["last_modified"] == expected


def test_unhashable_values_where_strings_belong_are_null() -> None:
    raw = {"id": "a/b", "gated": ["auto"], "inferenceProviderMapping": [{"provider": ["x"]}]}
    record = normalize(raw, "model")
    assert record is not None
    assert record["gated"] is None
    assert record["inference_providers"] == []
