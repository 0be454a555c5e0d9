"""Conformance: answers the real Hub gave, read in place from ../shared/real-answers/.

They are third-party recordings (the official clients' test cassettes and tapes, a public mirror
of Space metadata): the one check not drawn from our own reading of the API. They are never
copied into the project; where the folder is absent (a clone made elsewhere) this module skips.
Each entry is normalized with the repo type its endpoint gives (a Space's `runtime` answer is
checked as that field of a space), validated against the shipped schema, and mapped field by
field; then each fact the folder's README lists gets an assertion of its own.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import jsonschema
import orjson
import pytest
import requests
import responses

from conftest import SettingsFactory
from hfharvest.answer import error_detail
from hfharvest.client import HubClient
from hfharvest.hub import CREATED_AT_UNKNOWN
from hfharvest.normalize import normalize
from hfharvest.records import Final
from hfharvest.retry import demanded_wait
from hfharvest.schema import record_schema
from hfharvest.sinks.jsonl import output_line
from hfharvest.testing import HubEmulator, make_catalog
from hfharvest.testing.listing import parse_query

REAL = Path(__file__).resolve().parent.parent.parent / "shared" / "real-answers"
pytestmark = pytest.mark.skipif(
    not REAL.is_dir(),
    reason=f"{REAL} is absent: the real Hub's recorded answers are read in place, never copied",
)
FILES = sorted(REAL.glob("*.json")) if REAL.is_dir() else []
VALIDATOR = jsonschema.Draft202012Validator(json.loads(record_schema()))


def answer(name: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((REAL / f"{name}.json").read_text())
    return document


def entries(document: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(repo type, raw entry) of each entry a recorded answer holds."""
    path: str = document["endpoint_path"]
    repo_type = "space" if path.startswith("/api/spaces/") else "model"
    body = document["body"]
    if path.endswith("/runtime"):  # a Space's runtime object: checked as that field of a space
        space_id = path.removeprefix("/api/spaces/").removesuffix("/runtime")
        return [("space", {"id": space_id, "runtime": body})]
    return [(repo_type, raw) for raw in (body if isinstance(body, list) else [body])]


def record_of(name: str, index: int = 0) -> dict[str, Any]:
    repo_type, raw = entries(answer(name))[index]
    record = normalize(raw, repo_type)
    assert record is not None
    return record


def expected_mapping(raw: dict[str, Any], repo_type: str) -> dict[str, Any]:
    """What each record field must be for `raw`, written from the documented record table."""
    repo_id = raw["id"]
    tags = raw.get("tags")
    owner = repo_id.rpartition("/")[0]
    mapping = raw.get("inferenceProviderMapping")
    if isinstance(mapping, dict):
        mapping = [{"provider": name, **value} for name, value in mapping.items()]
    expected: dict[str, Any] = {
        "id": repo_id,
        "type": repo_type,
        "author": raw.get("author") or owner or None,
        "name": repo_id.rpartition("/")[2],
        "sha": raw.get("sha"),
        "created_at": None if raw.get("createdAt") in CREATED_AT_UNKNOWN else raw.get("createdAt"),
        "last_modified": raw.get("lastModified"),
        "private": raw.get("private"),
        "disabled": raw.get("disabled"),
        "gated": "no" if raw.get("gated") is False else raw.get("gated"),
        "likes": raw.get("likes"),
        "downloads": raw.get("downloads"),
        "tags": None if tags is None else sorted(set(tags)),
        "license": next((t[8:] for t in sorted(tags or []) if t.startswith("license:")), None),
        "files": [s["rfilename"] for s in raw["siblings"]] if "siblings" in raw else None,
    }
    if repo_type == "model":
        sizes = raw.get("safetensors") or raw.get("gguf") or {}
        expected.update(
            pipeline_tag=raw.get("pipeline_tag"),
            library_name=raw.get("library_name"),
            parameters=sizes.get("total"),
            inference=raw.get("inference"),
            providers=None
            if mapping is None
            else sorted(
                (
                    {
                        "provider": m["provider"],
                        "provider_id": m.get("providerId"),
                        "status": m.get("status"),
                        "task": m.get("task"),
                    }
                    for m in mapping
                ),
                key=lambda m: m["provider"],
            ),
        )
    if repo_type == "space":
        runtime = raw.get("runtime") or {}
        from_tags = [t[8:] for t in sorted(set(tags or [])) if t.startswith("dataset:")]
        neither = "datasets" not in raw and tags is None
        expected.update(
            sdk=raw.get("sdk"),
            runtime_stage=runtime.get("stage"),
            hardware=(runtime.get("hardware") or {}).get("current"),
            models=sorted(raw["models"]) if "models" in raw else None if tags is None else [],
            datasets=None if neither else sorted({*raw.get("datasets", []), *from_tags}),
        )
    return expected


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_every_entry_maps_field_by_field_and_fits_the_schema(path: Path) -> None:
    document = json.loads(path.read_text())
    for repo_type, raw in entries(document):
        record = normalize(raw, repo_type)
        assert record is not None, f"{path.stem}: {raw.get('id')} was skipped"
        VALIDATOR.validate({**record, "found_by": {"likes": 1}})
        expected = expected_mapping(raw, repo_type)
        assert {key: record[key] for key in expected} == expected


def test_the_folder_holds_what_its_readme_lists() -> None:
    counted = [entry for path in FILES for entry in entries(json.loads(path.read_text()))]
    assert (len(FILES), len(counted)) == (19, 141)  # 18 single answers, 123 Spaces in one file


# One assertion for each fact the folder's README lists.


def test_created_at_unknown_is_a_family_of_two_values() -> None:
    seen = {
        answer(n)["body"]["createdAt"]
        for n in (
            "hfh-model-info-bert-base-uncased-via-307",
            "hfh-model-info-espnet-no-config",
            "hfh-model-info-dbmdz-no-carddata",
            "hfh-model-info-deepset-roberta-model-index",
            "hfh-model-info-paraphrase-albert-inference-cold",
        )
    }
    assert seen == CREATED_AT_UNKNOWN
    for name in ("hfh-model-info-bert-base-uncased-via-307", "hfh-model-info-espnet-no-config"):
        assert record_of(name)["created_at"] is None
    assert record_of("hfh-model-info-zephyr-orpo-141b-no-inference")["created_at"] == (
        "2024-04-10T16:00:24.000Z"
    )


def test_absent_keys_give_null_never_a_crash() -> None:
    espnet = answer("hfh-model-info-espnet-no-config")["body"]
    assert "config" not in espnet and "transformersInfo" not in espnet
    assert "cardData" not in answer("hfh-model-info-dbmdz-no-carddata")["body"]
    zephyr = record_of("hfh-model-info-zephyr-orpo-141b-no-inference")
    assert zephyr["inference"] is None  # the key is absent
    assert record_of("hfh-model-info-espnet-no-config")["parameters"] is None  # no safetensors
    deepset = answer("hfh-model-info-deepset-roberta-model-index")["body"]
    assert isinstance(deepset["model-index"], list)
    # `config` may be {}, `model-index` null, `spaces` []: none of it changes the record
    emptied = {**deepset, "config": {}, "model-index": None, "spaces": []}
    assert normalize(emptied, "model") == record_of("hfh-model-info-deepset-roberta-model-index")


def test_provider_mapping_keyed_by_provider_with_live_and_staging() -> None:
    raw = answer("hfh-expand-ipm-flux1-dev-object-form")["body"]
    assert set(raw) == {"_id", "id", "inferenceProviderMapping"}
    assert isinstance(raw["inferenceProviderMapping"], dict)
    providers = record_of("hfh-expand-ipm-flux1-dev-object-form")["providers"]
    assert [p["provider"] for p in providers] == sorted(raw["inferenceProviderMapping"])
    assert {
        "provider": "fal-ai",
        "provider_id": "fal-ai/flux/dev",
        "status": "live",
        "task": "text-to-image",
    } in providers
    llama = record_of("hfh-expand-ipm-llama-3.2-3b-staging")
    assert {p["status"] for p in llama["providers"]} == {"live", "staging"}
    assert llama["inference_providers"] == [p["provider"] for p in llama["providers"]]


def test_sizes_above_two_to_the_32_come_through_as_integers() -> None:
    raw = answer("hfh-model-info-zephyr-orpo-141b-no-inference")["body"]
    assert set(raw["safetensors"]) == {"parameters", "total"}
    record = record_of("hfh-model-info-zephyr-orpo-141b-no-inference")
    assert record["parameters"] == raw["safetensors"]["total"] == 140_620_634_112 > 2**32


def test_inference_is_warm_cold_or_absent() -> None:
    assert record_of("hfh-model-info-bert-base-uncased-via-307")["inference"] == "warm"
    assert record_of("hfh-model-info-paraphrase-albert-inference-cold")["inference"] == "cold"
    assert record_of("hfh-model-info-zephyr-orpo-141b-no-inference")["inference"] is None


def test_legacy_ids_without_an_owner() -> None:
    legacy, owned = (
        answer(n)["body"]
        for n in ("hfh-model-info-gpt2-legacy-id", "hfh-model-info-openai-community-gpt2")
    )
    assert legacy["_id"] == owned["_id"]  # the same repo under its alias
    record = record_of("hfh-model-info-gpt2-legacy-id")
    assert (record["id"], record["author"], record["name"]) == ("gpt2", "openai-community", "gpt2")
    bare = record_of("hfjs-tapes-expand-pipeline_tag-legacy-id-distilbert")  # no author key
    assert (bare["author"], bare["name"]) == (None, bare["id"])


def test_gated_manual() -> None:
    assert record_of("hfh-model-info-llama-3.1-8b-instruct-gated-manual-via-307")["gated"] == (
        "manual"
    )
    assert record_of("hfh-model-info-t5-small-via-307")["gated"] == "no"  # the Hub's false


@pytest.mark.parametrize(
    "name",
    [
        "hfh-model-info-bert-base-uncased-via-307",
        "hfh-model-info-t5-small-via-307",
        "hfh-expand-ipm-meta-llama-3.1-via-307",
    ],
)
def test_a_recorded_307_with_a_relative_location_is_followed_with_its_query(
    name: str, make_settings: SettingsFactory
) -> None:
    """The real client follows the Hub's own 307 (relative Location, query kept)."""
    document = answer(name)
    (redirect,) = document["redirect_chain_before"]
    assert redirect["status"] == 307 and redirect["headers"]["Location"].startswith("/api/")
    settings = make_settings(endpoint="https://huggingface.co", token="hf_recorded")
    with responses.RequestsMock() as mocked:
        mocked.get(
            redirect["request_url"],
            status=307,
            body=redirect["body"],
            headers={"Location": redirect["headers"]["Location"]},
        )
        mocked.get(document["request_url"], body=orjson.dumps([document["body"]]))
        page = HubClient(settings.transport).get_page(redirect["request_url"])
        assert mocked.calls[1].request.headers["Authorization"] == "Bearer hf_recorded"
    assert page.url == document["request_url"]  # the query came along
    assert page.entries == [document["body"]]


@pytest.mark.parametrize(
    "name",
    ["hfjs-tapes-expand-pipeline_tag-bart-base", "hfh-expand-ipm-flux1-dev-object-form"],
)
def test_expand_answers_only_the_asked_keys_and_so_does_the_emulator(name: str) -> None:
    document = answer(name)
    real_keys = set(document["body"])
    asked = {value for key, value in _query(document) if key.removesuffix("[]") == "expand"}
    assert real_keys == {"_id", "id", *asked}  # modelId is dropped too
    record = record_of(name)
    assert record["tags"] is None and record["files"] is None  # not asked: null, never []
    query = parse_query("model", _query(document))  # `expand[]=x` read like `expand=x`
    assert set(query.fields) == real_keys


def _query(document: dict[str, Any]) -> list[tuple[str, str]]:
    return parse_qsl(document["query"])


def test_recordings_before_late_2025_carry_no_ratelimit_headers() -> None:
    for path in FILES:
        document = json.loads(path.read_text())
        headers = {k.lower(): v for k, v in document["headers"].items()}
        assert "ratelimit" not in headers
        assert demanded_wait(document["headers"]) is None  # nothing to wait for: go on


def test_errors_are_told_in_x_error_message_which_the_hub_exposes() -> None:
    exposed = answer("hfh-model-info-t5-small-via-307")["headers"]["Access-Control-Expose-Headers"]
    assert {"X-Error-Code", "X-Error-Message"} <= set(exposed.split(","))
    response = requests.Response()
    response.status_code, response.reason = 401, "Unauthorized"
    response.headers["X-Error-Message"] = "Invalid credentials in Authorization header"
    assert error_detail(response, b"") == "Invalid credentials in Authorization header"


def test_spaces_sdk_runtime_models_and_emoji() -> None:
    spaces = [record_of("databankbni-space-info-2026-08", i) for i in range(123)]
    assert {s["sdk"] for s in spaces} == {"gradio", "docker", "static"}
    assert {"SLEEPING", "RUNNING", "PAUSED", "RUNTIME_ERROR"} <= {
        s["runtime_stage"] for s in spaces
    }
    assert sum(s["models"] != [] for s in spaces) == 31
    assert any(s["datasets"] for s in spaces)
    raw = answer("databankbni-space-info-2026-08")["body"][0]
    line = output_line(Final(spaces[0], raw=raw, has_raw=True), {"likes": 1})
    assert (
        orjson.loads(line)["raw"]["cardData"]["emoji"] == raw["cardData"]["emoji"] == "\U0001f3e5"
    )


def test_a_runtime_object_as_a_spaces_field() -> None:
    building = record_of("hfh-space-runtime-devmode-domains")
    assert (building["runtime_stage"], building["hardware"]) == ("BUILDING", None)
    static = record_of("hfh-space-runtime-static")
    assert (static["runtime_stage"], static["hardware"]) == ("RUNNING", None)


def test_the_emulator_answers_in_the_real_shapes() -> None:
    """Its safetensors, mapping (object form) and runtime have the keys real answers have."""
    real_mapping = answer("hfh-expand-ipm-flux1-dev-object-form")["body"]
    real_sizes = answer("hfh-model-info-zephyr-orpo-141b-no-inference")["body"]["safetensors"]
    real_runtime = answer("databankbni-space-info-2026-08")["body"][0]["runtime"]
    catalog = make_catalog(300, 0, 50, hf_inference=100)
    with HubEmulator(catalog, mapping_form="object") as hub:
        query = "expand[]=safetensors&expand=inferenceProviderMapping&limit=300"
        models = requests.get(f"{hub.url}/api/models?{query}", timeout=10).json()
        spaces = requests.get(f"{hub.url}/api/spaces?expand=runtime", timeout=10).json()
    mapped = [m for m in models if m.get("inferenceProviderMapping")]
    assert mapped and all(isinstance(m["inferenceProviderMapping"], dict) for m in mapped)
    real_value_keys = set(next(iter(real_mapping["inferenceProviderMapping"].values())))
    for model in mapped:
        for value in model["inferenceProviderMapping"].values():
            assert set(value) == real_value_keys
    sized = [m["safetensors"] for m in models if "safetensors" in m]
    assert sized and all(set(s) == set(real_sizes) for s in sized)
    assert all(set(s["runtime"]) <= set(real_runtime) | {"replicas"} for s in spaces)
    assert {s["runtime"]["stage"] for s in spaces} <= {
        "RUNNING",
        "SLEEPING",
        "PAUSED",
        "RUNTIME_ERROR",
        "BUILDING",
    }
