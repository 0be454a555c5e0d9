"""Small scripted listing servers on 127.0.0.1 for the hostile cases the emulator does not play:
each logs, per request, the port it listens on and the Authorization header it received."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

# (status, headers, body) for a request's path and query.
Respond = Callable[[str], tuple[int, dict[str, str], bytes]]


class Scripted:
    """A server answering as `respond` says; `seen` holds (port, path, Authorization or None)."""

    def __init__(self, respond: Respond) -> None:
        self.respond = respond
        self.seen: list[tuple[int, str, str | None]] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self.port: int = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # a token exchange: what it was sent is read, not kept
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self.do_GET()

            def do_GET(self) -> None:
                server.seen.append((server.port, self.path, self.headers.get("Authorization")))
                status, headers, body = server.respond(self.path)
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler


@contextmanager
def scripted(*responders: Respond) -> Iterator[list[Scripted]]:
    servers = [Scripted(respond) for respond in responders]
    try:
        yield servers
    finally:
        for server in servers:
            server.close()
