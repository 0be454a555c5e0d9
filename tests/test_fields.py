"""What a walk asks for, and what the record then carries: the mapping, --all-fields, the forms."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import pytest
from typer.testing import CliRunner

from hfharvest.cli import app
from hfharvest.testing import HubEmulator, make_catalog

runner = CliRunner()
DOCS = Path(__file__).parent.parent / "docs" / "record.md"


def fetch(hub: HubEmulator, *args: str) -> Any:
    return runner.invoke(app, ["fetch", "--endpoint", hub.url, "-q", *args])


def records(stdout: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stdout.splitlines()]


def expanded(hub: HubEmulator) -> list[str]:
    return [v for k, v in parse_qsl(hub.requests_log[0].query) if k == "expand"]


def documented_all_fields() -> dict[str, list[str]]:
    """The lists docs/record.md gives for --all-fields, one line per type."""
    text = DOCS.read_text()
    found = re.findall(r"^- `--type (\w+)`: (.+)$", text, flags=re.M)
    return {repo_type: re.findall(r"`([\w-]+)`", names) for repo_type, names in found}


@pytest.mark.parametrize("form", ["list", "object"])
def test_a_provider_walk_carries_each_providers_own_id_and_keeps_the_full_fields(
    hub_catalog: Any, form: str
) -> None:
    with HubEmulator(hub_catalog, mapping_form=form) as hub:
        result = fetch(hub, "--sort", "likes", "--inference-provider", "hf-inference")
        assert result.exit_code == 0, result.stderr
        assert "full=" not in hub.requests_log[0].query  # never full and expand together
    found = records(result.stdout)
    assert len(found) == 1377
    for record in found:
        served = [p for p in record["providers"] if p["provider"] == "hf-inference"]
        assert served and served[0]["provider_id"] and served[0]["status"] == "live"
        assert record["files"] and record["sha"]  # the full fields are still there
        assert record["providers"] == sorted(record["providers"], key=lambda p: p["provider"])
    statuses = {p["status"] for r in found for p in r["providers"]}
    assert statuses == {"live", "staging"}


def test_no_full_with_a_provider_asks_the_default_fields_and_the_mapping(hub: HubEmulator) -> None:
    result = fetch(
        hub, "--sort", "likes", "--inference-provider", "hf-inference", "--no-full", "--limit", "5"
    )
    assert result.exit_code == 0, result.stderr
    assert expanded(hub)[-1] == "inferenceProviderMapping"
    assert "siblings" not in expanded(hub)
    assert all(r["providers"] and r["files"] is None for r in records(result.stdout))


def test_an_explicit_expand_stays_exactly_the_users_list(hub: HubEmulator) -> None:
    result = fetch(
        hub,
        "--sort",
        "likes",
        "--inference-provider",
        "hf-inference",
        "--expand",
        "downloadsAllTime",
        "--limit",
        "5",
    )
    assert result.exit_code == 0, result.stderr
    assert expanded(hub) == ["downloadsAllTime"]
    assert all(r["providers"] is None for r in records(result.stdout))


@pytest.mark.parametrize("repo_type", ["model", "dataset", "space"])
def test_all_fields_sends_exactly_the_documented_list(repo_type: str) -> None:
    documented = documented_all_fields()
    assert set(documented) == {"model", "dataset", "space"}
    catalog = make_catalog(400, 100, 100, hf_inference=50)
    with HubEmulator(catalog) as hub:
        result = fetch(hub, "--type", repo_type, "--all-fields", "--sort", "likes")
        assert result.exit_code == 0, result.stderr
        assert expanded(hub) == documented[repo_type]
    found = records(result.stdout)
    if repo_type == "model":
        assert all(r["parameters"] is not None for r in found if r["library_name"] == "gguf")
        assert any(r["parameters"] for r in found)
        gguf = [r for r in found if r["library_name"] == "gguf"]
        assert gguf and all(r["context_length"] for r in gguf)
        assert {r["inference"] for r in found} == {"warm", "cold", None}
    if repo_type == "dataset":
        assert all(r["languages"] and r["modalities"] for r in found)
    if repo_type == "space":
        assert all(r["runtime_stage"] for r in found)
        assert any(r["hardware"] for r in found) and any(r["models"] for r in found)


@pytest.mark.parametrize("other", [("--expand", "sha"), ("--full",)])
def test_all_fields_with_expand_or_full_is_refused(hub: HubEmulator, other: tuple[str]) -> None:
    result = fetch(hub, "--all-fields", *other)
    assert result.exit_code == 2
    assert "--all-fields cannot be combined with --expand or --full" in result.stderr
    assert hub.requests_log == []


def test_the_manifest_records_the_fields_asked(hub: HubEmulator, tmp_path: Path) -> None:
    output = tmp_path / "spaces.jsonl"
    result = fetch(hub, "--type", "space", "--all-fields", "--limit", "3", "-o", str(output))
    assert result.exit_code == 0, result.stderr
    manifest = json.loads(output.with_name("spaces.jsonl.manifest").read_text())
    assert manifest["request"]["fields"] == documented_all_fields()["space"]
