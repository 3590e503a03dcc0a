"""The answers to a refused admission, whichever database decided it.

SQLite admits in a Python transaction (registry.py, limits.py), PostgreSQL in one
statement (postgres_admission.py); both refuse with these, in this order of precedence:
the thread is busy, the user has too many runs, too many messages this minute, the
Idempotency-Key was seen.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from ..errors import Conflict, TooManyRequests


def run_in_progress() -> Conflict:
    return Conflict("a response is already in progress", code="run_in_progress")


def too_many_runs(running: int) -> TooManyRequests:
    return TooManyRequests(
        f"You already have {running} responses in progress; wait for one to finish.",
        code="too_many_runs",
        headers={"Retry-After": "5"},
    )


def minute_window(now: datetime) -> datetime:
    """The fixed one-minute window of the message rate that `now` falls in."""
    return now.replace(second=0, microsecond=0)


def rate_limited(limit: int, now: datetime) -> TooManyRequests:
    retry = math.ceil((minute_window(now) + timedelta(minutes=1) - now).total_seconds())
    return TooManyRequests(
        f"Too many messages: the limit is {limit} a minute.",
        code="rate_limited",
        headers={"Retry-After": str(max(1, retry))},
    )


def duplicate_request() -> Conflict:
    return Conflict(
        "This request was already received (same Idempotency-Key).",
        code="duplicate_request",
    )
