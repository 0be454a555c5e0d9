"""Settings: every option and environment variable resolved and validated once, before any request.

`resolve()` turns `FetchOptions` (the raw values, as the command line or the Python API gave
them) and the environment into a frozen `Settings`, or raises `UsageError` naming the option at
fault (each option's own check is in the options table; the checks between options are here).
Settings are made of small records: the `Query` (what is asked of the Hub), the `Transport` (how:
endpoint, token, timeouts, retries, pacing) and the `OutputTarget`. A run's job identity, which
a `--state` compares, is derived from them, never listed by hand.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from hfharvest.auth import Token, refuse_clear_text, resolve_token
from hfharvest.bounds import Bounds, parse_since
from hfharvest.errors import OfflineError, UsageError
from hfharvest.files import check_writable, remove_empty
from hfharvest.hub import (
    ALL_FIELDS,
    DEFAULT_ENDPOINT,
    PROVIDER_MAPPING,
    REPO_TYPES,
    SORT_ALIASES,
    SORTS,
    RepoType,
    fields_of,
)
from hfharvest.options import FetchOptions
from hfharvest.output import OutputTarget, resolve_target
from hfharvest.query import Query
from hfharvest.retry import RetryPolicy

DEFAULT_SORTS = ("likes", "downloads")
_TRUE = {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class Transport:
    """How the Hub is asked: where, with which token, how long to wait, how often to retry."""

    endpoint: str
    timeout: float
    retry: RetryPolicy
    max_rps: float | None
    token: Token | None


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
    made: tuple[Path, ...] = ()  # folders made for the output, manifest and state

    @property
    def sent(self) -> Query:
        """The query as sent: with the fields the bounds read, whatever else was asked."""
        query = self.query
        missing = [f for f in self.bounds.fields(query.sorts) if f not in query.fields]
        return replace(query, full=False, expand=(*query.fields, *missing)) if missing else query

    def first_url(self, sort: str) -> str:
        """The URL of a sort's first page, as sent (later pages' come from the `Link` header)."""
        return self.sent.url(self.transport.endpoint, sort)

    def job(self) -> dict[str, Any]:
        """What makes two runs the same job (a `--state` file is only taken up by its own job).

        The output is compared as its template, so tomorrow's `{date}` run is the same job.
        """
        query = {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self.query).items()}
        return {  # in JSON's terms (lists, not tuples): a job read back from a state compares equal
            "endpoint": self.transport.endpoint,
            **query,
            "output": self.output.template,
            "format": self.output.format,
            "raw": self.raw,
        }


def resolve(
    options: FetchOptions, environ: Mapping[str, str], now: datetime | None = None
) -> Settings:
    """Validate `options` against each other and the environment; raise `UsageError` if unfit.

    `now` (UTC) is when the run starts: what `{date}` and `{time}` in `output` expand to.
    """
    started = now or datetime.now(UTC)
    if environ.get("HF_HUB_OFFLINE", "").strip().lower() in _TRUE:
        raise OfflineError(
            "HF_HUB_OFFLINE is set: hfharvest makes no request in offline mode",
            hint="unset HF_HUB_OFFLINE to harvest",
        )
    options.check()
    bounds = Bounds(options.min_likes, options.min_downloads, _since(options.since, started))
    query = _query(options, bounds)
    output = resolve_target(
        options.output, options.format, started, query.repo_type, raw=options.raw
    )
    made = list(output.made)
    try:
        manifest = _manifest(options, output)
        for parameter, path in (("manifest", manifest), ("state", options.state)):
            if path is not None:
                made += check_writable(path, parameter)
        transport = _transport(options, environ)
    except UsageError:
        remove_empty(tuple(made))  # refused: no folder left behind
        raise
    return Settings(
        query=query,
        transport=transport,
        output=output,
        raw=options.raw,
        manifest=manifest,
        state=options.state,
        state_max_age=timedelta(hours=options.state_max_age),
        min_count=options.min_count,
        allow_partial=options.allow_partial,
        started=started,
        bounds=bounds,
        made=tuple(made),
    )


def _query(options: FetchOptions, bounds: Bounds) -> Query:
    repo_type = _repo_type(options)
    full, expand = _fields(options, repo_type)
    sorts = _sorts(options.sort or bounds.default_sorts() or DEFAULT_SORTS)
    bounds.check_sorts(sorts)
    return Query(
        repo_type=repo_type,
        sorts=sorts,
        limit=options.limit,
        page_size=options.page_size,
        search=options.search,
        author=options.author,
        filters=options.filter,
        pipeline_tag=options.pipeline_tag,
        inference_providers=options.inference_provider,
        full=full,
        expand=expand,
    )


def _since(text: str | None, started: datetime) -> str | None:
    return None if text is None else parse_since(text, started)


def _transport(options: FetchOptions, environ: Mapping[str, str]) -> Transport:
    if options.token is not None and options.token_file is not None:
        given = "`token=False`" if options.token is False else "`token`"
        raise UsageError(
            f"{given} and `token_file` cannot be combined", parameter="token_file",
            value=options.token_file,
        )  # fmt: skip
    endpoint = _endpoint(options.endpoint or environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT)
    token = resolve_token(options.token, options.token_file, environ)
    if token is not None and not options.allow_insecure_token:
        refuse_clear_text(endpoint)
    return Transport(
        endpoint=endpoint,
        timeout=options.timeout,
        retry=RetryPolicy.from_environment(options.retries, options.max_wait, environ),
        max_rps=options.max_rps,
        token=token,
    )


def _repo_type(options: FetchOptions) -> RepoType:
    repo_type = next(t for t in REPO_TYPES if t == options.repo_type)  # checked in the table
    if repo_type != "model":
        for name in ("pipeline_tag", "inference_provider"):
            if getattr(options, name):
                raise UsageError(
                    f"`{name}` only applies to `repo_type` model", parameter=name,
                    value=getattr(options, name),
                )  # fmt: skip
    return repo_type


def _sorts(names: tuple[str, ...]) -> tuple[str, ...]:
    sorts: list[str] = []
    for name in names:
        sort = SORT_ALIASES.get(name)
        if sort is None:
            raise UsageError(
                f"`sort` {name!r} is not a sort the Hub knows; one of {', '.join(SORTS)}",
                parameter="sort", value=name,
            )  # fmt: skip
        if sort not in sorts:
            sorts.append(sort)
    return tuple(sorts)


def _fields(options: FetchOptions, repo_type: RepoType) -> tuple[bool, tuple[str, ...]]:
    """(full, expand) to send: the Hub refuses both at once, so one of them is always empty."""
    if options.all_fields:
        if options.expand or options.full:
            raise UsageError(
                "`all_fields` cannot be combined with `expand` or `full`",
                parameter="all_fields", value=True,
                hint="`all_fields` already asks for every field a listing allows",
            )  # fmt: skip
        return False, ALL_FIELDS[repo_type]
    if options.expand:
        if options.full:
            raise UsageError(
                "`full` cannot be combined with `expand`: the Hub answers only the expanded "
                "fields", parameter="full", value=True,
                hint="drop `full`; `expand` already implies `full=False`",
            )  # fmt: skip
        return False, options.expand  # exactly the user's list
    full = options.full is not False
    if options.inference_provider:
        # A gateway routes by each provider's own model id: such a walk asks for the mapping,
        # beside the fields it would have had.
        return False, (*fields_of(repo_type, full=full), PROVIDER_MAPPING)
    return full, ()


def _endpoint(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(
            f"`endpoint` must be an http(s) URL, not {url!r}", parameter="endpoint", value=url
        )
    if parts.query or parts.fragment:
        raise UsageError(
            f"`endpoint` must not carry a query or fragment: {url!r}", parameter="endpoint",
            value=url,
        )  # fmt: skip
    return url.rstrip("/")


def _manifest(options: FetchOptions, output: OutputTarget) -> Path | None:
    if options.no_manifest:
        if options.manifest is not None:
            raise UsageError(
                "`manifest` and `no_manifest` cannot be combined", parameter="no_manifest",
                value=True,
            )  # fmt: skip
        return None
    if options.manifest is not None or output.path is None:
        return options.manifest  # on stdout there is a manifest only when one is asked for
    return output.path.with_name(output.path.name + ".manifest.json")
