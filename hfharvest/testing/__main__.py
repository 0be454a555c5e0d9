"""`python -m hfharvest.testing`: run the offline Hub emulator from a shell.

The first line on stdout is the base URL (then use it as `--endpoint` or `HF_ENDPOINT`); the
emulator runs until interrupted. Example:

    python -m hfharvest.testing --port 0 --fault 503@2 --quota 50 --window 10
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import os
import signal
import sys
import threading
from typing import NoReturn

from hfharvest.hub import REPO_TYPES, SORTS
from hfharvest.testing.catalog import make_catalog
from hfharvest.testing.faults import KINDS, parse_fault
from hfharvest.testing.server import HubEmulator


class _Parser(argparse.ArgumentParser):
    """argparse, with its errors in one line (`PROG: error: ...`) and exit 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def _parser(prog: str) -> argparse.ArgumentParser:
    kinds = "\n".join(f"  {name:<14} {text}" for name, text in KINDS.items())
    parser = _Parser(
        prog=prog,
        description="Serve a synthetic Hub listing API on 127.0.0.1 (offline, deterministic). "
        "The first line on stdout is its URL: pass it as --endpoint or HF_ENDPOINT.",
        epilog=f"fault kinds (--fault KIND[:ARG][@WHEN], WHEN = N[,N..] | * | pSHARE | "
        f"/regex/[xN]):\n{kinds}\n\nExample: {prog} --port 8080 "
        "--fault 503@2 --fault retry-after:1@/cursor/x1",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add = parser.add_argument
    add("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    add("--port", type=int, default=0, help="port; 0 picks a free one (default 0)")
    add("--models", type=int, default=3000, help="models in the catalog (default 3000)")
    add("--datasets", type=int, default=500, help="datasets (default 500)")
    add("--spaces", type=int, default=500, help="spaces (default 500)")
    add(
        "--hf-inference",
        type=int,
        default=None,
        help="models served by hf-inference (default 1377 of 3000; as many of more, the same "
        "share of fewer)",
    )
    add("--seed", type=int, default=2073, help="catalog seed (default 2073)")
    add("--quota", type=int, default=None, help="requests per window, then 429 (default none)")
    add("--window", type=float, default=300.0, help="rate-limit window in seconds (default 300)")
    add("--token", action="append", default=[], help="an accepted token; others get 401")
    add("--latency", type=float, default=0.0, help="seconds added to every answer")
    add("--drift", type=int, default=0, help="models whose likes/downloads move per page")
    add("--fault", action="append", default=[], metavar="SPEC", help="a fault (repeatable)")
    add(
        "--deep-timeout",
        default=None,
        metavar="DEPTH:SIZE",
        help="pages deeper than DEPTH entries and bigger than SIZE answer 504 (the Hub's deep "
        "timeouts, as reported)",
    )
    add(
        "--mapping-form",
        choices=("list", "object"),
        default="list",
        help="inferenceProviderMapping as a list (newer answers) or keyed by provider (older)",
    )
    add(
        "--extra-sort",
        action="append",
        default=[],
        metavar="NAME=AS",
        help="a sort this Hub knows beyond hfharvest's, ordered as a known one (repeatable): "
        "rehearse a sort the Hub adds, e.g. --extra-sort likes7d=likes",
    )
    return parser


def _checked(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """What no catalog or socket can be: said in one line before anything is made."""
    if not 0 <= args.port <= 65535:
        parser.error(f"--port {args.port}: a port is 0 (any free one) to 65535")
    for name in (*(f"{repo_type}s" for repo_type in REPO_TYPES), "drift"):
        if getattr(args, name) < 0:
            parser.error(f"--{name} {getattr(args, name)}: a count is 0 or more")
    if args.hf_inference is not None and not 0 <= args.hf_inference <= args.models:
        parser.error(f"--hf-inference {args.hf_inference}: 0 to --models ({args.models})")
    if args.quota is not None and args.quota < 1:
        parser.error(f"--quota {args.quota}: at least 1 request a window")
    if args.window <= 0 or args.latency < 0:
        parser.error("--window must be more than 0 seconds, --latency 0 or more")


def _extra_sorts(parser: argparse.ArgumentParser, specs: list[str]) -> dict[str, str]:
    extra = {}
    for spec in specs:
        name, _, known = spec.partition("=")
        if not name or known not in SORTS:
            parser.error(f"--extra-sort {spec!r}: NAME=AS, AS one of {', '.join(SORTS)}")
        extra[name] = known
    return extra


def _deep(parser: argparse.ArgumentParser, text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    depth, _, size = text.partition(":")
    if not (depth.isdigit() and size.isdigit()):
        parser.error(f"--deep-timeout {text!r}: DEPTH:SIZE, two counts of entries")
    return int(depth), int(size)


def main(argv: list[str] | None = None, prog: str = "python -m hfharvest.testing") -> None:
    parser = _parser(prog)
    args = parser.parse_args(argv)
    _checked(parser, args)
    try:
        faults = [parse_fault(spec, seed=args.seed) for spec in args.fault]
    except ValueError as exc:
        parser.error(str(exc))
    extra_sorts = _extra_sorts(parser, args.extra_sort)
    deep_timeout = _deep(parser, args.deep_timeout)
    catalog = make_catalog(
        args.models, args.datasets, args.spaces, hf_inference=args.hf_inference, seed=args.seed
    )
    try:
        emulator = HubEmulator(
            catalog,
            host=args.host,
            port=args.port,
            quota=args.quota,
            window=args.window,
            tokens=args.token,
            latency=args.latency,
            drift=args.drift,
            faults=faults,
            mapping_form=args.mapping_form,
            deep_timeout=deep_timeout,
            extra_sorts=extra_sorts,
        )
    except OSError as exc:
        busy = exc.errno == errno.EADDRINUSE
        why = (
            "is in use (an emulator already running?)"
            if busy
            else f"cannot be used: {exc.strerror}"
        )
        parser.error(f"{args.host}:{args.port} {why}; pick another with --port (0: any free one)")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with emulator:
        print(emulator.url, flush=True)
        print(
            f"serving {len(catalog.repos['model'])} models (process {os.getpid()}); stop it with "
            f"Ctrl-C, or `kill {os.getpid()}` when it runs in the background",
            file=sys.stderr,
        )
        with contextlib.suppress(KeyboardInterrupt):
            stop.wait()


if __name__ == "__main__":
    main()
