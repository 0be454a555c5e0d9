"""The command line's own words: each option as a flag, the exit codes, and `fetch`'s help.

The library names an option as its Python parameter, in backquotes (`` `limit` ``); `as_flags`
renders such a text for the command line (`--limit`), which is the only layer that shows flags.
"""

from __future__ import annotations

import re
from dataclasses import fields

from hfharvest.options import Options, flag_of

# How the command line spells what the library names `in_backquotes`: each option's flag, and
# what only the command line has.
FLAGS: dict[str, str] = {
    **{each.name: flag_of(each).split("/")[0] for each in fields(Options)},
    "output": "-o/--output",
    "full=False": "--no-full",
    "token=False": "--no-token",
    "fields": "--fields",
    "as": "--as",
}
_NAMED = re.compile(r"`([a-z_]+(?:=False)?)`")


def as_flags(text: str) -> str:
    """A library text with its options named as the command line spells them (for the CLI)."""
    return _NAMED.sub(lambda m: FLAGS.get(m.group(1), m.group(0)), text)


# The command line's own words: the exit codes (docs/usage.md has the table) and fetch's help.
EXIT_CODES = (
    "Exit codes: 0 complete · 1 harvest failed (no file written; an earlier file is untouched) · "
    "2 refused before any request (bad option, HF_HUB_OFFLINE, unwritable output, --state of "
    "another job) · 3 partial result written (--allow-partial) · 4 fewer than --min-count "
    "records (nothing written) · 5 data written, a side file (manifest, stats) not · 130 "
    "interrupted (SIGINT) · 141 stdout closed early (broken pipe) · 143 terminated (SIGTERM)."
)

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
