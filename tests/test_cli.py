"""The command line as a user meets it: stdout is data, stderr the table, errors one line."""

from __future__ import annotations

import gc
import json
import logging
import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from said import said
from typer.main import get_group
from typer.testing import CliRunner

from hfharvest.cli import app, main
from hfharvest.testing import HubEmulator

runner = CliRunner()


def fetch(hub: HubEmulator, *args: str, env: dict[str, str] | None = None) -> Any:
    return runner.invoke(app, ["fetch", "--endpoint", hub.url, *args], env=env)


def lines(stdout: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stdout.splitlines()]


def record_validator() -> jsonschema.Draft202012Validator:
    """The schema exactly as `hfharvest schema` prints it."""
    schema = json.loads(runner.invoke(app, ["schema"]).stdout)
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def run_main(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    out, err = capsys.readouterr()
    code = exit_info.value.code
    return code if isinstance(code, int) else 0, out, err


def test_limit_1000_table_and_json_lines(hub: HubEmulator) -> None:
    result = fetch(hub, "--inference-provider", "hf-inference", "--limit", "1000")
    assert result.exit_code == 0, result.stderr
    records = lines(result.stdout)  # every stdout line parses: data only
    assert len(records) == 1204
    table = [line for line in said(result.stderr) if not line.startswith("hfharvest: ")]
    assert "models per sort" in table[0]
    likes_row = next(line for line in table if line.startswith("likes "))
    downloads_row = next(line for line in table if line.startswith("downloads "))
    assert likes_row.split()[1:4] == ["1,000", "1,000", "0"]
    assert downloads_row.split()[1:4] == ["1,000", "204", "796"]
    assert "1,204" in next(line for line in table if "unique" in line)
    for sort in ("likes", "downloads"):  # said once, in the table; not as a warning
        assert f"{sort}: stopped at --limit 1000 (the Hub had more)" in result.stderr
    assert "warning" not in result.stderr


def test_output_file_json_and_nothing_on_stdout(hub: HubEmulator, tmp_path: Path) -> None:
    path = tmp_path / "models.json"
    result = fetch(hub, "--inference-provider", "hf-inference", "-o", str(path), "--quiet")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""
    assert result.stderr == ""  # --quiet: no table
    records = json.loads(path.read_text())
    assert len(records) == 1377
    validator = record_validator()
    for record in records:
        validator.validate(record)


@pytest.mark.parametrize("repo_type", ["dataset", "space"])
def test_datasets_and_spaces_fit_the_schema(hub: HubEmulator, repo_type: str) -> None:
    result = fetch(hub, "--type", repo_type, "--sort", "likes", "--limit", "300", "-q")
    assert result.exit_code == 0, result.stderr
    validator = record_validator()
    records = lines(result.stdout)
    assert len(records) == 300
    for record in records:
        validator.validate(record)
        assert record["type"] == repo_type
    if repo_type == "space":
        assert all(r["sdk"] for r in records)


def test_same_answers_give_byte_identical_output(hub: HubEmulator) -> None:
    args = ("--sort", "likes", "--sort", "downloads", "--sort", "id", "--limit", "700", "--raw")
    first, second = fetch(hub, *args), fetch(hub, *args)
    assert first.exit_code == second.exit_code == 0
    assert first.stdout_bytes == second.stdout_bytes


def test_expand_asks_only_for_those_fields(hub: HubEmulator) -> None:
    result = fetch(hub, "--sort", "likes", "--limit", "5", "--expand", "downloadsAllTime", "-q")
    assert result.exit_code == 0, result.stderr
    record = lines(result.stdout)[0]
    assert isinstance(record["downloads_all_time"], int)
    assert record["likes"] is None and record["tags"] is None and record["files"] is None
    assert "full=true" not in hub.requests_log[0].query


def test_a_400_from_the_hub_is_shown_in_one_line(hub: HubEmulator) -> None:
    result = fetch(hub, "--sort", "trending_score", "--inference-provider", "hf-inference")
    assert result.exit_code == 1
    error_lines = said(result.stderr)
    assert error_lines[0].startswith("hfharvest: error: Invalid sort parameter: trendingScore ")
    assert "(HTTP 400 from http://" in error_lines[0] and error_lines[0].endswith("…)")
    assert len(error_lines[0]) < 200
    assert error_lines[1] == (
        "hint: the Hub refuses --sort trendingScore beside --inference-provider; use likes"
    )
    assert error_lines[1].startswith("hint: ")
    assert len(error_lines) == 2
    assert "Traceback" not in result.stderr


def test_a_rejected_token_exits_1_and_never_shows_the_token(hub_catalog: Any) -> None:
    with HubEmulator(hub_catalog, tokens=["hf_good"]) as hub:
        result = fetch(hub, "--debug", env={"HF_TOKEN": "hf_canary_token_123"})
    assert result.exit_code == 1
    assert "Invalid credentials in Authorization header" in result.stderr
    assert "token from HF_TOKEN was refused" in result.stderr
    assert "hf_canary_token_123" not in result.stderr + result.stdout
    assert hub.requests_log[0].token is True


def test_earlier_file_untouched_when_the_harvest_fails(hub: HubEmulator, tmp_path: Path) -> None:
    path = tmp_path / "models.jsonl"
    path.write_text("yesterday\n")
    hub.add_fault("400@2")
    result = fetch(hub, "--limit", "1500", "-o", str(path))
    assert result.exit_code == 1
    assert path.read_text() == "yesterday\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["models.jsonl"]


def test_unreachable_endpoint_exits_1() -> None:
    result = runner.invoke(
        app, ["fetch", "--endpoint", "http://127.0.0.1:9", "--retries", "1", "-s", "likes"]
    )
    assert result.exit_code == 1
    assert (
        "cannot reach http://127.0.0.1:9: Connection refused: nothing listens there (2 attempts"
        in result.stderr
    )
    assert result.stderr.count("retry 1 of 1") == 1
    # Waits are 0 in tests (HFHARVEST_BACKOFF_*): what the retries can take is 0 s.
    assert "nothing listens at http://127.0.0.1:9 (the retries take up to 0 s)" in result.stderr


def test_offline_mode_refuses_before_any_request(hub: HubEmulator) -> None:
    result = fetch(hub, env={"HF_HUB_OFFLINE": "1"})
    assert result.exit_code == 2
    assert "HF_HUB_OFFLINE" in result.stderr
    assert hub.requests_log == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--page-size", "0"], "--page-size must be between 1 and 1000, not 0"),
        (["--page-size", "5000"], "--page-size must be between 1 and 1000, not 5000"),
        (["--limit", "-1"], "--limit must be at least 1, not -1"),
        (["--full", "--expand", "sha"], "--full cannot be combined with --expand"),
        (["--limit", "many"], "--limit must be N or TYPE=N (model=1000), not 'many'"),
        (["--bogus"], "No such option: --bogus"),
        (["-o", "/proc/version/x.jsonl"], "-o/--output: /proc/version is not a folder"),
    ],
)
def test_bad_input_one_line_exit_2_no_request(
    hub: HubEmulator, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    code, out, err = run_main(["fetch", "--endpoint", hub.url, *args], capsys)
    assert code == 2
    assert out == ""
    first, *rest = said(err)
    assert first == f"hfharvest: error: {message}" or (
        first.startswith("hfharvest: error: ") and message in first
    )
    assert len(rest) <= 1 and all(line.startswith("hint: ") for line in rest)
    assert "╭" not in err and "Usage:" not in err  # typer's boxed panel is gone
    assert hub.requests_log == []


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_main(["--version"], capsys)
    assert code == 0
    assert out.startswith("hfharvest 0.")


def all_commands() -> list[list[str]]:
    return [[], *([name] for name in get_group(app).commands)]


@pytest.mark.parametrize("command", all_commands(), ids=lambda c: " ".join(c) or "hfharvest")
def test_every_command_has_help_with_an_example(command: list[str]) -> None:
    result = runner.invoke(app, [*command, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert "Example" in result.stdout


def test_fetch_help_documents_every_option_and_the_exit_codes() -> None:
    result = runner.invoke(app, ["fetch", "--help"], env={"COLUMNS": "200"})
    text = result.stdout
    for option in (
        "--sort",
        "--limit",
        "--page-size",
        "--search",
        "--author",
        "--filter",
        "--pipeline-tag",
        "--inference-provider",
        "--full",
        "--expand",
        "--type",
        "--endpoint",
        "--token",
        "--token-file",
        "--no-token",
        "--timeout",
        "--retries",
        "--max-wait",
        "--output",
        "--format",
        "--raw",
        "--quiet",
        "--debug",
    ):
        assert option in text, option
    assert text.count("Example:") >= 23
    assert "Exit codes" in text and "143" in text


@pytest.mark.slow
def test_installed_console_script_help() -> None:
    script = Path(sys.executable).with_name("hfharvest")
    result = subprocess.run([script, "--help"], capture_output=True, text=True, check=False)
    assert result.returncode == 0
    assert "fetch" in result.stdout and "schema" in result.stdout
    module = subprocess.run(
        [sys.executable, "-m", "hfharvest", "--version"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert module.stdout.startswith("hfharvest ")


def test_the_fetch_help_in_the_docs_is_the_real_one() -> None:
    """docs/usage.md shows `hfharvest fetch --help` at 100 columns: it must never drift."""
    docs = (Path(__file__).parent.parent / "docs" / "usage.md").read_text()
    shown = docs.split("<!-- fetch --help at 100 columns -->\n```text\n", 1)[1].split("```", 1)[0]
    result = runner.invoke(app, ["fetch", "--help"], env={"COLUMNS": "100", "TERM": "dumb"})
    assert result.exit_code == 0
    real = "\n".join(line.rstrip() for line in result.stdout.splitlines()).strip("\n") + "\n"
    assert shown == real


def test_fetch_help_groups_its_options_into_panels() -> None:
    text = runner.invoke(app, ["fetch", "--help"], env={"COLUMNS": "100"}).stdout
    panels = ["Query", "Fields and bounds", "Output", "Snapshots", "Network", "Auth"]
    found = [name for name in panels if f"─ {name} ─" in text]
    assert found == panels
    assert text.index("--min-downloads") > text.index("─ Fields and bounds ─")


def test_shell_completion_is_on() -> None:
    # typer finds the shell among the process's ancestors: run under bash (not exec'd into), so
    # the test holds where pytest has no shell above it (a cron job, a detached `make test`).
    command = '"$0" --show-completion; exit $?'
    result = subprocess.run(
        ["/bin/bash", "-c", command, Path(sys.executable).with_name("hfharvest")],
        capture_output=True,
        text=True,
        env={"SHELL": "/bin/bash", "PATH": "/usr/bin:/bin"},
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "_HFHARVEST_COMPLETE" in result.stdout


def process_state() -> dict[str, object]:
    return {
        "handlers": [signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)],
        "unraisablehook": sys.unraisablehook,
        "gc": (gc.get_threshold(), gc.get_freeze_count(), gc.isenabled()),
        "switch interval": sys.getswitchinterval(),
        "environment": dict(os.environ),
        "loggers": [
            (list(logger.handlers), logger.level, logger.propagate)
            for logger in map(logging.getLogger, ("hfharvest", "urllib3"))
        ],
    }


def test_the_command_line_in_process_leaves_the_process_as_it_was(
    hub: HubEmulator, capsys: pytest.CaptureFixture[str]
) -> None:
    """Only the console entry tunes the process and sets signal handlers: a program (or a test)
    that runs `cli.main` keeps its own, and its own SIGTERM handler is the one a signal reaches."""
    received: list[int] = []
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: received.append(signum))
    try:
        before = process_state()
        timer = threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGTERM))
        hub.latency = 0.1
        timer.start()
        code, out, _ = run_main(
            ["fetch", "--endpoint", hub.url, "--page-size", "100", "-q"], capsys
        )
        timer.join()
        assert code == 0 and len(out.splitlines()) == 3000
        assert received == [signal.SIGTERM]  # the host's handler, not ours
        assert process_state() == before
    finally:
        signal.signal(signal.SIGTERM, previous)


@pytest.mark.parametrize(
    ("given", "meant"),
    [
        ("like", "likes"),
        ("Likes", "likes"),
        ("download", "downloads"),
        ("LIKES", "likes"),
        ("Trending_Score", "trendingScore"),
        ("createdat", "createdAt"),
    ],
)
def test_a_sort_off_by_case_or_number_is_refused_before_any_request(
    hub: HubEmulator, given: str, meant: str
) -> None:
    result = fetch(hub, "--sort", given)
    assert result.exit_code == 2
    assert f"--sort {given!r} is not a sort the Hub knows: did you mean {meant}?" in result.stderr
    assert hub.requests_log == []


def test_an_unknown_sort_costs_one_request_and_its_400_names_the_closest(hub: HubEmulator) -> None:
    result = fetch(hub, "--sort", "trending")
    assert result.exit_code == 1 and len(hub.requests_log) == 1
    assert "did you mean trendingScore?" in said(result.stderr)[0]  # the warning
    assert said(result.stderr)[-1].startswith("hint: did you mean trendingScore? ")


def test_sorts_separated_by_commas_are_several(hub: HubEmulator) -> None:
    result = fetch(hub, "--sort", "likes,downloads", "--dry-run")
    assert [json.loads(line)["sort"] for line in result.stdout.splitlines()] == [
        "likes",
        "downloads",
    ]


TWICE = [
    (
        ["-o", "a.jsonl", "-o", "b.jsonl"],
        "--output takes one value, and was given 2: a.jsonl, b.jsonl",
    ),
    (["--endpoint", "http://127.0.0.1:9"], "--endpoint takes one value, and was given 2"),
    (["--limit", "5", "--limit", "6"], "--limit takes one N for every type, and was given 2: 5, 6"),
]


@pytest.mark.parametrize(("args", "words"), TWICE)
def test_an_option_of_one_value_given_twice_is_refused(
    hub: HubEmulator, capsys: pytest.CaptureFixture[str], args: list[str], words: str
) -> None:
    code, _, err = run_main(["fetch", "--endpoint", hub.url, *args], capsys)
    assert code == 2 and said(err)[0].startswith(f"hfharvest: error: {words}")
    assert hub.requests_log == []


def test_lines_in_a_log_begin_with_the_utc_time(hub: HubEmulator) -> None:
    result = fetch(hub, "--sort", "nonsense", "--limit", "1")
    stamped = [line for line in result.stderr.splitlines() if "hfharvest: " in line]
    assert stamped and all(
        re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ hfharvest: ", line) for line in stamped
    )


def test_a_quiet_day_of_a_bounded_job_is_no_warning_under_q(hub: HubEmulator) -> None:
    loud = fetch(hub, "--since", "2026-11-01")  # the emulator's present: nothing changed since
    assert loud.exit_code == 0
    assert "nothing since 2026-11-01T00:00:00.000Z (the walks returned" in loud.stderr
    assert "check the names" not in loud.stderr
    quiet = fetch(hub, "--since", "2026-11-01", "-q")
    assert quiet.exit_code == 0 and quiet.stderr == ""
    mistaken = fetch(hub, "--author", "nobody-here", "-q")
    assert "no models came back (--author nobody-here)" in mistaken.stderr  # may be a mistake
