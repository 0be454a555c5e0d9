"""Manifests and stats files: what a run did, for the cron job that keeps the snapshot.

The manifest (`<output>.manifest.json`, or `--manifest PATH`) is written after the data file is in
place: tool version, endpoint, every request parameter (never the token), start and end times,
per-sort stats, the status and the sha256 of the bytes on disk. `--stats-json` is written on every
exit, failures included, with the exit code: it is for monitoring.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson

from hfharvest import __version__
from hfharvest.output import Written, atomic_file
from hfharvest.settings import Settings
from hfharvest.walks import Tally


@dataclass
class Ledger:
    """Filled in as a run goes, so that whatever way it ends there is something to report."""

    started: datetime
    ended: datetime | None = None
    result: Tally | None = None
    written: Written | None = None
    resumed: bool = False

    @property
    def status(self) -> str:
        if self.result is None or self.written is None:
            return "failed"
        return "partial" if self.result.failed else "complete"


def _stamp(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _sorts(result: Tally | None) -> list[dict[str, Any]]:
    return [dataclasses.asdict(stats) for stats in result.stats] if result else []


def build_manifest(settings: Settings, ledger: Ledger) -> dict[str, Any]:
    written = ledger.written
    result = ledger.result
    return {
        "tool": "hfharvest",
        "version": __version__,
        "endpoint": settings.transport.endpoint,
        "type": settings.query.repo_type,
        "request": {
            **{k: v for k, v in settings.job().items() if k not in ("endpoint", "repo_type")},
            "bounds": dataclasses.asdict(settings.bounds),
            # besides _id and id, as `expand` names them; with the fields the bounds read
            "fields": list(settings.sent.fields),
            "queries": {s: urlsplit(settings.first_url(s)).query for s in settings.query.sorts},
            "authenticated": settings.transport.token is not None,
        },
        "started": _stamp(ledger.started),
        "ended": _stamp(ledger.ended),
        "resumed": ledger.resumed,
        "status": ledger.status,
        "failed": {s.sort: s.error for s in result.failed} if result else {},
        "sorts": _sorts(result),
        "unique": result.unique if result else None,
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
    settings: Settings | None, ledger: Ledger, exit_code: int, error: str | None
) -> dict[str, Any]:
    result = ledger.result
    return {
        "tool": "hfharvest",
        "version": __version__,
        "exit_code": exit_code,
        "status": ledger.status if exit_code in (0, 3) else "failed",
        "error": error,
        "endpoint": settings.transport.endpoint if settings else None,
        "type": settings.query.repo_type if settings else None,
        "started": _stamp(ledger.started),
        "ended": _stamp(ledger.ended or datetime.now(UTC)),
        "sorts": _sorts(result),
        "unique": result.unique if result else None,
        "records_written": ledger.written.records if ledger.written else 0,
    }


def write_json(path: Path, document: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(path) as stream:
        stream.write(orjson.dumps(document, option=orjson.OPT_INDENT_2) + b"\n")
