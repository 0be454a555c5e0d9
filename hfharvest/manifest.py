"""Manifests and stats files: what a run did, for the cron job that keeps the snapshot.

The manifest (`<output>.manifest`, or `--manifest PATH`) is written after the data file is in
place: tool version, endpoint, every request parameter (never the token), start and end times,
per-sort stats, the status and the sha256 of the bytes on disk. `--stats-json` is written on every
exit, failures included, with the exit code: it is for monitoring.
"""

from __future__ import annotations

import contextlib
import dataclasses
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson

from hfharvest.errors import ExitCode, SideFileError
from hfharvest.outcome import Outcome
from hfharvest.schema import RECORD_SCHEMA_VERSION
from hfharvest.settings import Settings
from hfharvest.sinks.files import atomic_file
from hfharvest.sinks.target import MANIFEST_SUFFIX, OLD_MANIFEST_SUFFIX, beside
from hfharvest.version import __version__


@dataclass(frozen=True)
class Snapshot:
    """A complete snapshot on disk and the manifest that describes it."""

    data: Path
    manifest: Path
    document: dict[str, Any]
    ended: datetime

    def age(self, now: datetime) -> float:
        """Seconds since its run ended (never less than 0: a clock set back is no future)."""
        return max(0.0, (now - self.ended).total_seconds())

    @property
    def sha256(self) -> str | None:
        digest = self.document["output"].get("sha256")
        return digest if isinstance(digest, str) else None


def _stamp(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _request(settings: Settings) -> dict[str, Any]:
    """What was asked, as the manifest says it (never the token: only whether one was sent)."""
    return {
        **{k: v for k, v in settings.job().items() if k not in ("endpoint", "repo_type")},
        "bounds": dataclasses.asdict(settings.bounds),
        # besides _id and id, as `expand` names them; with the fields the bounds read
        "fields": list(settings.sent.fields),
        "queries": {s: urlsplit(settings.first_url(s)).query for s in settings.query.sorts},
        "authenticated": settings.transport.token is not None,
        "max_pages": settings.max_pages,
        "max_time": settings.max_time,
    }


def _asked(endpoint: Any, repo_type: Any, schema: Any, request: Any) -> bytes:
    """A request in one comparable form. Whether a token was sent is left out: a new token
    (or none) asks the same question."""
    unsigned = {k: v for k, v in request.items() if k != "authenticated"}
    return orjson.dumps([endpoint, repo_type, schema, unsigned], option=orjson.OPT_SORT_KEYS)


def made_by(document: dict[str, Any], settings: Settings) -> bool:
    """Whether a manifest says that the request of `settings` made its snapshot."""
    request = document.get("request")
    if not isinstance(request, dict):
        return False
    found = _asked(
        document.get("endpoint"), document.get("type"), document.get("record_schema"), request
    )
    asked = _asked(
        settings.transport.endpoint,
        settings.query.repo_type,
        RECORD_SCHEMA_VERSION,
        _request(settings),
    )
    return found == asked


def build_manifest(settings: Settings, outcome: Outcome) -> dict[str, Any]:
    written = outcome.written
    return {
        "tool": "hfharvest",
        "version": __version__,
        "record_schema": RECORD_SCHEMA_VERSION,
        "endpoint": settings.transport.endpoint,
        "type": settings.query.repo_type,
        "request": _request(settings),
        "started": _stamp(settings.started),
        "ended": _stamp(outcome.ended),
        "resumed": outcome.resumed,
        "pages_before": outcome.pages_before,
        "status": outcome.status,
        "failed": {s.sort: s.error for s in outcome.failed},
        "sorts": outcome.sorts(),
        "unique": outcome.unique,
        "empty": outcome.unique == 0,
        "output": {
            "path": str(written.path) if written and written.path else "-",
            "format": settings.output.format,
            "gzip": settings.output.gzip,
            "sha256": written.sha256 if written else None,
            "bytes": written.bytes if written else None,
            "records": written.records if written else None,
        },
    }


def build_stats(
    settings: Settings | None,
    outcome: Outcome | None,
    exit_code: int,
    error: str | None,
    started: datetime,
    *,
    fresh: Snapshot | None = None,
) -> dict[str, Any]:
    """The `--stats-json` document, for any way the run ended (`outcome` None: before walks).
    A run a signal stopped once its data file was in place is `interrupted`, with the records
    it wrote; one that `fresh_for` made needless is `fresh`, with the snapshot that was."""
    complete = outcome is not None and exit_code in (ExitCode.COMPLETE, ExitCode.PARTIAL)
    signalled = exit_code in (ExitCode.SIGINT, ExitCode.SIGTERM)
    written = outcome is not None and outcome.written is not None
    status = (
        outcome.status
        if complete and outcome
        else "interrupted"
        if signalled and written
        else "fresh"
        if fresh is not None and exit_code == ExitCode.COMPLETE
        else "failed"
    )
    now = datetime.now(UTC)
    skipped = (
        None
        if fresh is None
        else {
            "output": str(fresh.data),
            "manifest": str(fresh.manifest),
            "ended": _stamp(fresh.ended),
            "age_seconds": round(fresh.age(now), 3),
            "fresh_for": settings.fresh_for if settings else None,
        }
    )
    return {
        **_run_said(exit_code, status, error),
        "endpoint": settings.transport.endpoint if settings else None,
        "type": settings.query.repo_type if settings else None,
        "started": _stamp(settings.started if settings else started),
        "ended": _stamp(outcome.ended if outcome and outcome.ended else now),
        "sorts": outcome.sorts() if outcome else [],
        "unique": outcome.unique if outcome else None,
        "records_written": outcome.written.records if outcome and outcome.written else 0,
        "max_pages": settings.max_pages if settings else None,
        "max_time": settings.max_time if settings else None,
        "fresh": skipped,
    }


def _run_said(exit_code: int, status: str, error: str | None) -> dict[str, Any]:
    """What every `--stats-json` document begins with: who wrote it, and how the run ended."""
    return {
        "tool": "hfharvest",
        "version": __version__,
        "exit_code": exit_code,
        "status": status,
        "error": error,
    }


def several_stats(
    entries: list[dict[str, Any]], exit_code: int, error: str | None, started: datetime
) -> dict[str, Any]:
    """The `--stats-json` document of a run of several types: the run's exit code, status and
    error, and per type the one-type document (`build_stats`) under `types`."""
    statuses = {entry["status"] for entry in entries}
    if exit_code == ExitCode.COMPLETE:
        status = "fresh" if statuses == {"fresh"} else "complete"
    elif exit_code == ExitCode.PARTIAL:
        status = "partial"
    else:
        status = "interrupted" if "interrupted" in statuses else "failed"
    return {
        **_run_said(exit_code, status, error),
        "started": _stamp(started),
        "ended": _stamp(datetime.now(UTC)),
        "types": entries,
    }


def drop_old_manifest(settings: Settings) -> None:
    """The manifest under its name of before 0.2 (`<output>.manifest.json`), beside the file
    just written, describes a file that is gone: removed, so no reader trusts it."""
    path = settings.output.path
    if path is None or settings.manifest != beside(path, MANIFEST_SUFFIX):
        return
    with contextlib.suppress(FileNotFoundError):
        beside(path, OLD_MANIFEST_SUFFIX).unlink()


def write_json(path: Path, document: dict[str, Any]) -> None:
    """A side file, written once the data is in place: a failure is a `SideFileError`."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_file(path) as stream:
            stream.write(orjson.dumps(document, option=orjson.OPT_INDENT_2) + b"\n")
    except OSError as exc:
        raise SideFileError(path, exc) from exc
