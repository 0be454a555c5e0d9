"""Settings: every option and environment variable resolved and validated once, before any request.

`resolve()` turns `Options` (the raw values, as the command line or the Python API gave
them) and the environment into a frozen `Settings`, or raises `UsageError` naming the option at
fault (each option's own check is in the options table; the checks between options are here).
Settings are made of small records: the `Query` (what is asked of the Hub), the `Transport` (how:
endpoint, token, timeouts, retries, pacing) and the `OutputTarget`. A run's job identity, which
a `--state` compares, is derived from them, never listed by hand.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson

from hfharvest.auth import offline, refuse_clear_text, resolve_token
from hfharvest.bounds import Bounds, parse_since
from hfharvest.errors import OfflineError, UsageError
from hfharvest.hub import (
    ALL_FIELDS,
    DEFAULT_ENDPOINT,
    DEFAULT_SORTS,
    HUB_FILTERS,
    PROVIDER_MAPPING,
    REPO_TYPE_NAMES,
    SORTS,
    RepoType,
    closest_sort,
    expand_fields,
    fields_of,
    filter_params,
    sort_names,
)
from hfharvest.options import Options, default_of, doc_of, emission_bounds, for_type
from hfharvest.query import Query
from hfharvest.retry import RetryPolicy
from hfharvest.schema import RECORD_SCHEMA_VERSION
from hfharvest.sinks.files import check_writable, remove_empty
from hfharvest.sinks.target import MANIFEST_SUFFIX, OutputTarget, beside, resolve_target
from hfharvest.transport import Transport
from hfharvest.urls import UnsafeURL, origin
from hfharvest.version import __version__
from hfharvest.walk import WalkPlan

log = logging.getLogger("hfharvest")


@dataclass(frozen=True)
class Settings:
    """Everything one harvest needs, validated."""

    query: Query
    transport: Transport
    output: OutputTarget
    raw: bool
    manifest: Path | None
    state: Path | None
    state_max_age: timedelta
    min_count: int | None
    allow_partial: bool
    started: datetime
    bounds: Bounds  # not part of the job: a resumed walk keeps the ones it began with
    made: tuple[Path, ...]  # folders made for the output, manifest and state
    max_pages: int | None  # pages per sort
    max_time: float | None  # seconds the whole run may take
    fresh_for: float | None  # seconds a snapshot the same request made stays fresh

    @property
    def sent(self) -> Query:
        """The query as sent: with the fields the bounds read, whatever else was asked."""
        query = self.query
        missing = [f for f in self.bounds.fields(query.sorts) if f not in query.fields]
        return replace(query, full=False, expand=(*query.fields, *missing)) if missing else query

    def first_url(self, sort: str) -> str:
        """The URL of a sort's first page, as sent (later pages' come from the `Link` header)."""
        return self.sent.url(self.transport.endpoint, sort)

    def plans(self) -> list[WalkPlan]:
        """What each walk needs to know, sort by sort: where it starts, when it has enough."""
        query = self.query
        return [
            WalkPlan(
                sort,
                self.first_url(sort),
                query.repo_type,
                query.limit,
                self.bounds,
                query.page_size_sent,
                self.max_pages,
                query.emissions,
                sort,
            )
            for sort in query.sorts
        ]

    def job(self) -> dict[str, Any]:
        """What makes two runs the same job (a `--state` file is only taken up by its own job).

        The output is compared as its template, so tomorrow's `{date}` run is the same job.
        """
        return {  # in JSON's terms (lists, not tuples): a job read back from a state compares equal
            "endpoint": self.transport.endpoint,
            **_in_json_terms(self.query),
            "output": self.output.template,
            "format": self.output.format,
            "raw": self.raw,
        }


def walk_names(settings: Settings, listings: int) -> tuple[str, ...]:
    """What the walks of a listing are called in a run of `listings`: their sorts, or, beside
    other types, `type:sort` (the key of a walk in a `--state`, and its name in messages)."""
    sorts = settings.query.sorts
    return sorts if listings == 1 else tuple(f"{settings.query.repo_type}:{s}" for s in sorts)


def resolve_each(
    options: Options,
    environ: Mapping[str, str],
    now: datetime | None = None,
    *,
    probe: bool = True,
    exchange: bool | None = None,
    handed_over: bool = False,
) -> tuple[Settings, ...]:
    """`resolve` for each type `repo_type` names, in its order: one `Settings` a listing, with
    one token (asked once), one start, and its own output, manifest, sorts and per-type values.
    Several types write several files: `output` must hold {type}, unless the records are
    `handed_over` (the Python API), a type after another."""
    started = now or datetime.now(UTC)
    options.check()
    types = options.repo_types()
    if len(types) > 1:
        _check_several(options, types, to_files=not handed_over)
    each: list[Settings] = []
    try:
        for repo_type in types:
            one = _one_type(options, repo_type, types)
            if not each:
                each.append(resolve(one, environ, started, probe=probe, exchange=exchange))
                continue
            settings = resolve(one, environ, started, probe=probe, exchange=False)
            each.append(replace(settings, transport=each[0].transport))  # the token once
    except UsageError:
        for settings in each:
            remove_empty(settings.made)
        raise
    return tuple(each)


def _one_type(options: Options, repo_type: str, types: tuple[str, ...]) -> Options:
    """The options of one listing: its type, and its value of each per-type option."""
    for name in ("limit", "min_count"):
        value = getattr(options, name)
        named = value.keys() if isinstance(value, Mapping) else ()
        for each in named:
            if REPO_TYPE_NAMES[each] not in types:
                raise UsageError(
                    f"`{name}` names {each}, which this run does not walk (`repo_type` "
                    f"{', '.join(types)})",
                    parameter=name,
                    value=each,
                )
    return replace(
        options,
        repo_type=repo_type,
        limit=for_type(options.limit, repo_type),
        min_count=for_type(options.min_count, repo_type),
    )


def _check_several(options: Options, types: tuple[str, ...], *, to_files: bool) -> None:
    """What several listings in one run need: a file each, and no option of one type only."""
    to_stdout = options.output is None or str(options.output) == "-"
    if to_files and (to_stdout or "{type}" not in str(options.output)):
        raise UsageError(
            f"several types ({', '.join(types)}) are written to a file each: `output` must "
            "name one with {type}"
            + (", not stdout" if to_stdout else f", not {str(options.output)!r}"),
            parameter="output",
            value=options.output,
            hint="e.g. 'snapshots/{type}s-{date}.parquet'",
        )
    if options.manifest is not None:
        raise UsageError(
            "`manifest` names one file, and several types write a manifest each, beside its file",
            parameter="manifest",
            value=options.manifest,
            hint="drop `manifest`",
        )
    _no_option_of_another_type(options, types)


def resolve(
    options: Options,
    environ: Mapping[str, str],
    now: datetime | None = None,
    *,
    probe: bool = True,
    exchange: bool | None = None,
) -> Settings:
    """Validate `options` (one `repo_type`) against each other and the environment; raise
    `UsageError` if unfit.

    `now` (UTC) is when the run starts: what `{date}` and `{time}` in `output` expand to.
    `probe=False` (a dry run) makes no folder and tries no file. `exchange=False` (by default
    with `probe=False`) makes no request for the token: an OIDC exchange is left out.
    """
    started = now or datetime.now(UTC)
    variable = offline(environ)
    if variable is not None:
        raise OfflineError(
            f"{variable} is set: hfharvest makes no request in offline mode",
            hint=f"unset {variable} to harvest",
        )
    options.check()
    types = options.repo_types()
    if len(types) > 1:
        raise UsageError(
            f"this takes one `repo_type`, not {', '.join(types)}",
            parameter="repo_type",
            value=options.repo_type,
            hint="walk each type on its own, or harvest them together with `harvest()`",
        )
    options = _one_type(options, types[0], types)
    bounds = Bounds(options.min_likes, options.min_downloads, _since(options.since, started))
    query = _query(options, bounds)
    output = resolve_target(
        options.output, options.format, started, query.repo_type, raw=options.raw, probe=probe
    )
    made = list(output.made)
    try:
        manifest = _manifest(options, output)
        _check_fresh_for(options, output, manifest)
        for parameter, path in (("manifest", manifest), ("state", options.state)):
            if path is not None and probe:
                made += check_writable(path, parameter)
        transport = _transport(options, environ, exchange=probe if exchange is None else exchange)
    except UsageError:
        remove_empty(tuple(made))  # refused: no folder left behind
        raise
    asked = {**_in_json_terms(query), "bounds": asdict(bounds), "endpoint": transport.endpoint}
    return Settings(
        query=query,
        transport=transport,
        output=replace(output, provenance=(("hfharvest", provenance(query.repo_type, asked)),)),
        raw=options.raw,
        manifest=manifest,
        state=options.state,
        state_max_age=timedelta(seconds=options.seconds("state_max_age")),
        min_count=for_type(options.min_count, query.repo_type),
        allow_partial=options.allow_partial,
        started=started,
        bounds=bounds,
        made=tuple(made),
        max_pages=options.max_pages,
        max_time=None if options.max_time is None else options.seconds("max_time"),
        fresh_for=None if options.fresh_for is None else options.seconds("fresh_for"),
    )


def provenance(repo_type: str, request: Mapping[str, Any]) -> str:
    """What a file says of itself once it leaves its manifest (Parquet's key-value metadata,
    under `hfharvest`), as JSON: the version, the record schema, the type, the request. No time,
    so that equal answers give equal bytes; no token, which no request field holds."""
    document = {
        "version": __version__,
        "record_schema": RECORD_SCHEMA_VERSION,
        "type": repo_type,
        "request": request,
    }
    return orjson.dumps(document, option=orjson.OPT_SORT_KEYS).decode()


def _in_json_terms(query: Query) -> dict[str, Any]:
    """The query's fields as JSON holds them (lists, not tuples): the job, the provenance."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(query).items()}


def _query(options: Options, bounds: Bounds) -> Query:
    repo_type = _repo_type(options)
    full, expand = _fields(options, repo_type)
    sorts = _sorts(options.sort or bounds.default_sorts() or DEFAULT_SORTS[repo_type])
    bounds.check_sorts(sorts)
    for name, field in bounds.fields_read():
        if field not in ALL_FIELDS[repo_type]:
            raise UsageError(
                f"`{name}` bounds {field}, which {repo_type}s do not have",
                parameter=name,
                value=getattr(bounds, name),
            )
    emissions = (
        None
        if options.emissions_thresholds is None
        else emission_bounds(options.emissions_thresholds)
    )
    # huggingface_hub's order: `dataset_name` first, then the searches.
    search = (*((options.dataset_name,) if options.dataset_name else ()), *options.search)
    wire = {name: getattr(options, name) for name in HUB_FILTERS}
    expand = _card_and_config(options, wire, expand, card=options.card_data or bool(emissions))
    return Query(
        repo_type=repo_type,
        sorts=sorts,
        limit=for_type(options.limit, repo_type),
        page_size=options.page_size,
        search=search,
        author=options.author,
        filters=options.filter,
        pipeline_tag=options.pipeline_tag,
        inference_providers=options.inference_provider,
        full=full,
        expand=expand,
        hub_filters=filter_params(wire),
        emissions=emissions,
    )


def _since(text: str | None, started: datetime) -> str | None:
    return None if text is None else parse_since(text, started)


def _transport(options: Options, environ: Mapping[str, str], *, exchange: bool) -> Transport:
    if options.no_token:  # the command line's `--no-token`: none at all, refused beside another
        for name in ("token", "token_file"):
            if getattr(options, name) is not None:
                raise UsageError(
                    f"`{name}` and `no_token` cannot be combined",
                    parameter=name,
                    value=getattr(options, name),
                )
        options = replace(options, token=False)
    if options.token is not None and options.token_file is not None:
        given = "`token=False`" if options.token is False else "`token`"
        raise UsageError(
            f"{given} and `token_file` cannot be combined",
            parameter="token_file",
            value=options.token_file,
        )
    endpoint = _endpoint(options.endpoint or environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT)
    token = resolve_token(options.token, options.token_file, environ, exchange=exchange)
    log.debug("the token: %s", f"from {token.source}" if token else "none")
    if token is not None and not options.allow_insecure_token:
        refuse_clear_text(endpoint)
    return Transport(
        endpoint=endpoint,
        timeout=options.seconds("timeout"),
        retry=RetryPolicy(
            retries=options.retries,
            backoff_base=_from_environment(options, "backoff_base", environ),
            backoff_max=_from_environment(options, "backoff_max", environ),
            max_wait=None if options.max_wait is None else options.seconds("max_wait"),
            page_deadline=options.seconds("page_deadline"),
        ),
        max_rps=options.max_rps,
        token=token,
        deadline=options.seconds("deadline"),
        max_page_bytes=int(options.max_page_mb * 1_000_000),
    )


# The options the environment sets when they are at their default: the installed command's tests
# run without waiting.
ENVIRONMENT = {"backoff_base": "HFHARVEST_BACKOFF_BASE", "backoff_max": "HFHARVEST_BACKOFF_MAX"}


def _from_environment(options: Options, name: str, environ: Mapping[str, str]) -> float:
    """An option's value, or, while it is at its default, its environment variable's."""
    value = options.seconds(name)
    default = next(default_of(each) for each in fields(Options) if each.name == name)
    return value if value != default else _env_seconds(environ, ENVIRONMENT[name], value)


def _env_seconds(environ: Mapping[str, str], name: str, default: float) -> float:
    text = environ.get(name)
    if text is None or not text.strip():
        return default
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if value < 0:
        raise UsageError(f"{name} must be a number of seconds, not {text!r}")
    return value


def _repo_type(options: Options) -> RepoType:
    """The listing walked (a plural names it too), and no filter of another type's."""
    repo_type = options.repo_types()[0]  # checked in the table
    _no_option_of_another_type(options, (repo_type,))
    return repo_type


def _no_option_of_another_type(options: Options, types: tuple[str, ...]) -> None:
    """Refuse an option of one type's (`--inference-provider`) set where the run walks another."""
    for each in fields(Options):
        only, value = doc_of(each).types, getattr(options, each.name)
        if only and set(types) - set(only) and value != default_of(each):
            several = len(types) > 1
            raise UsageError(
                f"`{each.name}` only applies to `repo_type` {' and '.join(only)}"
                + (f", and this run walks {', '.join(types)}" if several else ""),
                parameter=each.name,
                value=value,
                hint=f"walk {' and '.join(only)}s with it in a run of their own"
                if several
                else None,
            )


def _sorts(names: tuple[str, ...]) -> tuple[str, ...]:
    sorts, unknown = sort_names(names)
    for sort in unknown:
        near = closest_sort(sort)
        log.warning(
            "`sort` %s is not a sort hfharvest knows (%s%s); it is sent as given, for the "
            "Hub may have added it",
            sort,
            f"did you mean {near}? " if near else "",
            ", ".join(SORTS),
        )
    return sorts


def _card_and_config(
    options: Options, wire: dict[str, Any], expand: tuple[str, ...], *, card: bool
) -> tuple[str, ...]:
    """Where the card data (`card_data`, or `emissions_thresholds`, which reads it) and the
    config are asked: as huggingface_hub's `cardData` and `config` parameters, or, when a list
    of fields is sent (the Hub then answers those only), in it. An `expand` of one's own leaves
    them out, as huggingface_hub refuses them beside it."""
    asked = [field for field, on in (("cardData", card), ("config", options.fetch_config)) if on]
    wire["card_data"], wire["fetch_config"] = card and not expand, options.fetch_config
    if not expand or not asked:
        return expand
    if options.expand:
        name = "card_data" if card and options.card_data else "emissions_thresholds"
        name = name if card else "fetch_config"
        raise UsageError(
            f"`{name}` cannot be combined with `expand` (as huggingface_hub refuses it)",
            parameter=name,
            value=getattr(options, name),
            hint=f"add {' and '.join(asked)} to `expand` instead",
        )
    wire["fetch_config"] = False
    return (*expand, *(field for field in asked if field not in expand))


def _fields(options: Options, repo_type: RepoType) -> tuple[bool, tuple[str, ...]]:
    """(full, expand) to send: the Hub refuses both at once, so one of them is always empty."""
    if options.all_fields:
        if options.expand or options.full:
            raise UsageError(
                "`all_fields` cannot be combined with `expand` or `full`",
                parameter="all_fields",
                value=True,
                hint="`all_fields` already asks for every field a listing allows",
            )
        return False, ALL_FIELDS[repo_type]
    if options.expand:
        if options.full:
            raise UsageError(
                "`full` cannot be combined with `expand`: the Hub answers only the expanded fields",
                parameter="full",
                value=True,
                hint="drop `full`; `expand` already implies `full=False`",
            )
        expand, unknown = expand_fields(repo_type, options.expand)
        for name in unknown:
            log.warning(
                "`expand` %s is a field hfharvest does not know for %ss; it is sent as "
                "given, for the Hub may have added it",
                name,
                repo_type,
            )
        return False, expand  # exactly the user's list
    full = options.full is not False
    if options.inference_provider:
        # A gateway routes by each provider's own model id: such a walk asks for the mapping,
        # beside the fields it would have had.
        return False, (*fields_of(repo_type, full=full), PROVIDER_MAPPING)
    return full, ()


def _endpoint(url: str) -> str:
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (read to see that it can be)
    except ValueError as exc:
        raise UsageError(
            f"`endpoint` {url!r} cannot be read: {exc}", parameter="endpoint", value=url
        ) from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(
            f"`endpoint` must be an http(s) URL, not {url!r}", parameter="endpoint", value=url
        )
    if parts.query or parts.fragment:
        raise UsageError(
            f"`endpoint` must not carry a query or fragment: {url!r}",
            parameter="endpoint",
            value=url,
        )
    try:
        origin(url)
    except UnsafeURL as exc:
        raise UsageError(
            f"`endpoint` {url!r} cannot be read one way only: {exc}",
            parameter="endpoint",
            value=url,
            hint="write it as scheme://host[:port][/path], without user@ or escapes",
        ) from None
    return url.rstrip("/")


def _check_fresh_for(options: Options, output: OutputTarget, manifest: Path | None) -> None:
    """`fresh_for` reads the output's manifest: a file's, never stdout's, and only if written."""
    if options.fresh_for is None:
        return
    if output.path is None:
        raise UsageError(
            "`fresh_for` asks whether the output file is fresh: stdout is never kept",
            parameter="fresh_for",
            value=options.fresh_for,
            hint="name a file with `output`, e.g. models.jsonl",
        )
    if manifest is None:
        raise UsageError(
            "`fresh_for` reads the output's manifest, and `no_manifest` writes none",
            parameter="fresh_for",
            value=options.fresh_for,
            hint="drop `no_manifest`",
        )


def _manifest(options: Options, output: OutputTarget) -> Path | None:
    if options.no_manifest:
        if options.manifest is not None:
            raise UsageError(
                "`manifest` and `no_manifest` cannot be combined",
                parameter="no_manifest",
                value=True,
            )
        return None
    if options.manifest is not None or output.path is None:
        return options.manifest  # on stdout there is a manifest only when one is asked for
    return beside(output.path, MANIFEST_SUFFIX)
