"""Every option of a fetch, written once: its name, type, default, help and check.

`Options` is the table. The CLI builds `hfharvest fetch`'s options from its fields, and the
Python API builds the signature and the documentation of `harvest()` and `stream()` from them;
`settings.resolve` checks them (each field's own check here, the checks between options there).
Help and error texts name other options as their parameters, in backquotes (`` `expand` ``):
the CLI shows them as flags, Python as they are. What the command line spells differently is in
each field's `flag` (and `short`); the options that only make sense for a process writing files
(`output`, `format`, `manifest`, `no_manifest`) are marked `cli_only`.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import MISSING, Field, dataclass, field, fields
from datetime import date, datetime
from pathlib import Path
from typing import Any, Literal, TypedDict

from hfharvest.errors import UsageError
from hfharvest.hub import (
    DEFAULT_SORTS,
    MAX_PAGE_SIZE,
    REPO_TYPE_NAMES,
    REPO_TYPES,
    SORT_ALIASES,
    SORTS,
    RepoType,
    repo_type_words,
)

Check = Callable[[str, Any], None]

# The panels `fetch --help` groups its options into.
QUERY, FIELDS, OUTPUT = "Query", "Fields and bounds", "Output"
SNAPSHOTS, NETWORK, AUTH = "Snapshots", "Network", "Auth"


@dataclass(frozen=True)
class Doc:
    """What the CLI and `help()` say of an option, beside its name and default."""

    help: str
    example: str  # the value after the flag, or a whole command line starting with "-"
    panel: str
    metavar: str | None = None
    flag: str | None = None  # the long flag, when not the name in kebab-case
    short: str | None = None
    cli_only: bool = False
    check: Check | None = None
    types: tuple[str, ...] = ()  # the repo types it applies to (empty: every type)
    choices: tuple[str, ...] = ()  # what the shell completes it with
    constant: str | None = None  # on the command line, a flag that sets this value
    unit: float | None = None  # a duration: the seconds a bare number counts (text: 90s, 2h, 1d)
    several: bool = False  # repeatable on the command line, read by `per_type` or `repo_types`


def option(default: Any, help: str, example: str, panel: str, **doc: Any) -> Any:
    return field(default=default, metadata={"doc": Doc(help, example, panel, **doc)})


def _at_least(minimum: int) -> Check:
    return _bounded(lambda value: value >= minimum, f"at least {minimum}")


def _positive(name: str, value: float | None) -> None:
    _bounded(lambda value: value > 0, "more than 0")(name, value)


def _not_negative(name: str, value: float | None) -> None:
    _bounded(lambda value: value >= 0, "0 or more")(name, value)


def _bounded(fits: Callable[[Any], bool], wording: str) -> Check:
    def check(name: str, value: Any) -> None:
        if value is not None and not fits(value):
            raise UsageError(
                f"`{name}` must be {wording}, not {value:g}", parameter=name, value=value
            )

    return check


_DURATION = re.compile(r"(?P<number>\d+(?:\.\d+)?)\s*(?P<unit>[smhd]?)")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
SECOND, HOUR = 1.0, 3600.0


def seconds_of(value: float | str, unit: float = SECOND) -> float:
    """A duration in seconds, from text such as 90s, 30m, 2h or 1d, or a bare number counted in
    `unit` seconds (each option keeps its documented unit: `state_max_age` 12 is 12 hours)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value) * unit
    match = _DURATION.fullmatch(str(value).strip().lower())
    if match is None:
        raise ValueError(f"{value!r} is no duration (90s, 30m, 2h, 1d or a bare number)")
    scale = _UNIT_SECONDS[match.group("unit")] if match.group("unit") else unit
    return float(match.group("number")) * scale


def _duration(*, zero: bool = False) -> Check:
    """The check of a duration option: text or a number, more than 0 (or 0 too, with `zero`)."""

    def check(name: str, value: float | str | None) -> None:
        if value is None:
            return
        try:
            seconds = seconds_of(value)
        except ValueError as exc:
            raise UsageError(f"`{name}`: {exc}", parameter=name, value=value) from None
        if seconds < 0 or (seconds == 0 and not zero):
            wording = "0 or more" if zero else "more than 0"
            raise UsageError(
                f"`{name}` must be {wording}, not {value}", parameter=name, value=value
            )

    return check


def emission_bounds(text: str) -> tuple[float, float]:
    """`MIN,MAX` as numbers; a side left out is no bound (-1 and infinity, as huggingface_hub)."""
    low, comma, high = text.partition(",")
    if not comma:
        raise ValueError(f"{text!r} is not MIN,MAX")
    return (float(low) if low.strip() else -1.0, float(high) if high.strip() else math.inf)


def _thresholds(name: str, value: str | None) -> None:
    if value is None:
        return
    try:
        emission_bounds(value)
    except ValueError:
        raise UsageError(
            f"`{name}` {value!r} is not MIN,MAX (numbers, either left out)",
            parameter=name,
            value=value,
        ) from None


def _page_size(name: str, value: int) -> None:
    if not 1 <= value <= MAX_PAGE_SIZE:
        raise UsageError(
            f"`{name}` must be between 1 and {MAX_PAGE_SIZE}, not {value}",
            parameter=name,
            value=value,
        )


def _repo_type(name: str, value: str | Sequence[str]) -> None:
    names = _type_names(value)
    for each in names:
        if each not in REPO_TYPE_NAMES:
            raise UsageError(
                f"`{name}` must be {repo_type_words()}, not {each!r}", parameter=name, value=each
            )
    if not names:
        raise UsageError(f"`{name}` names no type", parameter=name, value=value)


def _type_names(value: str | Sequence[str]) -> list[str]:
    """The names in a `repo_type`: one, several, or several separated by commas."""
    given = (value,) if isinstance(value, str) else value
    return [name.strip() for text in given for name in text.split(",") if name.strip()]


PerType = int | Mapping[str, int] | None  # N for every type, or {type: N}


def _per_type_at_least(minimum: int) -> Check:
    """The check of an option that takes N, or N per type: each N at least `minimum`, each type
    a type."""
    each_at_least = _at_least(minimum)

    def check(name: str, value: PerType) -> None:
        if not isinstance(value, Mapping):
            each_at_least(name, value)
            return
        for repo_type, number in value.items():
            if repo_type not in REPO_TYPE_NAMES:
                raise UsageError(
                    f"`{name}` names {repo_type!r}, which is not {repo_type_words()}",
                    parameter=name,
                    value=repo_type,
                )
            each_at_least(name, number)

    return check


def per_type(name: str, texts: Sequence[str], types: Sequence[str]) -> PerType:
    """A per-type option as the command line gives it, repeated: `N` for every type, `TYPE=N`
    for one (a bare `N` beside them is for the types not named)."""
    every: list[str] = []
    named: dict[str, int] = {}
    for text in texts:
        repo_type, equals, number = text.rpartition("=")
        if not equals:
            every.append(number)
            continue
        if repo_type.strip() not in REPO_TYPE_NAMES:
            raise UsageError(
                f"`{name}` {text!r}: {repo_type!r} is not {repo_type_words()}",
                parameter=name,
                value=text,
            )
        named[REPO_TYPE_NAMES[repo_type.strip()]] = _number(name, text, number)
    if len(every) > 1:
        raise UsageError(
            f"`{name}` takes one N for every type, and was given {len(every)}: {', '.join(every)}",
            parameter=name,
            value=every,
            hint=f"give it once, or once a type as TYPE=N ({name} model=1000)",
        )
    if not named:
        return _number(name, every[0], every[0]) if every else None
    for repo_type in types if every else ():
        named.setdefault(REPO_TYPE_NAMES[repo_type], _number(name, every[0], every[0]))
    return named


def _number(name: str, text: str, number: str) -> int:
    try:
        return int(number.replace("_", "").replace(",", ""))
    except ValueError:
        raise UsageError(
            f"`{name}` must be N or TYPE=N (model=1000), not {text!r}", parameter=name, value=text
        ) from None


def for_type(value: PerType, repo_type: str) -> int | None:
    """A per-type option's value for one type."""
    if isinstance(value, Mapping):
        return next((n for t, n in value.items() if REPO_TYPE_NAMES.get(t) == repo_type), None)
    return value


def _format(name: str, value: str | None) -> None:
    if value is not None and value not in ("json", "jsonl", "parquet"):
        raise UsageError(
            f"`{name}` must be json, jsonl or parquet, not {value!r}", parameter=name, value=value
        )


@dataclass(frozen=True)
class Options:
    """The raw values of a fetch's options, as the command line or Python gave them."""

    sort: tuple[str, ...] = option(
        (),
        "A sort to walk; repeat for several [default: "
        f"{', '.join(DEFAULT_SORTS['model'])}; for spaces {', '.join(DEFAULT_SORTS['space'])}]. "
        f"hfharvest knows {', '.join(SORTS)} (snake_case spellings are mapped); another name is "
        "sent as given, for the Hub may have added it.",
        "likes --sort id",
        QUERY,
        metavar="SORT",
        short="-s",
        choices=tuple(SORT_ALIASES),
    )
    limit: PerType = option(
        None,
        "Stop each sort after N returned entries: per sort, so two sorts give up to 2N "
        "unique records; with several `repo_type`, N applies to each, TYPE=N to one "
        "(repeat) [default: walk to the end].",
        "1000",
        QUERY,
        metavar="N|TYPE=N",
        check=_per_type_at_least(1),
        several=True,
    )
    page_size: int = option(
        MAX_PAGE_SIZE,
        "Entries per request, 1 to 1000.",
        "500",
        QUERY,
        metavar="N",
        check=_page_size,
    )
    search: tuple[str, ...] = option(
        (),
        "Substring of the repo id; repeat: each is sent (huggingface_hub's several values).",
        "llama",
        QUERY,
        metavar="TEXT",
    )
    dataset_name: str | None = option(
        None,
        "Datasets whose name holds this, sent as a `search` before the others (as "
        "huggingface_hub's `dataset_name`).",
        "squad",
        QUERY,
        metavar="TEXT",
        types=("dataset",),
    )
    author: str | None = option(None, "Owner, user or org.", "google", QUERY, metavar="NAME")
    filter: tuple[str, ...] = option(
        (), "A tag every repo must carry; repeat to require all.", "gguf", QUERY, metavar="TAG"
    )
    pipeline_tag: str | None = option(
        None, "Models of this task.", "text-generation", QUERY, metavar="TASK", types=("model",)
    )
    inference_provider: tuple[str, ...] = option(
        (),
        "Models served by any of these providers (repeat; 'all' = any provider).",
        "hf-inference",
        QUERY,
        types=("model",),
        metavar="PROVIDER",
    )
    gated: bool | None = option(
        None,
        "Only gated repos, or with --no-gated only repos that are not [default: both].",
        "--gated",
        QUERY,
        flag="--gated/--no-gated",
        types=("model", "dataset"),
    )
    apps: tuple[str, ...] = option(
        (),
        "Models that run in this app (repeat).",
        "ollama",
        QUERY,
        metavar="APP",
        types=("model",),
    )
    inference: str | None = option(
        None,
        'Only models warm on HF Inference (`inference` "warm" from Python).',
        "--warm",
        QUERY,
        flag="--warm",
        constant="warm",
        types=("model",),
    )
    num_parameters: str | None = option(
        None,
        "Models of this size, as min:6B,max:128B (either end may go).",
        "min:6B,max:128B",
        QUERY,
        metavar="RANGE",
        types=("model",),
    )
    trained_dataset: tuple[str, ...] = option(
        (),
        "Models trained on this dataset (repeat; sent as the tag dataset:NAME).",
        "HuggingFaceFW/fineweb",
        QUERY,
        metavar="DATASET",
        types=("model",),
    )
    language: tuple[str, ...] = option(
        (),
        "Datasets in this language (repeat; sent as the tag language:X).",
        "fr",
        QUERY,
        metavar="LANG",
        types=("dataset",),
    )
    task_categories: tuple[str, ...] = option(
        (),
        "Datasets of this task category (repeat).",
        "text-generation",
        QUERY,
        metavar="TASK",
        types=("dataset",),
    )
    task_ids: tuple[str, ...] = option(
        (),
        "Datasets of this task id (repeat).",
        "extractive-qa",
        QUERY,
        metavar="ID",
        types=("dataset",),
    )
    size_categories: tuple[str, ...] = option(
        (),
        "Datasets of this size category (repeat).",
        "1M<n<10M",
        QUERY,
        metavar="SIZE",
        types=("dataset",),
    )
    multilinguality: tuple[str, ...] = option(
        (),
        "Datasets of this multilinguality (repeat).",
        "multilingual",
        QUERY,
        metavar="KIND",
        types=("dataset",),
    )
    language_creators: tuple[str, ...] = option(
        (),
        "Datasets whose language was made so (repeat).",
        "crowdsourced",
        QUERY,
        metavar="KIND",
        types=("dataset",),
    )
    benchmark: str | None = option(
        None,
        "Datasets of this benchmark ('official' for the official ones).",
        "official",
        QUERY,
        metavar="NAME",
        types=("dataset",),
    )
    datasets: tuple[str, ...] = option(
        (),
        "Spaces that use this dataset (repeat).",
        "openai/gsm8k",
        QUERY,
        metavar="DATASET",
        types=("space",),
    )
    models: tuple[str, ...] = option(
        (),
        "Spaces that use this model (repeat).",
        "openai-community/gpt2",
        QUERY,
        metavar="MODEL",
        types=("space",),
    )
    linked: bool = option(
        False, "Only spaces linked to a model or dataset.", "--linked", QUERY, types=("space",)
    )
    card_data: bool = option(
        False,
        "Ask for each model's card data as well (`cardData`: in `raw`; not with `expand`).",
        "--card-data --raw",
        FIELDS,
        types=("model",),
    )
    fetch_config: bool = option(
        False,
        "Ask for each model's config as well (in `raw`; not with `expand`).",
        "--fetch-config --raw",
        FIELDS,
        types=("model",),
    )
    emissions_thresholds: str | None = option(
        None,
        "Keep the models whose card gives CO2 emissions between MIN and MAX (either may be "
        "left out), as huggingface_hub does; asks for the card data.",
        "0,100",
        FIELDS,
        metavar="MIN,MAX",
        types=("model",),
        check=_thresholds,
    )
    repo_type: str | tuple[str, ...] = option(
        "model",
        "Which listing to walk (the plural names it too); repeat, or separate by commas, to walk "
        "several side by side in one run, each with its own default sorts, a file, manifest "
        "and table each: `output` must then hold {type} [default: model].",
        "dataset",
        QUERY,
        metavar="model|dataset|space",
        flag="--type",
        short="-t",
        check=_repo_type,
        choices=REPO_TYPES,
        several=True,
    )
    full: bool | None = option(
        None,
        "Ask for author, sha, lastModified, gated, disabled and files [default: `full`; "
        "`expand` implies `full=False`].",
        "--no-full",
        FIELDS,
        flag="--full/--no-full",
    )
    expand: tuple[str, ...] = option(
        (),
        "Ask only for this field (repeat).",
        "downloadsAllTime --expand inferenceProviderMapping",
        FIELDS,
        metavar="FIELD",
    )
    all_fields: bool = option(
        False,
        "Ask for every field the listing allows (safetensors, gguf, config, cardData, "
        "runtime, ...; the list per `repo_type` is in docs/record.md), for whole-Hub "
        "snapshots. Not with `expand` or `full`.",
        "--all-fields",
        FIELDS,
    )
    min_likes: int | None = option(
        None,
        "Write only repos with at least N likes; a walk sorted by likes stops where it "
        "crosses N. Alone, walks only likes.",
        "5",
        FIELDS,
        metavar="N",
        check=_at_least(0),
    )
    min_downloads: int | None = option(
        None,
        "Write only repos with at least N downloads (30 days); a walk sorted by downloads "
        "stops where it crosses N. Alone, walks only downloads.",
        "100",
        FIELDS,
        metavar="N",
        check=_at_least(0),
    )
    since: str | None = option(
        None,
        "Only repos created (`sort` createdAt) or changed (`sort` lastModified, the default "
        "with `since`) at or after TIME, a date or ISO timestamp, UTC unless a zone is given; "
        "each walk stops there.",
        "2026-11-30",
        FIELDS,
        metavar="TIME",
    )
    raw: bool = option(
        False, "Add 'raw', the API object untouched, to each record.", "--raw", FIELDS
    )
    output: str = option(
        "-",
        "File to write ('-' = stdout), all or nothing; .gz compresses; {date} (UTC "
        "YYYY-MM-DD), {time} (HHMMSSZ) and {type} are filled in, missing folders made.",
        "-o 'snapshots/models-{date}.jsonl.gz'",
        OUTPUT,
        metavar="PATH",
        short="-o",
        cli_only=True,
    )
    format: str | None = option(
        None,
        "One JSON array, one record a line, or Parquet (needs pyarrow: the `parquet` extra) "
        "[default: from the suffix of `output`: .json, .jsonl, .ndjson, "
        ".parquet; JSONL on stdout]. Any name goes once the format is named.",
        "parquet",
        OUTPUT,
        metavar="json|jsonl|parquet",
        cli_only=True,
        check=_format,
    )
    manifest: Path | None = option(
        None,
        "Where to write the manifest [default: <output>.manifest for a file; none for stdout].",
        "run.manifest",
        SNAPSHOTS,
        metavar="PATH",
        cli_only=True,
    )
    no_manifest: bool = option(
        False, "Write no manifest.", "--no-manifest", SNAPSHOTS, cli_only=True
    )
    state: Path | None = option(
        None,
        "Keep what the walks need to resume here (and in PATH.spool); the same command "
        "run again goes on where it stopped; removed once every walk is done.",
        "models.state",
        SNAPSHOTS,
        metavar="PATH",
    )
    state_max_age: float | str = option(
        12.0,
        "A `state` begun longer ago than this is not resumed: the walks start over (with a "
        "warning), so a half walk of yesterday never becomes today's snapshot.",
        "6",
        SNAPSHOTS,
        metavar="HOURS",
        check=_duration(),
        unit=HOUR,
    )
    fresh_for: float | str | None = option(
        None,
        "Make no request when `output`'s manifest says the same request made it less than "
        "this long ago (of a dated `output`, the newest); exit 0 with one line saying so.",
        "1h",
        SNAPSHOTS,
        metavar="DURATION",
        check=_duration(),
        unit=SECOND,
        cli_only=True,
    )
    min_count: PerType = option(
        None,
        "Fail (exit 4) and write nothing when fewer unique records came back; with several "
        "`repo_type`, N applies to each, TYPE=N to one (repeat), and any type short writes "
        "none.",
        "1000000",
        SNAPSHOTS,
        metavar="N|TYPE=N",
        check=_per_type_at_least(1),
        several=True,
    )
    allow_partial: bool = option(
        False,
        "When a sort fails after its retries, write what the others got (exit 3) "
        "[default: the run fails, exit 1].",
        "--allow-partial",
        SNAPSHOTS,
    )
    endpoint: str | None = option(
        None,
        "The Hub's address [default: $HF_ENDPOINT, else https://huggingface.co].",
        "http://127.0.0.1:8080",
        NETWORK,
        metavar="URL",
    )
    timeout: float | str = option(
        30.0,
        "Give up on a request after this long without an answer.",
        "60",
        NETWORK,
        metavar="SECONDS",
        check=_duration(),
        unit=SECOND,
    )
    max_rps: float | None = option(
        None,
        "At most this many requests a second, all sorts together [default: as fast as "
        "the Hub's RateLimit budget allows].",
        "2",
        NETWORK,
        metavar="N",
        check=_positive,
    )
    deadline: float | str = option(
        120.0,
        "Give up on an answer that takes longer than this in all, from the first byte sent to "
        "the last byte read, headers included (`timeout` bounds each read, not an answer that "
        "trickles in).",
        "300",
        NETWORK,
        metavar="SECONDS",
        check=_duration(),
        unit=SECOND,
    )
    page_deadline: float | str = option(
        600.0,
        "Give up on a page that has not come after this long, across all its attempts and "
        "waits (the sort fails).",
        "1200",
        NETWORK,
        metavar="SECONDS",
        check=_duration(),
        unit=SECOND,
    )
    max_page_mb: float = option(
        64.0,
        "Refuse an answer whose body is larger than this once decoded (gzip included); 1,000 "
        "entries of the largest real answer recorded (27 KB, every field) make 27 MB.",
        "128",
        NETWORK,
        metavar="MB",
        check=_positive,
    )
    retries: int = option(
        5,
        "Retries of a page after a transient failure (0 = one attempt).",
        "10",
        NETWORK,
        metavar="N",
        check=_not_negative,
    )
    backoff_base: float | str = option(
        1.0,
        "The first wait between two attempts at a page, doubled each time, with as much jitter "
        "(HFHARVEST_BACKOFF_BASE sets it from the environment).",
        "2",
        NETWORK,
        metavar="SECONDS",
        check=_duration(zero=True),
        unit=SECOND,
    )
    backoff_max: float | str = option(
        30.0,
        "The longest wait between two attempts (HFHARVEST_BACKOFF_MAX sets it from the "
        "environment).",
        "60",
        NETWORK,
        metavar="SECONDS",
        check=_duration(zero=True),
        unit=SECOND,
    )
    max_wait: float | str | None = option(
        None,
        "Longest wait a Retry-After or RateLimit header may ask for, on any answer; a longer one "
        "fails the sort [default: one rate-limit window and a second: 301 s on the Hub, or the "
        "window its RateLimit-Policy names].",
        "60",
        NETWORK,
        metavar="SECONDS",
        check=_duration(zero=True),
        unit=SECOND,
    )
    max_pages: int | None = option(
        None,
        "Stop each sort after N pages, as `limit` stops it after N entries [default: no limit].",
        "50",
        QUERY,
        metavar="N",
        check=_at_least(1),
    )
    max_time: float | str | None = option(
        None,
        "Fail the run when it has taken longer than this: 90s, 30m, 2h, 1d or seconds (with "
        "`allow_partial`, the sorts that had ended are written) [default: no limit].",
        "2h",
        NETWORK,
        metavar="DURATION",
        check=_duration(),
        unit=SECOND,
    )
    token: str | bool | None = option(
        None,
        "Token to send (on a command line, visible in `ps`: prefer $HF_TOKEN or "
        "`token_file`) [default: $HF_TOKEN, else the file $HF_TOKEN_PATH or $HF_HOME/token]; "
        "`token=False`: none.",
        "hf_...",
        AUTH,
        metavar="TOKEN",
    )
    token_file: Path | None = option(
        None, "Read the token from this file.", "~/.config/hf-token", AUTH, metavar="PATH"
    )
    allow_insecure_token: bool = option(
        False,
        "Send the token over plain http to a host that is not this machine.",
        "--endpoint http://mirror.lan --allow-insecure-token",
        AUTH,
    )

    quiet: bool = option(
        False,
        "No progress, no table, no warnings but those that may be a mistake (a state resumed "
        "or discarded, an empty result of a walk with no bound); errors still show.",
        "-q",
        OUTPUT,
        short="-q",
        cli_only=True,
    )
    debug: bool = option(
        False,
        "Log every request and show tracebacks (the token is masked).",
        "--debug",
        OUTPUT,
        cli_only=True,
    )
    stats_json: Path | None = option(
        None,
        "Write the stats and the exit code here on every exit, failures included (for monitoring).",
        "/var/lib/hf/last-run.json",
        SNAPSHOTS,
        metavar="PATH",
        cli_only=True,
    )
    no_token: bool = option(
        False, "Send no token, whatever the environment holds.", "--no-token", AUTH, cli_only=True
    )
    dry_run: bool = option(
        False,
        "Print the first request of each walk and the pages expected, as JSON lines; "
        "send nothing, make no file or folder.",
        "--dry-run",
        OUTPUT,
        cli_only=True,
    )
    progress_every: float | str = option(
        30.0,
        "When stderr is no terminal (cron), a progress line this often; 0: none.",
        "5m",
        OUTPUT,
        metavar="SECONDS",
        check=_duration(zero=True),
        unit=SECOND,
        cli_only=True,
    )

    def check(self) -> None:
        """Each option's own check; raises `UsageError` naming the first one at fault."""
        check_each(self)

    def repo_types(self) -> tuple[RepoType, ...]:
        """The listings to walk, each once, in the order given (plurals and commas read)."""
        return tuple(dict.fromkeys(REPO_TYPE_NAMES[name] for name in _type_names(self.repo_type)))

    def seconds(self, name: str) -> float:
        """A duration option's value in seconds (a bare number counted in the option's unit)."""
        value = getattr(self, name)
        unit = next(doc_of(each).unit for each in fields(self) if each.name == name)
        assert unit is not None, f"{name} is no duration"
        return seconds_of(value, unit)


def check_each(table: Any) -> None:
    """Each option's own check, for a table of options; the first at fault raises."""
    for each in fields(table):
        doc = doc_of(each)
        if doc.check is not None:
            doc.check(each.name, getattr(table, each.name))


def doc_of(each: Field[Any]) -> Doc:
    doc: Doc = each.metadata["doc"]
    return doc


def default_of(each: Field[Any]) -> Any:
    return None if each.default is MISSING else each.default


def flag_of(each: Field[Any]) -> str:
    """The long flag of an option on the command line (`--full/--no-full` for a pair)."""
    return doc_of(each).flag or f"--{each.name.replace('_', '-')}"


# What a Python caller may pass, option by option, as a type checker sees it: the table's rows
# that are not the command line's own, each in the types Python takes for it (a name or a list of
# names, a path as a string or a `Path`, `since` as a date). `tests/test_options.py` holds it
# equal to the table.
Names = str | Sequence[str]
PathLike = str | os.PathLike[str]
RepoTypeName = Literal["model", "models", "dataset", "datasets", "space", "spaces"]


class OneTypeOptions(TypedDict, total=False):
    """`PythonOptions` but `repo_type`, which `harvest()`'s overloads read apart: one type gives
    one result, several a result a type."""

    sort: Names
    limit: int | Mapping[RepoTypeName, int] | None
    page_size: int
    search: Names
    dataset_name: str | None
    author: str | None
    filter: Names
    pipeline_tag: str | None
    inference_provider: Names
    gated: bool | None
    apps: Names
    inference: str | None
    num_parameters: str | None
    trained_dataset: Names
    language: Names
    task_categories: Names
    task_ids: Names
    size_categories: Names
    multilinguality: Names
    language_creators: Names
    benchmark: str | None
    datasets: Names
    models: Names
    linked: bool
    card_data: bool
    fetch_config: bool
    emissions_thresholds: str | None
    full: bool | None
    expand: Names
    all_fields: bool
    min_likes: int | None
    min_downloads: int | None
    since: str | date | datetime | None
    raw: bool
    state: PathLike | None
    state_max_age: float | str
    min_count: int | Mapping[RepoTypeName, int] | None
    allow_partial: bool
    endpoint: str | None
    timeout: float | str
    max_rps: float | None
    deadline: float | str
    page_deadline: float | str
    max_page_mb: float
    retries: int
    backoff_base: float | str
    backoff_max: float | str
    max_wait: float | str | None
    max_pages: int | None
    max_time: float | str | None
    token: str | bool | None
    token_file: PathLike | None
    allow_insecure_token: bool


class PythonOptions(OneTypeOptions, total=False):
    """The keyword arguments of `harvest()` and `stream()`: every option but the command line's."""

    repo_type: RepoTypeName | Sequence[RepoTypeName]
