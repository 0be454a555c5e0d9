"""A total deadline per answer, from the first byte sent to the last byte read, headers included.

requests' `timeout` bounds each read, not an answer: headers sent a byte every two seconds, or a
body that trickles in, never time out. So each request runs under an `AnswerClock`: a timer that,
when the answer has not ended in time, shuts down the sockets the request opened or reused, which
ends any read at once. The sockets are learnt through the session's own connection classes
(`WatchedAdapter`, mounted by `client.build_session`), which tell the clock of the thread that is
asking.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from typing import Any

from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.poolmanager import PoolManager

_current = threading.local()  # the clock of the request this thread is making, if any


class AnswerClock:
    """Run a request under a deadline (`running`); `expired` says whether it cut the answer."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self.expired = False
        self.aborted = False  # every answer, from now on, is cut at once

    @contextlib.contextmanager
    def running(self, seconds: float) -> Iterator[AnswerClock]:
        with self._lock:
            self._sockets, self.expired = [], False
        timer = threading.Timer(0.0 if self.aborted else seconds, self._expire)
        timer.daemon = True
        _current.clock = self
        timer.start()
        try:
            yield self
        finally:
            timer.cancel()
            _current.clock = None
            with self._lock:
                self._sockets = []

    def watch(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.append(sock)
            if self.expired:
                _shut(sock)

    def abort(self) -> None:
        """Cut the answer under way now, and every later one at once (the walk is stopping)."""
        self.aborted = True
        self._expire()

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            for sock in self._sockets:
                _shut(sock)


def _shut(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):  # already closed: nothing left to cut
        sock.shutdown(socket.SHUT_RDWR)


def _watch(sock: socket.socket | None) -> None:
    clock: AnswerClock | None = getattr(_current, "clock", None)
    if clock is not None and sock is not None:
        clock.watch(sock)


class _Watched(HTTPConnection):
    """A connection that tells the asking thread's clock of its socket, new or reused."""

    def _new_conn(self) -> socket.socket:
        sock = super()._new_conn()
        _watch(sock)
        return sock

    def request(self, *args: Any, **kwargs: Any) -> None:
        _watch(self.sock)  # a kept-alive connection: its socket is already open
        super().request(*args, **kwargs)


class _WatchedHTTPS(_Watched, HTTPSConnection):
    pass


class _HTTPPool(HTTPConnectionPool):
    ConnectionCls = _Watched


class _HTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPS


class WatchedAdapter(HTTPAdapter):
    """requests' adapter, with connections an `AnswerClock` can cut (through a proxy too)."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        _watched(self.poolmanager)

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> PoolManager:
        manager: PoolManager = super().proxy_manager_for(proxy, **proxy_kwargs)
        if not proxy.lower().startswith("socks"):  # SOCKS pools are their own classes
            _watched(manager)
        return manager


def _watched(manager: PoolManager) -> None:
    manager.pool_classes_by_scheme = {"http": _HTTPPool, "https": _HTTPSPool}
