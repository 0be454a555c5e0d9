"""The command line: parse options, wire the parts, and map every failure to one exit code.

This is the only module that knows typer, prints through `Report`, or exits. Everything below
it returns values or raises `HarvestError`s, which `_guarded` turns into a one-line message, at
most one line of hint, and the exit code documented in the README.
"""

from __future__ import annotations

import gc
import os
import signal
import sys
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Annotated, Any, NoReturn

import typer

from hfharvest import __version__
from hfharvest.diff import DEFAULT_IGNORED, diff_snapshots
from hfharvest.errors import HarvestError, UsageError
from hfharvest.hub import SORTS
from hfharvest.manifest import Ledger, build_stats, write_json
from hfharvest.normalize import record_schema
from hfharvest.report import Report
from hfharvest.run import run_fetch
from hfharvest.settings import FetchOptions, Settings, resolve

EXIT_CODES = (
    "Exit codes: 0 complete · 1 harvest failed (no file written; an earlier file is untouched) · "
    "2 refused before any request (bad option, HF_HUB_OFFLINE, unwritable output, --state of "
    "another job) · 3 partial result written (--allow-partial) · 4 fewer than --min-count "
    "records (nothing written) · 130 interrupted (SIGINT) · 141 stdout closed early (broken "
    "pipe) · 143 terminated (SIGTERM)."
)

app = typer.Typer(
    name="hfharvest",
    help="Harvest the Hugging Face Hub catalog: every sort walked to the end, merged, normalized."
    f"\n\nExample: hfharvest fetch --sort likes --sort downloads -o models.jsonl\n\n{EXIT_CODES}",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",  # panels of options in `fetch --help`
    context_settings={"help_option_names": ["-h", "--help"]},
)


DEFAULTS = FetchOptions()  # every option's default, written once, in settings


class Terminated(BaseException):
    """SIGTERM, raised in the main thread so that open files are cleaned up on the way out."""


def _version(value: bool) -> None:
    if value:
        typer.echo(f"hfharvest {__version__}")
        raise typer.Exit


@app.callback()
def _main_options(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Options that come before the command."""


# The panels `fetch --help` groups its options into.
QUERY, FIELDS, OUTPUT = "Query", "Fields and bounds", "Output"
SNAPSHOTS, NETWORK, AUTH = "Snapshots", "Network", "Auth"


def _opt(
    help_text: str, *names: str, panel: str | None = None, metavar: str | None = None, **kwargs: Any
) -> Any:
    """A typer option whose help ends with its example, as every option's must.

    Help is rich markup: a literal "[" is written "\\[".
    """
    if metavar is not None:
        kwargs["metavar"] = metavar
    return typer.Option(*names, help=help_text, rich_help_panel=panel, **kwargs)


FETCH_HELP = "\n\n".join(
    [
        "Walk the Hub listing once per sort, merge into one set unique by id, write records.",
        "Each sort follows the Hub's Link cursor to the end (or to --limit entries); a table on "
        "stderr says per sort how many entries came back, how many were new and how many were "
        "duplicates. Records go to stdout as JSONL unless -o names a file (written all or "
        "nothing, with a manifest beside it; .gz compresses).",
        # \b keeps click from rewrapping the examples, so each stays whole on its line.
        "\b\nExamples:\n"
        "  hfharvest fetch --sort likes --sort downloads \\\n"
        "      --inference-provider hf-inference -o models.jsonl\n"
        "  hfharvest fetch --limit 1000 --sort trending_score | jq -r .id\n"
        "  hfharvest fetch --type dataset --author bigcode -o datasets.json.gz\n"
        "  hfharvest fetch -o 'snapshots/{type}s-{date}.jsonl.gz' --min-count 1000000 \\\n"
        "      --state snapshots/.state --stats-json snapshots/last-run.json",
        EXIT_CODES,
    ]
)


@app.command(help=FETCH_HELP)
def fetch(
    sort: Annotated[list[str] | None, _opt(
        "A sort to walk; repeat for several \\[default: likes, downloads]. One of "
        f"{', '.join(SORTS)} (snake_case spellings are mapped). Example: --sort likes --sort id",
        "--sort", "-s", metavar="SORT", panel=QUERY)] = None,
    limit: Annotated[int | None, _opt(
        "Stop each sort after N returned entries \\[default: walk to the end]. "
        "Example: --limit 1000", metavar="N", panel=QUERY)] = None,
    page_size: Annotated[int, _opt(
        "Entries per request, 1 to 1000. Example: --page-size 500",
        metavar="N", panel=QUERY)] = DEFAULTS.page_size,
    search: Annotated[str | None, _opt(
        "Substring of the repo id. Example: --search llama", metavar="TEXT", panel=QUERY)] = None,
    author: Annotated[str | None, _opt(
        "Owner, user or org. Example: --author google", metavar="NAME", panel=QUERY)] = None,
    filter_: Annotated[list[str] | None, _opt(
        "A tag every repo must carry; repeat to require all. Example: --filter gguf",
        "--filter", metavar="TAG", panel=QUERY)] = None,
    pipeline_tag: Annotated[str | None, _opt(
        "Models of this task. Example: --pipeline-tag text-generation", metavar="TASK",
        panel=QUERY)] = None,
    inference_provider: Annotated[list[str] | None, _opt(
        "Models served by any of these providers (repeat; 'all' = any provider). "
        "Example: --inference-provider hf-inference", metavar="PROVIDER", panel=QUERY)] = None,
    repo_type: Annotated[str, _opt(
        "Which listing to walk. Example: --type dataset", "--type", "-t",
        metavar="model|dataset|space", panel=QUERY)] = DEFAULTS.repo_type,
    full: Annotated[bool | None, _opt(
        "Ask for author, sha, lastModified, gated, disabled and files \\[default: --full; "
        "--expand implies --no-full]. Example: --no-full", "--full/--no-full",
        show_default=False, panel=FIELDS)] = None,
    expand: Annotated[list[str] | None, _opt(
        "Ask only for this field (repeat). Example: --expand downloadsAllTime "
        "--expand inferenceProviderMapping", metavar="FIELD", panel=FIELDS)] = None,
    all_fields: Annotated[bool, _opt(
        "Ask for every field the listing allows (safetensors, gguf, config, cardData, runtime, "
        "...; the list per --type is in docs/record.md), for whole-Hub snapshots. Not with "
        "--expand or --full. Example: --all-fields", "--all-fields", panel=FIELDS)] = False,
    min_likes: Annotated[int | None, _opt(
        "Write only repos with at least N likes; a walk sorted by likes stops where it crosses "
        "N. Alone, walks only likes. Example: --min-likes 5", metavar="N", panel=FIELDS)] = None,
    min_downloads: Annotated[int | None, _opt(
        "Write only repos with at least N downloads (30 days); a walk sorted by downloads stops "
        "where it crosses N. Alone, walks only downloads. Example: --min-downloads 100",
        metavar="N", panel=FIELDS)] = None,
    since: Annotated[str | None, _opt(
        "Only repos created (--sort createdAt) or changed (--sort lastModified, the default "
        "with --since) at or after TIME, a date or ISO timestamp, UTC unless a zone is given; "
        "each walk stops there. Example: --since 2026-11-30", metavar="TIME", panel=FIELDS)] = None,
    raw: Annotated[bool, _opt(
        "Add 'raw', the API object untouched, to each record. Example: --raw", "--raw",
        panel=FIELDS)] = False,
    output: Annotated[str, _opt(
        "File to write ('-' = stdout), all or nothing; .gz compresses; {date} (UTC YYYY-MM-DD), "
        "{time} (HHMMSSZ) and {type} are filled in, missing folders made. "
        "Example: -o 'snapshots/models-{date}.jsonl.gz'", "--output", "-o",
        metavar="PATH", panel=OUTPUT)] = DEFAULTS.output,
    output_format: Annotated[str | None, _opt(
        "One JSON array, or one record a line \\[default: from the file suffix; JSONL on stdout]. "
        "Example: --format json", "--format", metavar="json|jsonl", show_default=False,
        panel=OUTPUT)] = None,
    quiet: Annotated[bool, _opt(
        "No progress, no table, no warnings; errors still show. Example: -q",
        "--quiet", "-q", panel=OUTPUT)] = False,
    debug: Annotated[bool, _opt(
        "Log every request and show tracebacks (the token is masked). Example: --debug",
        "--debug", panel=OUTPUT)] = False,
    manifest: Annotated[Path | None, _opt(
        "Where to write the manifest \\[default: <output>.manifest.json for a file; none for "
        "stdout]. Example: --manifest run.manifest.json", metavar="PATH",
        show_default=False, panel=SNAPSHOTS)] = None,
    no_manifest: Annotated[bool, _opt(
        "Write no manifest. Example: --no-manifest", "--no-manifest", panel=SNAPSHOTS)] = False,
    stats_json: Annotated[Path | None, _opt(
        "Write the stats and the exit code here on every exit, failures included (for "
        "monitoring). Example: --stats-json /var/lib/hf/last-run.json", metavar="PATH",
        panel=SNAPSHOTS)] = None,
    state: Annotated[Path | None, _opt(
        "Keep what the walks need to resume here (and in PATH.spool); the same command run "
        "again goes on where it stopped; removed once complete. Example: --state models.state",
        metavar="PATH", panel=SNAPSHOTS)] = None,
    min_count: Annotated[int | None, _opt(
        "Exit 4 and write nothing when fewer unique records came back. "
        "Example: --min-count 1000000", metavar="N", panel=SNAPSHOTS)] = None,
    allow_partial: Annotated[bool, _opt(
        "When a sort fails after its retries, write what the others got and exit 3 "
        "\\[default: the run fails, exit 1]. Example: --allow-partial", "--allow-partial",
        panel=SNAPSHOTS)] = False,
    endpoint: Annotated[str | None, _opt(
        "The Hub's address \\[default: $HF_ENDPOINT, else https://huggingface.co]. "
        "Example: --endpoint http://127.0.0.1:8080", metavar="URL", show_default=False,
        panel=NETWORK)] = None,
    timeout: Annotated[float, _opt(
        "Give up on a request after this long without an answer. Example: --timeout 60",
        metavar="SECONDS", panel=NETWORK)] = DEFAULTS.timeout,
    max_rps: Annotated[float | None, _opt(
        "At most this many requests a second, all sorts together \\[default: as fast as the "
        "Hub's RateLimit budget allows]. Example: --max-rps 2", metavar="N", panel=NETWORK)] = None,
    retries: Annotated[int, _opt(
        "Retries of a page after a transient failure (0 = one attempt). Example: --retries 10",
        metavar="N", panel=NETWORK)] = DEFAULTS.retries,
    max_wait: Annotated[float, _opt(
        "Longest wait a Retry-After or RateLimit header may ask for; a longer one fails the "
        "sort. Example: --max-wait 60", metavar="SECONDS", panel=NETWORK)] = DEFAULTS.max_wait,
    token: Annotated[str | None, _opt(
        "Token to send (visible in `ps`: prefer $HF_TOKEN or --token-file) \\[default: $HF_TOKEN, "
        "else the file $HF_TOKEN_PATH or $HF_HOME/token]. Example: --token hf_...",
        metavar="TOKEN", show_default=False, panel=AUTH)] = None,
    token_file: Annotated[Path | None, _opt(
        "Read the token from this file. Example: --token-file ~/.config/hf-token",
        metavar="PATH", panel=AUTH)] = None,
    no_token: Annotated[bool, _opt(
        "Send no token, whatever the environment holds. Example: --no-token",
        "--no-token", panel=AUTH)] = False,
    allow_insecure_token: Annotated[bool, _opt(
        "Send the token over plain http to a host that is not this machine. "
        "Example: --endpoint http://mirror.lan --allow-insecure-token",
        "--allow-insecure-token", panel=AUTH)] = False,
) -> None:  # fmt: skip
    options = FetchOptions(
        sort=tuple(sort or ()), limit=limit, page_size=page_size, search=search, author=author,
        filter=tuple(filter_ or ()), pipeline_tag=pipeline_tag,
        inference_provider=tuple(inference_provider or ()), full=full,
        expand=tuple(expand or ()), all_fields=all_fields, repo_type=repo_type, endpoint=endpoint,
        token=False if no_token else token, token_file=token_file,
        allow_insecure_token=allow_insecure_token, timeout=timeout, retries=retries,
        max_wait=max_wait, output=output, format=output_format, raw=raw, manifest=manifest,
        no_manifest=no_manifest, state=state, min_count=min_count, allow_partial=allow_partial,
        max_rps=max_rps, min_likes=min_likes, min_downloads=min_downloads, since=since,
    )  # fmt: skip
    report = Report.to_stderr(quiet=quiet)
    report.secret = token
    report.capture_logs(debug=debug)
    ledger = Ledger(started=datetime.now(UTC))
    resolved: list[Settings] = []

    def harvest() -> int:
        settings = resolve(options, os.environ, now=ledger.started)
        resolved.append(settings)
        report.secret = settings.transport.token.value if settings.transport.token else None
        try:
            with report.walking(settings) as observer:
                return run_fetch(settings, sys.stdout.buffer, observer, ledger)
        finally:  # the table, for a failed run too, once there is something to count
            if ledger.result is not None and any(s.pages for s in ledger.result.stats):
                report.summary(ledger.result, settings)

    def resume_hint() -> str | None:
        if resolved and resolved[0].state is not None:
            return f"run the same command again to resume from --state {resolved[0].state}"
        return None

    code, error = _guarded(report, harvest, debug=debug, command="fetch", on_stop=resume_hint)
    if stats_json is not None:
        document = build_stats(resolved[0] if resolved else None, ledger, code, error)

        def write_stats() -> int:
            write_json(stats_json, document)
            return code

        code, _ = _guarded(report, write_stats, debug=debug, command="fetch")
    raise typer.Exit(code)


@app.command(
    help="Compare two snapshots: one JSONL line per added, removed or changed repo on stdout, a "
    "summary on stderr. Counters that move every day (likes, downloads, downloads_all_time, "
    "trending_score), found_by and raw are left out unless --fields names them.\n\n"
    "\b\nExamples:\n"
    "  hfharvest diff snapshots/models-2026-11-25.jsonl.gz snapshots/models-2026-11-26.jsonl.gz\n"
    "  hfharvest diff old.jsonl new.jsonl --fields license,gated --exit-code | jq -r .id\n\n"
    "Exit codes (as diff(1)): 0 no difference (or any result without --exit-code) · 1 they "
    "differ, with --exit-code · 2 trouble (a file missing or unreadable)."
)
def diff(
    old: Annotated[Path, typer.Argument(help="The earlier snapshot (JSON or JSONL, .gz or not).")],
    new: Annotated[Path, typer.Argument(help="The later snapshot.")],
    fields: Annotated[str | None, _opt(
        "Comma-separated fields to compare, or 'all' \\[default: every field but "
        f"{', '.join(sorted(DEFAULT_IGNORED))}]. Example: --fields license,gated,tags",
        metavar="LIST", show_default=False)] = None,
    exit_code: Annotated[bool, _opt(
        "Exit 1 when the snapshots differ. Example: --exit-code", "--exit-code")] = False,
    quiet: Annotated[bool, _opt(
        "No summary on stderr. Example: -q", "--quiet", "-q")] = False,
) -> None:  # fmt: skip
    report = Report.to_stderr(quiet=quiet)

    def compare() -> int:
        summary = diff_snapshots(old, new, sys.stdout.buffer, fields=fields)
        report.diff_summary(summary)
        return 1 if exit_code and summary.differ else 0

    code, error = _guarded(report, compare, debug=False, command="diff")
    trouble = error is not None and code not in (130, 141, 143)
    raise typer.Exit(2 if trouble else code)  # diff(1): any trouble is 2


@app.command(help="Print the JSON Schema of one output record (its $defs hold the diff line)."
             "\n\nExample: hfharvest schema | jq .required")  # fmt: skip
def schema() -> None:
    sys.stdout.buffer.write(record_schema())
    sys.stdout.buffer.flush()


def _guarded(
    report: Report,
    body: Callable[[], int],
    *,
    debug: bool,
    command: str,
    on_stop: Callable[[], str | None] = lambda: None,
) -> tuple[int, str | None]:
    """Run `body`; turn every way it can end badly into one message. Returns (exit code, error)."""
    try:
        return body(), None
    except HarvestError as exc:
        _show_traceback(report, debug)
        usage_hint = f"see 'hfharvest {command} --help'" if isinstance(exc, UsageError) else None
        report.failure(str(exc), exc.hint or (on_stop() if exc.exit_code == 1 else usage_hint))
        return exc.exit_code, str(exc)
    except (KeyboardInterrupt, Terminated) as exc:
        name, code = ("SIGINT", 130) if isinstance(exc, KeyboardInterrupt) else ("SIGTERM", 143)
        where = report.where_stopped()
        message = f"stopped by {name}{f' during {where}' if where else ''}; no file was written"
        report.failure(f"{message}, an earlier one is untouched", on_stop())
        return code, message
    except BrokenPipeError:
        # The reader went away (`| head`): nothing more can be said on stdout, so stop quietly.
        _silence_stdout()
        return 141, "stdout was closed"
    except Exception as exc:
        _show_traceback(report, debug)
        report.failure(
            f"unexpected {type(exc).__name__}: {exc}",
            "this is a bug in hfharvest; run again with --debug and report what it prints",
        )
        return 1, f"{type(exc).__name__}: {exc}"


def _show_traceback(report: Report, debug: bool) -> None:
    if debug:
        report.line(traceback.format_exc().rstrip())


def _silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush cannot raise again."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def _tune_process() -> None:
    """Tune the interpreter for this process, which shapes millions of records between fetches.

    The cyclic collector: a walk allocates millions of short-lived, acyclic objects (parsed
    pages, records); at the default threshold of 700 allocations the collector would rescan them
    without end (about 7 % of a 100,000-model run). Cycles are rare here; they are still
    collected. The switch interval: a thread reading an answer off the socket waits for the one
    shaping a page to hand over the interpreter lock, 5 ms at a time by default; at 1 ms, walks
    whose pages arrive together (two sorts) wait less (0.86 -> 0.83 s for two sorts of 1,377
    models at 0.2 s a page, medians of 8). This is the process's business, so it is done here
    and never by the library.
    """
    gc.freeze()
    gc.set_threshold(100_000, 50, 100)
    sys.setswitchinterval(0.001)


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise Terminated


def main(argv: list[str] | None = None) -> NoReturn:
    """Console-script entry: run the app, formatting typer's usage errors as one line."""
    signal.signal(signal.SIGTERM, _on_sigterm)
    _tune_process()
    try:
        code = app(args=argv, prog_name="hfharvest", standalone_mode=False)
    except typer.TyperException as exc:
        # Typer's usage errors (unknown option, bad value) instead of its boxed panel.
        context = getattr(exc, "ctx", None)
        hint = f"see '{context.command_path} --help'" if context is not None else None
        Report.to_stderr().failure(exc.format_message(), hint)
        code = exc.exit_code
    except typer.Abort:
        Report.to_stderr().failure("interrupted")
        code = 130
    sys.exit(code if isinstance(code, int) else 0)
