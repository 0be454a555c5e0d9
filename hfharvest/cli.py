"""The command line: parse options, wire the parts, exit with the code the run ends with.

The only module that knows typer. Everything below it returns values or raises `HarvestError`s,
which the error boundary (`boundary.guarded`) turns into one line, a hint and the exit code.
"""

from __future__ import annotations

import inspect
import json
import os
import sys
from collections.abc import Callable
from dataclasses import Field, fields, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, NoReturn, get_type_hints

import typer

from hfharvest.boundary import guarded, write_stats_file
from hfharvest.diff import DEFAULT_IGNORED, diff_snapshots
from hfharvest.errors import ExitCode, HarvestError, redact_tree, signal_of
from hfharvest.flags import EXIT_CODES, FETCH_HELP, as_flags
from hfharvest.loaders import typed_schema
from hfharvest.manifest import Snapshot, build_stats, several_stats
from hfharvest.options import (
    Options,
    default_of,
    doc_of,
    flag_of,
    per_type,
)
from hfharvest.outcome import Outcome
from hfharvest.plan import first_requests
from hfharvest.report import Report
from hfharvest.run import run_fetches
from hfharvest.schema import record_schema
from hfharvest.settings import Settings, resolve_each
from hfharvest.sinks.files import check_writable
from hfharvest.snapshots import fresh
from hfharvest.version import __version__

app = typer.Typer(
    name="hfharvest",
    help="Harvest the Hugging Face Hub catalog: every sort walked to the end, merged, normalized."
    f"\n\nExample: hfharvest fetch --sort likes --sort downloads -o models.jsonl\n\n{EXIT_CODES}",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",  # panels of options in `fetch --help`
    context_settings={"help_option_names": ["-h", "--help"]},
)


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


def _cli_parameter(each: Field[Any], annotation: Any) -> inspect.Parameter:
    """One `fetch` option, from its row of the options table."""
    doc = doc_of(each)
    flag = flag_of(each)
    default = default_of(each)
    if annotation == tuple[str, ...] or doc.several:
        annotation, default = list[str] | None, None  # repeatable
    elif doc.constant is not None:
        annotation, default = bool, False  # a flag that sets the value (--warm: "warm")
    elif each.name == "token":
        annotation = str | None  # --no-token says False
    elif doc.unit is not None:
        annotation = str | None  # "2h", or a number in the option's unit: the table reads both
    example = doc.example if doc.example.startswith("-") else f"{flag} {doc.example}"
    help_text = as_flags(doc.help).replace("[", "\\[")  # rich markup: "[" is written "\\["
    option = typer.Option(
        flag,
        *([doc.short] if doc.short else []),
        help=f"{help_text} Example: {example}",
        rich_help_panel=doc.panel,
        metavar=doc.metavar,
        show_default="[default:" not in doc.help,
        autocompletion=_completing(doc.choices),
    )
    return inspect.Parameter(
        each.name,
        inspect.Parameter.KEYWORD_ONLY,
        default=default,
        annotation=Annotated[annotation, option],
    )


def _completing(choices: tuple[str, ...]) -> Callable[[str], list[str]] | None:
    """The shell's completion of an option's value, from its choices."""
    if not choices:
        return None
    return lambda incomplete: [choice for choice in choices if choice.startswith(incomplete)]


_CONSTANTS = {f.name: doc_of(f).constant for f in fields(Options) if doc_of(f).constant}
_REPEATED = {name for name, kind in get_type_hints(Options).items() if kind == tuple[str, ...]}
_PER_TYPE = {f.name for f in fields(Options) if doc_of(f).several and f.name != "repo_type"}


def _fetch_signature() -> inspect.Signature:
    return inspect.Signature(
        [
            _cli_parameter(each, kind)
            for each, kind in zip(fields(Options), get_type_hints(Options).values(), strict=True)
        ]
    )


def fetch(**given: Any) -> None:
    """`hfharvest fetch`: its options are the options table's, those of the command line too."""
    values: dict[str, Any] = {k: tuple(v or ()) if k in _REPEATED else v for k, v in given.items()}
    values.update({k: constant if values[k] else None for k, constant in _CONSTANTS.items()})
    values["repo_type"] = _repo_types(values["repo_type"])
    per_type_texts = {name: tuple(values.pop(name) or ()) for name in _PER_TYPE}
    options = Options(**values)
    quiet, debug, stats_json = options.quiet, options.debug, options.stats_json
    report = Report(quiet=quiet, render=as_flags)
    report.secret = options.token if isinstance(options.token, str) else None
    started = datetime.now(UTC)
    resolved: list[Settings] = []
    ended: list[Outcome] = []
    stats_writable: list[bool] = []
    fresh_ones: dict[str, Snapshot] = {}
    walked: list[Settings] = []  # the listings walked (not fresh), in the order `ended` has them

    def harvest() -> int:
        nonlocal options
        options.check()  # the types named are types: the per-type values are read by them
        types = options.repo_types()
        texts = per_type_texts
        options = replace(
            options,
            limit=per_type("limit", texts["limit"], types),
            min_count=per_type("min_count", texts["min_count"], types),
        )
        options.check()
        if stats_json is not None and not options.dry_run:
            check_writable(stats_json, "stats_json")
            stats_writable.append(True)
        probe = not options.dry_run
        stale = options
        if options.fresh_for is not None:  # asked with no request at all, not even for a token
            each = resolve_each(options, os.environ, now=started, probe=probe, exchange=False)
            for settings in each:
                kept = fresh(settings, datetime.now(UTC))
                if kept is not None:  # the snapshot on disk is the answer
                    resolved.append(settings)
                    fresh_ones[settings.query.repo_type] = kept
                    report.fresh(kept, kept.age(datetime.now(UTC)), settings.fresh_for or 0.0)
            stale_types = tuple(t for t in options.repo_types() if t not in fresh_ones)
            if not stale_types:
                return ExitCode.COMPLETE
            stale = replace(options, repo_type=stale_types)
        each = resolve_each(stale, os.environ, now=started, probe=probe)
        resolved.extend(each)
        walked.extend(each)
        if options.dry_run:
            for settings in each:
                for planned in first_requests(settings):
                    sys.stdout.write(json.dumps(planned) + "\n")
            return ExitCode.COMPLETE
        token = each[0].transport.token
        report.secret = token.value if token else None
        beside_records = each[0].output.path is None and sys.stdout.isatty()
        try:
            with report.walking(
                each, every=options.seconds("progress_every"), beside_records=beside_records
            ) as observer:
                ended.extend(
                    run_fetches(each, sys.stdout.buffer, observer, landed=report.file_landed)
                )
        except HarvestError as exc:
            ended.extend(exc.outcomes or ((exc.outcome,) if exc.outcome else ()))
            raise
        finally:  # the tables, for a failed run too, once there is something to count
            for settings, outcome in zip(each, ended, strict=False):
                # beside other types, a type that failed at once says so in its table
                if any(s.pages for s in outcome.stats) or (len(each) > 1 and outcome.failed):
                    report.summary(outcome, settings)
        partial = any(outcome.failed or outcome.written is None for outcome in ended)
        return ExitCode.PARTIAL if partial else ExitCode.COMPLETE

    def resume_hint() -> str | None:
        if resolved and resolved[-1].state is not None:
            return f"run the same command again to resume from `state` {resolved[-1].state}"
        return None

    with report.capturing_logs(debug=debug):
        code, error = guarded(report, harvest, debug=debug, command="fetch", on_stop=resume_hint)
    if stats_json is not None and stats_writable:  # else that is what was refused
        by_type: dict[str, Outcome] = {
            s.query.repo_type: o for s, o in zip(walked, ended, strict=False)
        }
        listed: list[Settings | None] = [*resolved] or [None]
        entries = [
            build_stats(
                settings,
                _ended_of(settings, by_type, report.landed),
                code,
                error,
                started,
                fresh=fresh_ones.get(settings.query.repo_type) if settings else None,
            )
            for settings in listed
        ]
        several = len(options.repo_types()) > 1
        made = several_stats(entries, code, error, started) if several else entries[0]
        document = redact_tree(made, report.secret)
        code = write_stats_file(report, stats_json, document, code, debug=debug)
    raise typer.Exit(code)


def _repo_types(given: list[str] | None) -> str | tuple[str, ...]:
    """`--type` as given: once (the table's one type), or several times (commas read later)."""
    names = tuple(given or ())
    return names[0] if len(names) == 1 else names or "model"


def _ended_of(
    settings: Settings | None, by_type: dict[str, Outcome], landed: dict[Path, Outcome]
) -> Outcome | None:
    """What a listing's walks did: as the run returned it, or, for a run a signal stopped once
    its data file was in place, as that file's landing told it."""
    if settings is None:
        return None
    outcome = by_type.get(settings.query.repo_type)
    if outcome is None and settings.output.path is not None:
        return landed.get(settings.output.path)
    return outcome


fetch.__signature__ = _fetch_signature()  # type: ignore[attr-defined]  # what typer reads
app.command(help=FETCH_HELP)(fetch)


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
    fields: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated fields to compare, or 'all' \\[default: every field but "
            f"{', '.join(sorted(DEFAULT_IGNORED))}]. Example: --fields license,gated,tags",
            metavar="LIST",
            show_default=False,
        ),
    ] = None,
    exit_code: Annotated[
        bool,
        typer.Option("--exit-code", help="Exit 1 when the snapshots differ. Example: --exit-code"),
    ] = False,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="No summary on stderr. Example: -q")
    ] = False,
) -> None:
    report = Report(quiet=quiet, render=as_flags)

    def compare() -> int:
        summary = diff_snapshots(old, new, sys.stdout.buffer, fields=fields)
        report.diff_summary(summary)
        return 1 if exit_code and summary.differ else 0

    code, error = guarded(report, compare, debug=False, command="diff")
    interrupted = (ExitCode.SIGINT, ExitCode.BROKEN_PIPE, ExitCode.SIGTERM)
    trouble = error is not None and code not in interrupted
    raise typer.Exit(ExitCode.REFUSED if trouble else code)  # diff(1): any trouble is 2


@app.command(
    help="Print the schema of one output record: the JSON Schema (its $defs hold the "
    "diff line), or, for typed loading of a JSONL snapshot, one type's schema whole, as text "
    "its loader reads back: arrow (JSON: each field's type, and the schema as Arrow IPC in "
    "base64), features (the `datasets` Features as JSON), polars (polars' own JSON of an empty "
    "frame) or duckdb (the columns of read_json). All but json need pyarrow."
    "\n\n\b\nExamples:\n  hfharvest schema | jq .required\n"
    "  hfharvest schema --as arrow --type dataset | jq .fields\n"
    "  duckdb -c \"select count(*) from read_json('models.jsonl', columns=$(hfharvest schema "
    '--as duckdb))"'
)
def schema(
    kind: Annotated[
        str,
        typer.Option(
            "--as",
            help="json, arrow, features, polars or duckdb.",
            metavar="json|arrow|features|polars|duckdb",
        ),
    ] = "json",
    repo_type: Annotated[
        str,
        typer.Option(
            "--type", "-t", metavar="model|dataset|space", help="Whose records (not for json)."
        ),
    ] = "model",
) -> None:
    report = Report(render=as_flags)

    def show() -> int:
        if kind == "json":
            sys.stdout.buffer.write(record_schema())
        else:
            sys.stdout.write(f"{typed_schema(kind, repo_type)}\n")
        sys.stdout.flush()
        return ExitCode.COMPLETE

    code, _ = guarded(report, show, debug=False, command="schema")
    raise typer.Exit(code)


@app.command(
    context_settings={
        "allow_extra_args": True,
        "ignore_unknown_options": True,
        "help_option_names": [],
    },
    help="Run the offline Hub emulator (the same as python -m hfharvest.testing, reachable "
    "after pipx or uv tool install). Example: hfharvest emulator --port 8080",
)
def emulator(context: typer.Context) -> None:
    from hfharvest.testing.__main__ import main as serve  # the emulator only when asked for

    serve(context.args, prog="hfharvest emulator")


def run(argv: list[str]) -> int:
    """Run the command line on `argv` and return its exit code, typer's usage errors formatted
    as one line. It changes no process state: the console entry (`entry.main`) sets that up."""
    try:  # a bare `hfharvest` is a question: its answer is the help, and exit 0
        twice = _given_twice(argv)  # typer's command is built here: a signal may come meanwhile
        if twice is not None:
            Report().failure(twice, "give it once; see 'hfharvest fetch --help'")
            return ExitCode.REFUSED
        code = app(args=argv or ["--help"], prog_name="hfharvest", standalone_mode=False)
    except typer.TyperException as exc:
        # Typer's usage errors (unknown option, bad value) instead of its boxed panel.
        context = getattr(exc, "ctx", None)
        hint = f"see '{context.command_path} --help'" if context is not None else None
        Report().failure(exc.format_message(), hint)
        return int(exc.exit_code)
    except typer.Abort:
        Report().failure("interrupted")
        return ExitCode.SIGINT
    except BaseException as error:  # a signal before the command's own boundary
        stopped = signal_of(error)
        if stopped is None:
            raise
        Report().failure(f"stopped by {stopped.signal_name} at start-up; no file was written")
        return stopped.exit_code
    return code if isinstance(code, int) else 0


def _given_twice(argv: list[str]) -> str | None:
    """An option of `fetch` that takes one value, given twice (`-o a -o b`: click would keep the
    last, silently), said; None when there is none."""
    if argv[:1] != ["fetch"]:
        return None
    command = typer.main.get_command(app).commands["fetch"]  # type: ignore[attr-defined]
    single = {
        name: param.opts[0]
        for param in command.params
        # typer's own click: an option is told by its kind, not by a class from `click`
        if param.param_type_name == "option" and not (param.multiple or param.is_flag)
        for name in param.opts
    }
    seen: dict[str, list[str]] = {}
    arguments = iter(argv[1:])
    for argument in arguments:
        if argument == "--":
            break
        name, equals, value = argument.partition("=")
        if name in single:
            value = value if equals else next(arguments, "")
            seen.setdefault(single[name], []).append(value)
    for flag, values in seen.items():
        if len(values) > 1:
            return f"{flag} takes one value, and was given {len(values)}: {', '.join(values)}"
    return None


def main(argv: list[str] | None = None) -> NoReturn:
    """The command line, in-process: raises `SystemExit` with the exit code."""
    sys.exit(run(sys.argv[1:] if argv is None else argv))
