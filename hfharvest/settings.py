"""Settings: every option and environment variable resolved and validated once, before any request.

`resolve()` turns the raw option values and the environment into a frozen `Settings`, or raises
`UsageError` naming the option at fault. The token is resolved here, as the Hub's own clients do.
"""

from __future__ import annotations

import ipaddress
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from hfharvest.errors import OfflineError, UsageError
from hfharvest.retry import RetryPolicy

RepoType = Literal["model", "dataset", "space"]
OutputFormat = Literal["json", "jsonl"]

DEFAULT_ENDPOINT = "https://huggingface.co"
DEFAULT_SORTS = ("likes", "downloads")
MAX_PAGE_SIZE = 1000

# The Hub rejects snake_case sort names; users type them anyway, so they are mapped here.
SORT_ALIASES: Mapping[str, str] = {
    "likes": "likes",
    "downloads": "downloads",
    "trendingScore": "trendingScore",
    "trending_score": "trendingScore",
    "createdAt": "createdAt",
    "created_at": "createdAt",
    "lastModified": "lastModified",
    "last_modified": "lastModified",
    "likes30d": "likes30d",
    "likes_30d": "likes30d",
    "id": "id",
}
SORTS_HELP = "likes, downloads, trendingScore, createdAt, lastModified, likes30d, id"

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


@dataclass(frozen=True)
class OutputTarget:
    """Where records go: a file path (None for stdout), its format, and whether to gzip it."""

    path: Path | None
    format: OutputFormat
    gzip: bool


@dataclass(frozen=True)
class FetchOptions:
    """The raw values of `hfharvest fetch`'s options, as the command line gave them."""

    sorts: tuple[str, ...] = ()
    limit: int | None = None
    page_size: int = MAX_PAGE_SIZE
    search: str | None = None
    author: str | None = None
    filters: tuple[str, ...] = ()
    pipeline_tag: str | None = None
    inference_providers: tuple[str, ...] = ()
    full: bool | None = None
    expand: tuple[str, ...] = ()
    repo_type: str = "model"
    endpoint: str | None = None
    token: str | None = None
    token_file: Path | None = None
    no_token: bool = False
    allow_insecure_token: bool = False
    timeout: float = 30.0
    retries: int = 5
    max_wait: float = 300.0
    output: str = "-"
    format: str | None = None
    raw: bool = False
    manifest: Path | None = None
    no_manifest: bool = False
    stats_json: Path | None = None
    state: Path | None = None
    min_count: int | None = None
    allow_partial: bool = False
    max_rps: float | None = None


@dataclass(frozen=True)
class Settings:
    """Everything one harvest needs, validated. The token is kept out of `repr`."""

    repo_type: RepoType
    sorts: tuple[str, ...]
    limit: int | None
    page_size: int
    search: str | None
    author: str | None
    filters: tuple[str, ...]
    pipeline_tag: str | None
    inference_providers: tuple[str, ...]
    full: bool
    expand: tuple[str, ...]
    endpoint: str
    timeout: float
    retry: RetryPolicy
    output: OutputTarget
    output_template: str  # -o as given, before {date} and friends: what names the job
    raw: bool
    manifest: Path | None
    stats_json: Path | None
    state: Path | None
    min_count: int | None
    allow_partial: bool
    max_rps: float | None
    started: datetime
    page_worker: bool  # shape pages in a second process once a walk is longer than two
    token: str | None = field(default=None, repr=False)
    token_source: str | None = None

    def job(self) -> dict[str, Any]:
        """What makes two runs the same job (a `--state` file is only taken up by its own job).

        The output is compared as its template, so tomorrow's `{date}` run is the same job.
        """
        return {
            "endpoint": self.endpoint,
            "type": self.repo_type,
            "sorts": list(self.sorts),
            "limit": self.limit,
            "page_size": self.page_size,
            "search": self.search,
            "author": self.author,
            "filters": list(self.filters),
            "pipeline_tag": self.pipeline_tag,
            "inference_providers": list(self.inference_providers),
            "full": self.full,
            "expand": list(self.expand),
            "output": self.output_template,
            "format": self.output.format,
            "raw": self.raw,
        }

    @property
    def filtered(self) -> bool:
        return bool(
            self.search or self.author or self.filters or self.pipeline_tag
            or self.inference_providers
        )  # fmt: skip


def resolve(
    options: FetchOptions, environ: Mapping[str, str], now: datetime | None = None
) -> Settings:
    """Validate `options` against each other and the environment; raise `UsageError` if unfit.

    `now` (UTC) is when the run starts: what `{date}` and `{time}` in `-o` expand to.
    """
    started = now or datetime.now(UTC)
    if environ.get("HF_HUB_OFFLINE", "").strip().lower() in _TRUE:
        raise OfflineError(
            "HF_HUB_OFFLINE is set: hfharvest makes no request in offline mode",
            hint="unset HF_HUB_OFFLINE to harvest",
        )
    repo_type = _repo_type(options)
    endpoint = _endpoint(options.endpoint or environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT)
    token, source = _token(options, environ)
    if token is not None and not options.allow_insecure_token:
        _refuse_clear_text_token(endpoint)
    output = _output(_expand(options.output, started, repo_type), options.format)
    return Settings(
        repo_type=repo_type,
        sorts=_sorts(options.sorts or DEFAULT_SORTS),
        limit=_at_least(options.limit, 1, "--limit"),
        page_size=_page_size(options.page_size),
        search=options.search,
        author=options.author,
        filters=options.filters,
        pipeline_tag=options.pipeline_tag,
        inference_providers=options.inference_providers,
        full=_full(options),
        expand=options.expand,
        endpoint=endpoint,
        timeout=_positive(options.timeout, "--timeout"),
        retry=_retry_policy(options, environ),
        output=output,
        output_template=options.output,
        raw=options.raw,
        manifest=_manifest(options, output),
        stats_json=options.stats_json,
        state=options.state,
        min_count=_at_least(options.min_count, 1, "--min-count"),
        allow_partial=options.allow_partial,
        max_rps=None if options.max_rps is None else _positive(options.max_rps, "--max-rps"),
        started=started,
        page_worker=_page_worker(environ),
        token=token,
        token_source=source,
    )


def _repo_type(options: FetchOptions) -> RepoType:
    if options.repo_type not in ("model", "dataset", "space"):
        raise UsageError(f"--type must be model, dataset or space, not {options.repo_type!r}")
    if options.repo_type != "model":
        for name, value in (
            ("--pipeline-tag", options.pipeline_tag),
            ("--inference-provider", options.inference_providers),
        ):
            if value:
                raise UsageError(f"{name} only applies to --type model")
    return options.repo_type  # type: ignore[return-value]


def _sorts(names: tuple[str, ...]) -> tuple[str, ...]:
    sorts: list[str] = []
    for name in names:
        sort = SORT_ALIASES.get(name)
        if sort is None:
            raise UsageError(f"--sort {name!r} is not a sort the Hub knows; one of {SORTS_HELP}")
        if sort not in sorts:
            sorts.append(sort)
    return tuple(sorts)


def _at_least(value: int | None, minimum: int, option: str) -> int | None:
    if value is not None and value < minimum:
        raise UsageError(f"{option} must be at least {minimum}, not {value}")
    return value


def _page_size(value: int) -> int:
    if not 1 <= value <= MAX_PAGE_SIZE:
        raise UsageError(f"--page-size must be between 1 and {MAX_PAGE_SIZE}, not {value}")
    return value


def _positive(value: float, option: str) -> float:
    if value <= 0:
        raise UsageError(f"{option} must be more than 0, not {value:g}")
    return value


def _full(options: FetchOptions) -> bool:
    if options.expand and options.full:
        raise UsageError(
            "--full cannot be combined with --expand: the Hub answers only the expanded fields",
            hint="drop --full; --expand already implies --no-full",
        )
    return options.full is not False and not options.expand


def _endpoint(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(f"--endpoint must be an http(s) URL, not {url!r}")
    if parts.query or parts.fragment:
        raise UsageError(f"--endpoint must not carry a query or fragment: {url!r}")
    return url.rstrip("/")


def _token(options: FetchOptions, environ: Mapping[str, str]) -> tuple[str | None, str | None]:
    """Resolve the token as huggingface_hub does; returns (token, where it came from)."""
    if options.no_token:
        return None, None
    if options.token:
        return options.token.strip() or None, "--token"
    if options.token_file is not None:
        return _read_token_file(options.token_file, "--token-file"), "--token-file"
    for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"):
        if environ.get(name, "").strip():
            return environ[name].strip(), name
    if environ.get("HF_TOKEN_PATH"):
        path = Path(environ["HF_TOKEN_PATH"]).expanduser()
    else:
        home = environ.get("HF_HOME") or str(Path(environ.get("HOME", "~")) / ".cache/huggingface")
        path = Path(home).expanduser() / "token"
    if path.is_file():
        return _read_token_file(path, "HF_TOKEN_PATH"), str(path)
    return None, None


def _read_token_file(path: Path, option: str) -> str | None:
    try:
        return path.read_text(encoding="utf-8").strip() or None
    except OSError as exc:
        raise UsageError(f"{option}: cannot read {path}: {exc.strerror or exc}") from exc


def _refuse_clear_text_token(endpoint: str) -> None:
    """A token sent over plain http to another machine can be read on the way: refuse."""
    parts = urlsplit(endpoint)
    if parts.scheme == "https" or _is_loopback(parts.hostname or ""):
        return
    raise UsageError(
        f"refusing to send the token in clear text to {parts.scheme}://{parts.netloc}",
        hint="use an https endpoint, or pass --no-token or --allow-insecure-token",
    )


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _retry_policy(options: FetchOptions, environ: Mapping[str, str]) -> RetryPolicy:
    if options.retries < 0:
        raise UsageError(f"--retries must be 0 or more, not {options.retries}")
    if options.max_wait < 0:
        raise UsageError(f"--max-wait must be 0 or more, not {options.max_wait:g}")
    defaults = RetryPolicy()
    return RetryPolicy(
        retries=options.retries,
        backoff_base=_env_seconds(environ, "HFHARVEST_BACKOFF_BASE", defaults.backoff_base),
        backoff_max=_env_seconds(environ, "HFHARVEST_BACKOFF_MAX", defaults.backoff_max),
        max_wait=options.max_wait,
    )


def _page_worker(environ: Mapping[str, str]) -> bool:
    """HFHARVEST_PAGE_WORKER: 0 keeps all work in one process, 1 uses a worker even on one CPU.

    Unset, a worker is used where it can run beside the walk: with more than one CPU to run on,
    and on POSIX, where it runs in a session of its own (Ctrl-C is the walk's to handle).
    """
    text = environ.get("HFHARVEST_PAGE_WORKER", "").strip().lower()
    possible = os.name == "posix"
    if not text:
        return possible and _usable_cpus() > 1
    if text in _TRUE | _FALSE:
        return possible and text in _TRUE
    raise UsageError(f"HFHARVEST_PAGE_WORKER must be 0 or 1, not {text!r}")


def _usable_cpus() -> int:
    if hasattr(os, "sched_getaffinity"):  # the CPUs this process may run on, not the machine's
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


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


def _expand(template: str, moment: datetime, repo_type: str) -> str:
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
        raise UsageError(f"-o/--output {template!r}: only {fields} are filled in ({exc})") from None


def _manifest(options: FetchOptions, output: OutputTarget) -> Path | None:
    if options.no_manifest:
        if options.manifest is not None:
            raise UsageError("--manifest and --no-manifest cannot be combined")
        return None
    if options.manifest is not None or output.path is None:
        return options.manifest  # on stdout there is a manifest only when one is asked for
    return output.path.with_name(output.path.name + ".manifest.json")


def _output(output: str, fmt: str | None) -> OutputTarget:
    if fmt is not None and fmt not in ("json", "jsonl"):
        raise UsageError(f"--format must be json or jsonl, not {fmt!r}")
    if output == "-":
        return OutputTarget(path=None, format="json" if fmt == "json" else "jsonl", gzip=False)
    path = Path(output).expanduser()
    gzip = path.suffix == ".gz"
    inner_suffix = Path(path.stem).suffix if gzip else path.suffix
    if fmt is None:
        fmt = "json" if inner_suffix == ".json" else "jsonl"
    _check_writable(path)
    return OutputTarget(path=path, format="json" if fmt == "json" else "jsonl", gzip=gzip)


def _check_writable(path: Path) -> None:
    """Fail before any request when the output could not be written at the end."""
    if path.is_dir():
        raise UsageError(f"-o/--output {path} is a folder; name a file inside it")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path.parent):
            pass
    except OSError as exc:
        raise UsageError(
            f"-o/--output: cannot write to {path.parent}: {exc.strerror or exc}",
            hint="choose a folder you can write to",
        ) from exc
