"""The output target: where a run's records go, resolved before any request.

`resolve_target` turns `output` into an `OutputTarget`: `{date}`, `{time}` and `{type}` filled in,
the format from the suffix (or `format`), missing folders made, the folder checked writable.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Literal

from hfharvest.errors import UsageError
from hfharvest.loaders import require_pyarrow
from hfharvest.sinks.files import check_writable

OutputFormat = Literal["json", "jsonl", "parquet"]
FORMATS: tuple[OutputFormat, ...] = ("json", "jsonl", "parquet")
# A file's suffix (before `.gz`) and the format it names; a name without a suffix is JSONL.
SUFFIXES: dict[str, OutputFormat] = {
    ".json": "json",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".parquet": "parquet",
    "": "jsonl",
}


# The manifest beside a data file: `<output>.manifest`, a name no data glob matches
# (`models*.json` matched `models.json.manifest.json`, and loaders read it as data). Manifests
# under the name of before 0.2 are still read.
MANIFEST_SUFFIX = ".manifest"
OLD_MANIFEST_SUFFIX = ".manifest.json"


def beside(path: Path, suffix: str) -> Path:
    """A side file's path: `path`'s name with `suffix` after it."""
    return path.with_name(path.name + suffix)


@dataclass(frozen=True)
class OutputTarget:
    """Where records go: a file path (None for stdout), its format, and whether to gzip it.

    `template` is `output` as given, before `{date}` and friends: what names the job. A Parquet
    file's schema depends on the `repo_type` and on `raw`.
    """

    path: Path | None
    format: OutputFormat
    gzip: bool
    template: str
    repo_type: str
    raw: bool
    made: tuple[Path, ...]  # the folders made for it, outermost first
    # What a file that leaves its manifest says of itself (Parquet's key-value metadata): which
    # hfharvest, which record schema, what was asked; never a time, nor the token.
    provenance: tuple[tuple[str, str], ...]


def resolve_target(
    template: str,
    fmt: str | None,
    moment: datetime,
    repo_type: str,
    *,
    raw: bool = False,
    probe: bool = True,
) -> OutputTarget:
    """The output of a run started at `moment`: its path filled in, its folder made, writable.

    `fmt` is one of `FORMATS` or None (from the suffix), as the options table checked it.
    """
    chosen = next((f for f in FORMATS if f == fmt), None)
    if template == "-":
        if chosen == "parquet":
            raise UsageError(
                "Parquet is written to a file, not to stdout",
                parameter="format",
                value=fmt,
                hint="name one with `output`, e.g. models.parquet",
            )
        return OutputTarget(None, chosen or "jsonl", False, template, repo_type, raw, (), ())
    path = Path(_fill_in(template, moment, repo_type)).expanduser()
    gzip = path.suffix == ".gz"
    suffix = Path(path.stem).suffix if gzip else path.suffix
    named = SUFFIXES.get(suffix.lower())
    if chosen is None and (named is None or (gzip and named == "parquet")):
        raise UsageError(
            f"`output` {path.name}: hfharvest writes .json, .jsonl, .ndjson (each also .gz) "
            "and .parquet",
            parameter="output",
            value=path,
            hint="choose one of those suffixes, or name the format with `format`",
        )
    chosen = chosen or named or "jsonl"
    if chosen == "parquet":
        require_pyarrow()
    made = check_writable(path, "output") if probe else ()
    gzipped = gzip and chosen != "parquet"
    return OutputTarget(path, chosen, gzipped, template, repo_type, raw, made, ())


def _fill_in(template: str, moment: datetime, repo_type: str) -> str:
    """Fill `{date}` (UTC YYYY-MM-DD), `{time}` (HHMMSSZ) and `{type}` in an output path."""
    if "{" not in template:
        return template
    values = {
        "date": moment.strftime("%Y-%m-%d"),
        "time": moment.strftime("%H%M%SZ"),
        "type": repo_type,
    }
    try:
        return template.format_map(values)
    except (KeyError, ValueError, IndexError) as exc:
        fields = "{date}, {time} and {type}"
        raise UsageError(
            f"`output` {template!r}: only {fields} are filled in ({exc})",
            parameter="output",
            value=template,
        ) from None
