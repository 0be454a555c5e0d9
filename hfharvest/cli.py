"""The command line: parse options, wire the parts, and map every failure to one exit code.

This is the only module that knows typer, prints through `Report`, or exits. Everything below
it returns values or raises `HarvestError`s, which `_error_boundary` turns into a one-line
message, at most one line of hint, and the exit code documented in the README.
"""

from __future__ import annotations

import importlib.resources
import os
import signal
import sys
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Annotated, NoReturn

import typer

from hfharvest import __version__
from hfharvest.errors import HarvestError, UsageError
from hfharvest.harvest import harvest
from hfharvest.output import open_output
from hfharvest.report import Report
from hfharvest.settings import SORTS_HELP, FetchOptions, resolve

EXIT_CODES = (
    "Exit codes: 0 complete · 1 harvest failed (no file written; an earlier file is untouched) · "
    "2 refused before any request (bad option, HF_HUB_OFFLINE, unwritable output) · "
    "130 interrupted (SIGINT) · 141 stdout closed early (broken pipe) · 143 terminated (SIGTERM)."
)

app = typer.Typer(
    name="hfharvest",
    help="Harvest the Hugging Face Hub catalog: every sort walked to the end, merged, normalized."
    f"\n\nExample: hfharvest fetch --sort likes --sort downloads -o models.jsonl\n\n{EXIT_CODES}",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain help: readable at 80 columns, and "[default: ...]" stays text
    context_settings={"help_option_names": ["-h", "--help"]},
)


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


# Paragraphs without line breaks: the help formatter wraps them to the terminal's width.
FETCH_HELP = "\n\n".join(
    [
        "Walk the Hub listing once per sort, merge into one set unique by id, write records.",
        "Each sort follows the Hub's Link cursor to the end (or to --limit entries); a table on "
        "stderr says per sort how many entries came back, how many were new and how many were "
        "duplicates. Records go to stdout as JSONL unless -o names a file (written all or "
        "nothing; .gz compresses).",
        # \b keeps click from rewrapping the examples, so each stays whole on its line.
        "\b\nExamples:\n"
        "  hfharvest fetch --sort likes --sort downloads \\\n"
        "      --inference-provider hf-inference -o models.jsonl\n"
        "  hfharvest fetch --limit 1000 --sort trending_score | jq -r .id\n"
        "  hfharvest fetch --type dataset --author bigcode -o datasets.json.gz",
        EXIT_CODES,
    ]
)


@app.command(help=FETCH_HELP, no_args_is_help=False)
def fetch(
    sort: Annotated[
        list[str] | None,
        typer.Option(
            "--sort",
            "-s",
            metavar="SORT",
            help=f"A sort to walk; repeat for several [default: likes, downloads]. One of "
            f"{SORTS_HELP} (snake_case spellings are mapped). Example: --sort likes --sort id",
        ),
    ] = None,
    limit: Annotated[
        int | None,
        typer.Option(
            metavar="N",
            help="Stop each sort after N returned entries [default: walk to the end]. "
            "Example: --limit 1000",
        ),
    ] = None,
    page_size: Annotated[
        int,
        typer.Option(
            metavar="N",
            help="Entries per request, 1 to 1000. Example: --page-size 500",
        ),
    ] = 1000,
    search: Annotated[
        str | None,
        typer.Option(
            metavar="TEXT",
            help="Substring of the repo id. Example: --search llama",
        ),
    ] = None,
    author: Annotated[
        str | None,
        typer.Option(metavar="NAME", help="Owner, user or org. Example: --author google"),
    ] = None,
    filter_: Annotated[
        list[str] | None,
        typer.Option(
            "--filter",
            metavar="TAG",
            help="A tag every repo must carry; repeat to require all. Example: --filter gguf",
        ),
    ] = None,
    pipeline_tag: Annotated[
        str | None,
        typer.Option(
            metavar="TASK",
            help="Models of this task. Example: --pipeline-tag text-generation",
        ),
    ] = None,
    inference_provider: Annotated[
        list[str] | None,
        typer.Option(
            metavar="PROVIDER",
            help="Models served by any of these providers (repeat; 'all' = any provider). "
            "Example: --inference-provider hf-inference",
        ),
    ] = None,
    full: Annotated[
        bool | None,
        typer.Option(
            "--full/--no-full",
            show_default=False,
            help="Ask for author, sha, lastModified, gated, disabled and files [default: --full; "
            "--expand implies --no-full]. Example: --no-full",
        ),
    ] = None,
    expand: Annotated[
        list[str] | None,
        typer.Option(
            metavar="FIELD",
            help="Ask only for this field (repeat). Example: --expand downloadsAllTime "
            "--expand inferenceProviderMapping",
        ),
    ] = None,
    repo_type: Annotated[
        str,
        typer.Option(
            "--type",
            "-t",
            metavar="model|dataset|space",
            help="Which listing to walk. Example: --type dataset",
        ),
    ] = "model",
    endpoint: Annotated[
        str | None,
        typer.Option(
            metavar="URL",
            show_default=False,
            help="The Hub's address [default: $HF_ENDPOINT, else https://huggingface.co]. "
            "Example: --endpoint http://127.0.0.1:8080",
        ),
    ] = None,
    token: Annotated[
        str | None,
        typer.Option(
            metavar="TOKEN",
            show_default=False,
            help="Token to send (visible in `ps`: prefer $HF_TOKEN or --token-file) [default: "
            "$HF_TOKEN, else the file $HF_TOKEN_PATH or $HF_HOME/token]. Example: --token hf_...",
        ),
    ] = None,
    token_file: Annotated[
        Path | None,
        typer.Option(
            metavar="PATH",
            help="Read the token from this file. Example: --token-file ~/.config/hf-token",
        ),
    ] = None,
    no_token: Annotated[
        bool,
        typer.Option(
            "--no-token",
            help="Send no token, whatever the environment holds. Example: --no-token",
        ),
    ] = False,
    allow_insecure_token: Annotated[
        bool,
        typer.Option(
            "--allow-insecure-token",
            help="Send the token over plain http to a host that is not this machine. "
            "Example: --endpoint http://mirror.lan --allow-insecure-token",
        ),
    ] = False,
    timeout: Annotated[
        float,
        typer.Option(
            metavar="SECONDS",
            help="Give up on a request after this long without an answer. Example: --timeout 60",
        ),
    ] = 30.0,
    retries: Annotated[
        int,
        typer.Option(
            metavar="N",
            help="Retries of a page after a transient failure (0 = one attempt). "
            "Example: --retries 10",
        ),
    ] = 5,
    max_wait: Annotated[
        float,
        typer.Option(
            metavar="SECONDS",
            help="Longest wait a Retry-After or RateLimit header may ask for; a longer one fails "
            "the sort. Example: --max-wait 60",
        ),
    ] = 300.0,
    output: Annotated[
        str,
        typer.Option(
            "--output",
            "-o",
            metavar="PATH",
            help="File to write ('-' = stdout); written all or nothing; .gz compresses. "
            "Example: -o models.jsonl.gz",
        ),
    ] = "-",
    output_format: Annotated[
        str | None,
        typer.Option(
            "--format",
            metavar="json|jsonl",
            show_default=False,
            help="One JSON array, or one record a line [default: from the file suffix; JSONL on "
            "stdout]. Example: --format json",
        ),
    ] = None,
    raw: Annotated[
        bool,
        typer.Option(
            "--raw",
            help="Add 'raw', the API object untouched, to each record. Example: --raw",
        ),
    ] = False,
    quiet: Annotated[
        bool,
        typer.Option(
            "--quiet",
            "-q",
            help="No progress, no table, no warnings; errors still show. Example: -q",
        ),
    ] = False,
    debug: Annotated[
        bool,
        typer.Option(
            "--debug",
            help="Log every request and show tracebacks (the token is masked). Example: --debug",
        ),
    ] = False,
) -> None:
    options = FetchOptions(
        sorts=tuple(sort or ()),
        limit=limit,
        page_size=page_size,
        search=search,
        author=author,
        filters=tuple(filter_ or ()),
        pipeline_tag=pipeline_tag,
        inference_providers=tuple(inference_provider or ()),
        full=full,
        expand=tuple(expand or ()),
        repo_type=repo_type,
        endpoint=endpoint,
        token=token,
        token_file=token_file,
        no_token=no_token,
        allow_insecure_token=allow_insecure_token,
        timeout=timeout,
        retries=retries,
        max_wait=max_wait,
        output=output,
        format=output_format,
        raw=raw,
    )
    report = Report.to_stderr(quiet=quiet)
    report.secret = token
    report.capture_logs(debug=debug)
    with _error_boundary(report, debug=debug, command="fetch"):
        settings = resolve(options, os.environ)
        report.secret = settings.token
        with (
            report.walking(settings) as observer,
            open_output(settings.output, sys.stdout.buffer) as writer,
        ):
            result = harvest(settings, writer.write, observer)
        report.summary(result, settings)


@app.command(help="Print the JSON Schema of one output record.\n\nExample: hfharvest schema | jq .")
def schema() -> None:
    text = importlib.resources.files("hfharvest").joinpath("schema.json").read_bytes()
    sys.stdout.buffer.write(text)
    sys.stdout.buffer.flush()


@contextmanager
def _error_boundary(report: Report, *, debug: bool, command: str) -> Iterator[None]:
    """Turn every way a command can end badly into one message and its exit code."""
    try:
        yield
    except HarvestError as exc:
        _show_traceback(report, debug)
        usage_hint = f"see 'hfharvest {command} --help'" if isinstance(exc, UsageError) else None
        report.failure(str(exc), exc.hint or usage_hint)
        raise typer.Exit(exc.exit_code) from None
    except KeyboardInterrupt:
        report.failure("interrupted (SIGINT); no file was written, an earlier one is untouched")
        raise typer.Exit(130) from None
    except Terminated:
        report.failure("terminated (SIGTERM); no file was written, an earlier one is untouched")
        raise typer.Exit(143) from None
    except BrokenPipeError:
        # The reader went away (`| head`): nothing more can be said on stdout, so stop quietly.
        _silence_stdout()
        raise typer.Exit(141) from None
    except Exception as exc:
        _show_traceback(report, debug)
        report.failure(
            f"unexpected {type(exc).__name__}: {exc}",
            "this is a bug in hfharvest; run again with --debug and report what it prints",
        )
        raise typer.Exit(1) from None


def _show_traceback(report: Report, debug: bool) -> None:
    if debug:
        report.line(traceback.format_exc().rstrip())


def _silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush cannot raise again."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise Terminated


def main(argv: list[str] | None = None) -> NoReturn:
    """Console-script entry: run the app, formatting click's usage errors as one line."""
    signal.signal(signal.SIGTERM, _on_sigterm)
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
