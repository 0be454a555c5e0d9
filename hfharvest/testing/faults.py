"""Faults on demand: what the emulator does instead of (or to) a normal answer, and when.

A fault is written `KIND[:ARG][@WHEN]`, on the command line (`--fault`) or from Python
(`parse_fault`). WHEN is a comma list of request numbers (1-based, counting listing requests),
`*` for every request, `pN` for a random share N of requests (0 < N <= 1, seeded), or `/regex/`
on the request's path and query, optionally followed by `xN` to fire N times at most. Without
WHEN a fault fires on every request. KIND is one of `KINDS`.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field

KINDS = {
    "status": "ARG = an HTTP status, answered with a JSON error body and X-Error-Message",
    "html": "ARG = an HTTP status (default 502), answered with an HTML body",
    "retry-after": "429 with Retry-After: ARG seconds (default 1)",
    "retry-date": "429 with Retry-After as an HTTP-date ARG seconds ahead (default 1)",
    "ratelimit": "429 with only RateLimit: r=0;t=ARG (default 1)",
    "reset": "the connection is reset before any answer",
    "reset-body": "the headers and half the body are sent, then the connection is reset",
    "truncate": "Content-Length promises the whole body, half is sent, the connection closes",
    "slow": "the answer comes after ARG seconds (default 5): for read timeouts",
    "html200": "200 with an HTML body",
    "empty200": "200 with an empty body",
    "error200": "200 with a JSON object {'error': ...}",
    "badjson200": "200 with a body shaped like a JSON array that does not parse (trailing commas)",
    "junk": "the page also holds ARG entries that are not objects or have no id (default 2)",
    "loop": "the Link header names the page just served",
    "relative": "the Link header is a relative URL",
    "link-away": "the Link header names another origin",
    "redirect": "a redirect (ARG = 301, 302, 307 or 308; default 302) to the same page",
    "redirect-away": "a 302 redirect to another origin",
    "huge": "the page's entries are padded to about ARG MB in all (default 50)",
    "rel-multi": 'the Link\'s rel holds several values: rel="prev next" (RFC 8288)',
    "rel-case": 'the Link\'s rel in capitals: rel="NEXT"',
    "two-next": "two Link headers naming two different next pages",
    "token-link": "the next link carries the request's token as a query parameter",
    "empty-next": "an empty page, with a new next link every time",
    "echo-token": "400 whose X-Error-Message echoes the request's Authorization header",
    "retry-odd": "429 with a Retry-After that is no number in ASCII digits ('\u00b2')",
    "trickle": "the body is sent one byte every ARG seconds (default 1)",
    "gzip-bomb": "a gzip body that inflates to ARG MB (default 300)",
    "bad-gzip": "Content-Encoding: gzip on a body that is not",
    "huge-int": "the page's first entry has likes = 2**70",
    "out-of-range": "the page's first entry has gguf.context_length = 2**63 + 1 and "
    "safetensors.total = 2**64, its second likes = 1e400",
    "token-entry": "the page's first entry has an id that carries the request's token",
    "gzip-empties": "a gzip body of empty objects [{},{},...] inflating to ARG MB (default 100)",
    "trickle-headers": "the status line and headers come a byte every ARG seconds (default 1)",
    "http09": "an answer with no status line or headers: the body alone, as HTTP/0.9",
    "long-header": "a header line of 70,000 bytes",
    "nonce-next": "the same page again and again, each with a fresh cursor (an endless listing)",
    "ratelimit200": "a 200 whose RateLimit says the budget is spent for ARG seconds (default 1)",
    "link-spaces": "the Link header names the same cursor on /api/spaces",
    "mix": "one transient fault drawn at random each time (5xx, HTML, 429 of each form, "
    "resets, cut bodies, HTML/empty 200s, slow answers of ARG s, default 0.5): for soaks",
}
# What `mix` draws from: every fault a client must get through by retrying, with its ARG.
TRANSIENT = (
    ("status", 500.0),
    ("status", 502.0),
    ("status", 503.0),
    ("status", 504.0),
    ("status", 408.0),
    ("html", 502.0),
    ("retry-after", 0.0),
    ("retry-date", 0.0),
    ("ratelimit", 0.0),
    ("reset", None),
    ("reset-body", None),
    ("truncate", None),
    ("html200", None),
    ("empty200", None),
    ("slow", None),
)
_SPEC = re.compile(r"(?P<kind>[a-z0-9-]+)(?::(?P<arg>[0-9.]+))?(?:@(?P<when>.+))?")
_REGEX_WHEN = re.compile(r"/(?P<pattern>.*)/(?:x(?P<times>\d+))?")


@dataclass
class Fault:
    """One fault: what to do (`kind`, `arg`) and on which requests."""

    kind: str
    arg: float | None = None
    requests: frozenset[int] | None = None
    pattern: re.Pattern[str] | None = None
    probability: float | None = None
    times: int | None = None
    fired: int = 0
    _rng: random.Random = field(default_factory=lambda: random.Random(0), repr=False)

    def applies(self, number: int, target: str) -> bool:
        """Whether this fault fires on request `number` for `target` (path?query); counts it."""
        if self.times is not None and self.fired >= self.times:
            return False
        if self.requests is not None and number not in self.requests:
            return False
        if self.pattern is not None and not self.pattern.search(target):
            return False
        if self.probability is not None and self._rng.random() >= self.probability:
            return False
        self.fired += 1
        return True

    def arg_or(self, default: float) -> float:
        return default if self.arg is None else self.arg

    def concrete(self) -> Fault:
        """For `mix`, the fault drawn this time; any other fault is itself."""
        if self.kind != "mix":
            return self
        kind, arg = TRANSIENT[int(self._rng.random() * len(TRANSIENT))]
        return Fault(kind=kind, arg=self.arg_or(0.5) if kind == "slow" else arg)


def parse_fault(spec: str, seed: int = 0) -> Fault:
    """Read `KIND[:ARG][@WHEN]`; raise ValueError with the accepted forms when it does not fit."""
    match = _SPEC.fullmatch(spec.strip())
    kind: str = match.group("kind") if match else ""
    arg: str | None = match.group("arg") if match else None
    if kind.isdigit():
        kind, arg = "status", kind
    if match is None or kind not in KINDS:
        raise ValueError(
            f"unknown fault {spec!r}: KIND[:ARG][@WHEN], KIND one of {', '.join(KINDS)}"
        )
    fault = Fault(kind=kind, arg=float(arg) if arg else None, _rng=random.Random(seed))
    when = match.group("when")
    if when is None or when == "*":
        return fault
    if when.startswith("p"):
        fault.probability = float(when[1:])
        return fault
    regex = _REGEX_WHEN.fullmatch(when)
    if regex:
        fault.pattern = re.compile(regex.group("pattern"))
        fault.times = int(regex.group("times")) if regex.group("times") else None
        return fault
    try:
        fault.requests = frozenset(int(n) for n in when.split(","))
    except ValueError:
        raise ValueError(f"fault {spec!r}: WHEN is N[,N...], *, pN or /regex/[xN]") from None
    return fault
