"""Which database errors mean "the database is unavailable" rather than a bug.

An outage (PostgreSQL down, refusing connections or read-only; a SQLite file that cannot
be opened, written or locked; a failing disk) is raised as `DatabaseUnavailable`, which
the API answers with 503 and Retry-After (errors.py). Anything else (a bad statement, a
broken constraint) keeps its own type and stays a 500, so real bugs are not hidden.
The engine applies these rules to every error (db.py).
"""

from __future__ import annotations

import sqlite3

UNREACHABLE = "unreachable"
READ_ONLY = "read-only"
BUSY = "busy"
STORAGE = "storage failing or full"


class DatabaseUnavailable(Exception):
    """The database cannot serve the request now; the same request may work later."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"database unavailable: {reason}")
        self.reason = reason


POOL_EXHAUSTED = "every connection of the pool is in use"


class DatabaseBusy(DatabaseUnavailable):
    """No pooled connection came free in time (DATABASE_POOL_TIMEOUT): the database is
    up, this worker has more requests in flight than connections (503 database_busy)."""

    def __init__(self) -> None:
        super().__init__(POOL_EXHAUSTED)


# Primary SQLite result codes (https://sqlite.org/rescode.html).
_SQLITE_BUSY, _SQLITE_LOCKED, _SQLITE_READONLY = 5, 6, 8
_SQLITE_IOERR, _SQLITE_CORRUPT, _SQLITE_FULL, _SQLITE_CANTOPEN = 10, 11, 13, 14
_SQLITE_NOTADB = 26

_SQLITE_REASONS = {
    _SQLITE_BUSY: BUSY,
    _SQLITE_LOCKED: BUSY,
    _SQLITE_READONLY: READ_ONLY,
    _SQLITE_IOERR: STORAGE,
    _SQLITE_FULL: STORAGE,
    _SQLITE_CANTOPEN: UNREACHABLE,
}
# After these a SQLite connection must not be used again: one opened while the file was
# read-only stays read-only for good, and one that hit an I/O error or found its file
# replaced may hold a stale view of it. A fresh connection is cheap.
_SQLITE_BREAKS_CONNECTION = {
    _SQLITE_READONLY,
    _SQLITE_IOERR,
    _SQLITE_CANTOPEN,
    _SQLITE_CORRUPT,
    _SQLITE_NOTADB,
}

# PostgreSQL SQLSTATE classes and codes (https://www.postgresql.org/docs/current/errcodes-appendix.html).
_PG_CLASS_REASONS = {
    "08": UNREACHABLE,  # connection exception
    "53": BUSY,  # insufficient resources: too many connections, out of memory (53100: below)
    "57": UNREACHABLE,  # operator intervention: shutdown, cannot connect now, terminated
    "58": STORAGE,  # system error: I/O error
}
_PG_CODE_REASONS = {
    "25006": READ_ONLY,  # read_only_sql_transaction: a hot standby or default read-only
    "53100": STORAGE,  # disk_full
    "55P03": BUSY,  # lock_not_available
    "57014": BUSY,  # query_canceled: a statement timeout
}


def _sqlite_code(exc: BaseException) -> int | None:
    code = getattr(exc, "sqlite_errorcode", None)
    return code & 0xFF if isinstance(exc, sqlite3.Error) and isinstance(code, int) else None


def unavailable_reason(exc: BaseException, *, connecting: bool = False) -> str | None:
    """Why `exc` (a DBAPI or driver error) means the database is unavailable, or None.

    `connecting`: it was raised while opening a connection. Then every refusal counts
    (database gone, not accepting connections, authentication), since no statement of
    ours can have caused it.
    """
    code = _sqlite_code(exc)
    if code is not None:
        return _SQLITE_REASONS.get(code)
    sqlstate = getattr(exc, "sqlstate", None)
    if isinstance(sqlstate, str):
        reason = _PG_CODE_REASONS.get(sqlstate) or _PG_CLASS_REASONS.get(sqlstate[:2])
        if reason is not None:
            return reason
    if connecting or isinstance(exc, OSError):
        return UNREACHABLE
    return None


def breaks_connection(exc: BaseException) -> bool:
    """Whether the connection that raised `exc` must be discarded instead of reused."""
    return _sqlite_code(exc) in _SQLITE_BREAKS_CONNECTION
