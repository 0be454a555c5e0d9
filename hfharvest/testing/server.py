"""HubEmulator: the catalog served over real HTTP on 127.0.0.1, with the Hub's manners and faults.

Every answer carries `RateLimit` and `RateLimit-Policy`; an optional quota per fixed window
(the first window opens at the first request) answers 429 past it; an optional set of accepted
tokens answers 401 to any other; errors carry `X-Error-Message` and a JSON `error`. Faults,
latency and live drift (likes and downloads moving between pages) come on demand. Each listing
request is logged (number, path, query, whether a token came, status, fault), readable from
Python (`requests_log`) or over HTTP at `/_emulator/requests`.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import math
import random
import socket
import struct
import sys
import threading
import time
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import orjson

from hfharvest.hub import REPO_TYPES
from hfharvest.testing.catalog import Catalog, Repo, make_catalog
from hfharvest.testing.faults import Fault, parse_fault
from hfharvest.testing.listing import ListingError, parse_query, run_query

LISTINGS = {f"/api/{repo_type}s": repo_type for repo_type in REPO_TYPES}
AWAY = "http://elsewhere.invalid:8080"  # an origin no test can reach: where hostile links point
UNLIMITED_QUOTA = 1_000_000


@dataclass(frozen=True)
class LoggedRequest:
    number: int
    path: str
    query: str
    token: bool
    status: int
    fault: str | None


class _Answer:
    """What to send: status, headers, body; `cut` sends only part of the body (a fault)."""

    def __init__(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.status = status
        self.body = body
        self.headers = {"Content-Type": "application/json; charset=utf-8", **(headers or {})}
        self.cut: str | None = None  # "reset", "reset-body", "truncate" or "trickle"
        self.more_headers: list[tuple[str, str]] = []  # a header given twice (two Links)
        self.trickle = 0.0


def _keyed_by_provider(entry: Repo) -> Repo:
    mapping = entry.get("inferenceProviderMapping")
    if mapping is None:
        return entry
    keyed = {m["provider"]: {k: v for k, v in m.items() if k != "provider"} for m in mapping}
    return {**entry, "inferenceProviderMapping": keyed}


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> _Answer:
    body = orjson.dumps({"error": message})
    return _Answer(status, body, {"X-Error-Message": message, **(headers or {})})


class _RateWindow:
    """A fixed window of `window` seconds holding `quota` requests; opens at the first request."""

    def __init__(self, quota: int | None, window: float) -> None:
        self.quota = quota
        self.window = window
        self._start: float | None = None
        self._index = -1
        self._used = 0

    def take(self) -> tuple[bool, dict[str, str]]:
        now = time.monotonic()
        if self._start is None:
            self._start = now
        index = int((now - self._start) // self.window)
        if index != self._index:
            self._index, self._used = index, 0
        quota = self.quota if self.quota is not None else UNLIMITED_QUOTA
        allowed = self._used < quota
        self._used += allowed
        reset = int(self._start + (index + 1) * self.window - now)  # rounded down, as the Hub does
        headers = {
            "RateLimit": f'"api";r={quota - self._used};t={reset}',
            "RateLimit-Policy": f'"fixed window";"api";q={quota};w={int(self.window)}',
        }
        return allowed, headers


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients that hang up (a timeout under test, a reset on purpose) are not news."""
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)


class HubEmulator:
    """The emulated Hub. Use as a context manager, or `start()` / `stop()`."""

    def __init__(
        self,
        catalog: Catalog | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        quota: int | None = None,
        window: float = 300.0,
        tokens: Iterable[str] = (),
        latency: float = 0.0,
        drift: int = 0,
        faults: Iterable[Fault | str] = (),
        seed: int = 0,
        away: str = AWAY,
        mapping_form: str = "list",
        deep_timeout: tuple[int, int] | None = None,
        extra_sorts: Mapping[str, str] | None = None,
    ) -> None:
        self.catalog = catalog if catalog is not None else make_catalog()
        # (depth, size): pages deeper than `depth` entries and bigger than `size` answer 504
        self.deep_timeout = deep_timeout
        self.extra_sorts = dict(extra_sorts or {})  # sorts a newer Hub knows: name -> ordered as
        self.tokens = frozenset(tokens)
        self.latency = latency
        self.drift = drift
        self.faults: list[Fault] = [parse_fault(f) if isinstance(f, str) else f for f in faults]
        self.requests_log: list[LoggedRequest] = []
        self.away = away  # where hostile links and redirects point: another origin
        if mapping_form not in ("list", "object"):
            raise ValueError(f"mapping_form must be list or object, not {mapping_form!r}")
        # inferenceProviderMapping as a list of {provider, ...} (newer answers) or as an object
        # keyed by provider (older ones): the Hub has served both.
        self.mapping_form = mapping_form
        self.drifted: set[str] = set()  # ids whose likes or downloads moved during drift
        self._rates = _RateWindow(quota, window)
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._server = _Server((host, port), _make_handler(self))
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> HubEmulator:
        # A short poll interval: stop() returns within 50 ms instead of half a second.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join()

    def __enter__(self) -> HubEmulator:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def add_fault(self, fault: Fault | str) -> Fault:
        parsed = parse_fault(fault) if isinstance(fault, str) else fault
        with self._lock:
            self.faults.append(parsed)
        return parsed

    def log_json(self) -> bytes:
        return orjson.dumps([asdict(entry) for entry in self.requests_log])

    # -- deciding an answer ---------------------------------------------------------------

    def answer(self, path: str, query: str, authorization: str | None, base: str) -> _Answer:
        """Decide the answer to one listing request (no I/O besides the latency sleep)."""
        with self._lock:
            number = len(self.requests_log) + 1
            target = f"{path}?{query}"
            fault = next((f for f in self.faults if f.applies(number, target)), None)
            fault = fault.concrete() if fault is not None else None
            answer = self._answer(path, query, authorization, base, fault, number)
            token = bool(authorization)
            self.requests_log.append(
                LoggedRequest(
                    number, path, query, token, answer.status, fault.kind if fault else None
                )
            )
        if self.latency:
            time.sleep(self.latency)
        if fault is not None and fault.kind == "slow":
            time.sleep(fault.arg_or(5))
        return answer

    def _answer(
        self,
        path: str,
        query: str,
        authorization: str | None,
        base: str,
        fault: Fault | None,
        number: int,
    ) -> _Answer:
        allowed, rate_headers = self._rates.take()
        early = self._early_fault(fault, path, query)
        if early is not None:
            early.headers = {**rate_headers, **early.headers}  # a fault's own RateLimit wins
            return early
        if not allowed:
            return _error(429, "You have exceeded our rate limit", rate_headers)
        if self._token_refused(authorization):
            return _error(401, "Invalid credentials in Authorization header", rate_headers)
        if self.drift and number > 1:
            models = self.catalog.repos["model"]
            moving = self._rng.sample(models, min(self.drift, len(models)))
            self.catalog.mutate("model", moving, self._move)
        if fault is not None and fault.kind == "echo-token":
            return _error(400, f"bad credentials: {authorization}", rate_headers)
        answer = self._listing(path, query, base, fault)
        answer.headers.update(rate_headers)
        if fault is not None and fault.kind == "token-link" and "Link" in answer.headers:
            token = (authorization or "").removeprefix("Bearer ")
            answer.headers["Link"] = answer.headers["Link"].replace(">;", f"&token={token}>;")
        if fault is not None and fault.kind == "ratelimit200":
            answer.headers["RateLimit"] = f'"api";r=0;t={int(fault.arg_or(1))}'
        if fault is not None and fault.kind == "token-entry":
            token = (authorization or "").removeprefix("Bearer ")
            page = orjson.loads(answer.body)
            page[0] = {**page[0], "id": f"echo/{token}"}
            answer.body = orjson.dumps(page)
        return answer

    def _token_refused(self, authorization: str | None) -> bool:
        if authorization is None or not self.tokens:
            return False  # anonymous requests are served; so is any token when none is set
        return authorization.removeprefix("Bearer ") not in self.tokens

    def _early_fault(self, fault: Fault | None, path: str, query: str) -> _Answer | None:
        """The faults that replace the answer altogether."""
        if fault is None:
            return None
        kind, arg = fault.kind, fault.arg
        if kind == "status":
            status = int(arg or 500)
            return _error(status, f"emulated failure {status}")
        if kind == "html":
            page = b"<!DOCTYPE html><html><body><h1>502 Bad Gateway</h1></body></html>"
            return _Answer(int(arg or 502), page, {"Content-Type": "text/html"})
        if kind == "retry-after":
            return _error(429, "Too many requests", {"Retry-After": str(int(fault.arg_or(1)))})
        if kind == "retry-date":
            when = formatdate(time.time() + fault.arg_or(1) + 1, usegmt=True)
            return _error(429, "Too many requests", {"Retry-After": when})
        if kind == "ratelimit":
            return _error(
                429, "Too many requests", {"RateLimit": f'"api";r=0;t={int(fault.arg_or(1))}'}
            )
        if kind == "retry-odd":
            return _error(429, "Too many requests", {"Retry-After": "\u00b2"})
        if kind == "reset":
            reset = _Answer(0, b"")
            reset.cut = "reset"
            return reset
        if kind == "html200":
            return _Answer(
                200,
                b"<!DOCTYPE html><html><body>Loading...</body></html>",
                {"Content-Type": "text/html"},
            )
        if kind == "empty200":
            return _Answer(200, b"")
        if kind == "badjson200":
            return _Answer(200, b'[{"_id":"x","id":"a/b",},]')
        if kind == "error200":
            return _Answer(200, orjson.dumps({"error": "emulated error in a 200 answer"}))
        if kind in ("http09", "long-header", "trickle-headers"):
            raw = _Answer(200, b'[{"_id":"x","id":"a/b"}]', {"X-Long": "x" * 70_000})
            raw.cut, raw.trickle = kind, fault.arg_or(1.0)
            return raw
        if kind in ("redirect", "redirect-away"):
            status = int(arg or 302) if kind == "redirect" else 302
            origin = self.away if kind == "redirect-away" else ""
            return _Answer(status, b"", {"Location": f"{origin}{path}?{query}"})
        return None

    def _listing(self, path: str, query: str, base: str, fault: Fault | None) -> _Answer:
        repo_type = LISTINGS.get(path)
        if repo_type is None:
            return _error(404, f"Sorry, we can't find the page you are looking for: {path}")
        params = parse_qsl(query, keep_blank_values=True)
        if fault is not None and fault.kind in ("nonce-next", "empty-next"):  # the first again
            params = [(name, value) for name, value in params if name != "cursor"]
        try:
            listing = parse_query(repo_type, params, self.extra_sorts)
            entries, cursor = run_query(self.catalog, listing, self.deep_timeout)
        except ListingError as exc:
            return _error(exc.status, exc.message)
        page: list[Any] = [] if fault is not None and fault.kind == "empty-next" else list(entries)
        if fault is not None and fault.kind == "nonce-next":
            cursor = f"nonce-{len(self.requests_log)}"  # a fresh cursor over the same entries
        if self.mapping_form == "object":
            page = [_keyed_by_provider(entry) for entry in page]
        if fault is not None and fault.kind == "junk":
            page[1:1] = ["not an object", {"likes": 3}, 42, {"id": ""}][: int(fault.arg_or(2))]
        if fault is not None and fault.kind == "huge" and page:
            padding = "x" * int(fault.arg_or(50) * 1_000_000 / len(page))
            page = [{**entry, "padding": padding} for entry in page]
        answer = _Answer(200, _body(page, fault))
        link = self._link(path, params, cursor, base, fault)
        if link:
            answer.headers["Link"] = f'<{link}>; rel="next"'
        _hostile_links(answer, link, fault)
        if fault is not None and fault.kind in ("trickle", "gzip-bomb", "bad-gzip", "gzip-empties"):
            _hostile_body(answer, fault)
        if fault is not None and fault.kind in ("reset-body", "truncate"):
            answer.cut = fault.kind
        return answer

    def _link(
        self,
        path: str,
        params: list[tuple[str, str]],
        cursor: str | None,
        base: str,
        fault: Fault | None,
    ) -> str | None:
        kind = fault.kind if fault else None
        if kind == "loop":
            return f"{base}{path}?{urlencode(params)}"
        if kind == "link-spaces" and cursor is not None:
            query = urlencode([(k, v) for k, v in params if k != "cursor"] + [("cursor", cursor)])
            return f"{base}/api/spaces?{query}"
        if kind == "empty-next":  # a new cursor every time: no loop to see
            fresh = [(k, v) for k, v in params if k != "cursor"]
            return (
                f"{base}{path}?{urlencode([*fresh, ('cursor', f'empty-{len(self.requests_log)}')])}"
            )
        if cursor is None:
            return None
        query = urlencode([(k, v) for k, v in params if k != "cursor"] + [("cursor", cursor)])
        if kind == "relative":
            return f"{path}?{query}"
        return f"{self.away if kind == 'link-away' else base}{path}?{query}"

    def _move(self, repo: Repo) -> None:
        """Live data: a model gains or loses likes and downloads between two pages."""
        self.drifted.add(repo["id"])
        repo["likes"] = max(0, repo["likes"] + self._rng.randint(-3, 40))
        # Around the model's own downloads, not compounding: a long drifting walk stays plausible.
        if "_downloads" not in repo:
            repo["_downloads"] = repo["downloads"]
        repo["downloads"] = max(0, int(repo["_downloads"] * self._rng.uniform(0.5, 3.0)))


def _body(page: list[Any], fault: Fault | None) -> bytes:
    if fault is not None and fault.kind == "huge-int" and page:
        page[0] = {**page[0], "likes": 2**70}
        return json.dumps(page).encode()  # orjson writes no integer past 64 bits
    if fault is not None and fault.kind == "out-of-range" and len(page) > 1:
        gguf = {**(page[0].get("gguf") or {}), "context_length": 2**63 + 1}
        page[0] = {**page[0], "gguf": gguf, "safetensors": {"total": 2**64}}
        page[1] = {**page[1], "likes": math.inf}
        return json.dumps(page).encode().replace(b"Infinity", b"1e400")  # as JSON writes it
    return orjson.dumps(page)


def _hostile_links(answer: _Answer, link: str | None, fault: Fault | None) -> None:
    """Links a hostile or unusual server may send: several rels, capitals, two next pages."""
    if link is None or fault is None:
        return
    if fault.kind == "rel-multi":
        answer.headers["Link"] = f'<{link}>; rel="prev next"'
    elif fault.kind == "rel-case":
        answer.headers["Link"] = f'<{link}>; rel="NEXT"'
    elif fault.kind == "two-next":
        answer.more_headers.append(("Link", f'<{link}&also=1>; rel="next"'))


def _hostile_body(answer: _Answer, fault: Fault) -> None:
    if fault.kind == "trickle":
        answer.cut, answer.trickle = "trickle", fault.arg_or(1.0)
    elif fault.kind == "gzip-empties":
        answer.body = _gzip_of_empties(int(fault.arg_or(100) * 1_000_000))
        answer.headers["Content-Encoding"] = "gzip"
    elif fault.kind == "gzip-bomb":
        megabytes = int(fault.arg_or(300))
        inflated = b'[{"id":"a/b","pad":"' + b"0" * (megabytes * 1_000_000) + b'"}]'
        answer.body = gzip.compress(inflated, compresslevel=1)
        answer.headers["Content-Encoding"] = "gzip"
    else:  # bad-gzip
        answer.headers["Content-Encoding"] = "gzip"


def _gzip_of_empties(size: int) -> bytes:
    """`[{},{},...,{}]` of about `size` bytes, gzipped piece by piece (never held inflated)."""
    piece = b"{}," * 100_000
    packer = zlib.compressobj(1, zlib.DEFLATED, 31)  # 31: a gzip header and trailer
    out = [packer.compress(b"[")]
    for _ in range(max(size // len(piece), 1)):
        out.append(packer.compress(piece))
    out.append(packer.compress(b"{}]"))
    out.append(packer.flush())
    return b"".join(out)


def _make_handler(emulator: HubEmulator) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as the Hub's front end does
        server_version = "hfharvest-emulator"
        # The headers and the body leave in two writes: with Nagle's algorithm the second waited
        # for the client's delayed ACK, about 40 ms on every answer over loopback.
        disable_nagle_algorithm = True

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            if parts.path == "/_emulator/requests":
                self._send(_Answer(200, emulator.log_json()))
                return
            host = self.headers.get("Host") or emulator.url.removeprefix("http://")
            answer = emulator.answer(
                parts.path, parts.query, self.headers.get("Authorization"), f"http://{host}"
            )
            self._send(answer)

        def _send(self, answer: _Answer) -> None:
            fault_kind = answer.cut
            if fault_kind == "reset":
                self._reset()
                return
            if fault_kind in ("http09", "long-header", "trickle-headers"):
                self._raw(answer)
                return
            self.send_response(answer.status)
            for name, value in [*answer.headers.items(), *answer.more_headers]:
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(answer.body)))
            self.end_headers()
            if fault_kind is None:
                self.wfile.write(answer.body)
                return
            if fault_kind == "trickle":  # a byte at a time, until the client gives up
                for byte in answer.body:
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()
                    time.sleep(answer.trickle)
                return
            self.wfile.write(answer.body[: max(1, len(answer.body) // 2)])
            self.wfile.flush()
            if fault_kind == "reset-body":
                self._reset()
            else:
                self.close_connection = True

        def _raw(self, answer: _Answer) -> None:
            """What no HTTP/1.1 server sends: a body alone, a header too long, or headers sent a
            byte at a time."""
            self.close_connection = True
            head = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n" % len(answer.body)
            if answer.cut == "http09":
                self.wfile.write(answer.body)
            elif answer.cut == "long-header":
                self.wfile.write(head + b"X-Long: " + b"x" * 70_000 + b"\r\n\r\n" + answer.body)
            else:
                for byte in head + b"X-Slow: " + b"x" * 1000 + b"\r\n\r\n":
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()
                    time.sleep(answer.trickle)

        def _reset(self) -> None:
            # SO_LINGER with a zero timeout makes close() send RST: a connection reset by peer.
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_connection = True
            self.connection.close()

        def finish(self) -> None:
            with contextlib.suppress(OSError):  # the socket may have been reset on purpose
                super().finish()

        def log_message(self, format: str, *args: Any) -> None:
            pass  # the emulator keeps its own log; stderr stays for the tool under test

    return Handler
