"""How the Hub is asked: the endpoint, the token, and every bound on time and size a request has.

Made once per run by `settings.resolve` from the options table; read by the client.
"""

from __future__ import annotations

from dataclasses import dataclass

from hfharvest.auth import Token
from hfharvest.retry import RetryPolicy


@dataclass(frozen=True)
class Transport:
    """How the Hub is asked: where, with which token, how long to wait, how often to retry."""

    endpoint: str
    timeout: float
    retry: RetryPolicy
    max_rps: float | None
    token: Token | None
    deadline: float  # an answer's total time, from the first byte sent to the last read
    max_page_bytes: int  # an answer's body, decoded
