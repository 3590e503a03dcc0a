"""Async engine, sessions and schema migrations (Alembic) for SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
import re
import sqlite3
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from sqlalchemy import BigInteger, Integer, Select, bindparam, event, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Dialect, ExceptionContext, make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.pool import AsyncAdaptedQueuePool, ConnectionPoolEntry, NullPool
from sqlalchemy.util.queue import QueueCommon

from .db_errors import (
    BUSY,
    READ_ONLY,
    UNREACHABLE,
    DatabaseBusy,
    DatabaseUnavailable,
    breaks_connection,
    unavailable_reason,
)
from .db_pool_queue import FairAsyncQueue
from .db_pooler import names_a_pooler, pooler_connect_args
from .metrics import DB_CONNECTIONS_CAPACITY, DB_CONNECTIONS_IN_USE, ERRORS
from .sqlite_one_trip import one_trip_dbapi

if TYPE_CHECKING:
    from alembic.config import Config

    from .config import Settings

Insert = postgresql.Insert | sqlite.Insert

log = logging.getLogger(__name__)

# Any constant works; it only has to be the same in every process of a deployment.
_MIGRATION_LOCK_KEY = 0x63686B74  # "chkt"


class Base(DeclarativeBase):
    """Declarative base for every table of the service."""


# An auto-incrementing integer key: SQLite only auto-increments an INTEGER PRIMARY KEY,
# PostgreSQL wants a BIGINT.
AutoId = BigInteger().with_variant(Integer(), "sqlite")


# Ids, limits and offsets end up as 64-bit integers in SQL (BIGINT on PostgreSQL, and
# SQLite's INTEGER): a larger one overflows there, as a database error.
MAX_SQL_INT = 2**63 - 1


def utcnow() -> datetime:
    """Now in UTC without tzinfo: the one form every table stores."""
    return datetime.now(UTC).replace(tzinfo=None)


def dialect_insert(engine: AsyncEngine | AsyncConnection, table: Any) -> Insert:
    """An INSERT with `on_conflict_do_*` for the engine's database (PostgreSQL or SQLite)."""
    if engine.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def insert_params(dialect: str, table: Any, columns: Iterable[str]) -> Insert:
    """An INSERT for `dialect` whose values are bind parameters named after `columns`.

    For statements built once and executed with a dict of values: building a
    statement and its cache key costs SQLAlchemy about 0.2 ms, more than SQLite takes
    to run it, and a statement kept for reuse pays that once (its key is memoised).
    """
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return insert(table).values({name: bindparam(name) for name in columns})


def prefixed_row(table: Any, columns: Iterable[str], prefix: str) -> Select[Any]:
    """A one-row SELECT of `table`'s `columns` as typed bind parameters named `prefix` +
    column: the row an INSERT ... SELECT writes inside a statement that has other bind
    parameters of the same names (an UPDATE takes any parameter named after one of its
    table's columns as a value to SET). Execute with `prefixed(values, prefix)`."""
    return select(*(bindparam(prefix + name, type_=table.c[name].type) for name in columns))


def prefixed(values: dict[str, Any], prefix: str) -> dict[str, Any]:
    return {prefix + name: value for name, value in values.items()}


def autocommit_engine(engine: AsyncEngine) -> AsyncEngine:
    """The engine without transactions on PostgreSQL: for reads, and one-statement writes.

    A read in a transaction costs PostgreSQL two more round trips (BEGIN, ROLLBACK) and
    gains nothing: at READ COMMITTED, the isolation used here, each statement takes its
    own snapshot either way, and a plain SELECT holds no lock past its end. A write of a
    single statement is atomic on its own, and its BEGIN and COMMIT are two round trips
    too. The returned engine shares `engine`'s pool. Never for a block of several writes,
    or that locks (`FOR UPDATE`, advisory transaction locks): each statement would commit
    on its own. SQLite gets `engine` itself: its transactions cost no round trip, and its
    writes queue in sqlite_writes.py.
    """
    if engine.dialect.name != "postgresql":
        return engine
    return engine.execution_options(isolation_level="AUTOCOMMIT")


def sqlite_path(url: str) -> Path | None:
    """The database file of a SQLite URL, or None for other databases and :memory:."""
    parsed = make_url(url)
    if not parsed.drivername.startswith("sqlite") or not parsed.database:
        return None
    if parsed.database == ":memory:":
        return None
    return Path(parsed.database)


class _BoundedPool(AsyncAdaptedQueuePool):
    """The PostgreSQL pool: waiting past its timeout is `DatabaseBusy`, a 503 to retry;
    connections go to waiters in the order they came (db_pool_queue.py)."""

    _queue_class: type[QueueCommon[ConnectionPoolEntry]] = FairAsyncQueue

    def _do_get(self) -> ConnectionPoolEntry:
        try:
            return super()._do_get()
        except PoolTimeout as exc:
            ERRORS.labels("database_busy").inc()
            raise DatabaseBusy() from exc


def _ping_in_one_trip(engine: AsyncEngine) -> None:
    """Make the pool's pre-ping one round trip instead of three.

    SQLAlchemy's asyncpg ping sends BEGIN, an empty query and ROLLBACK. Every
    check-out pings its connection first, so the two extra round trips were paid on
    every transaction. A `SELECT 1` by the simple protocol (`execute` without
    arguments) proves the connection as well, prepares nothing, and passes a transaction
    pooler unchanged (not an empty query: asyncpg's simple protocol fails on its empty
    status). Failures take the adapter's own path, so a dead connection is replaced.

    Every check-out is pinged, however recently the connection was used: after a
    restart, a failover or an administrator's pg_terminate_backend no request fails on a
    dead connection. (Skipping the ping for connections returned less than a second ago,
    pgxpool's rule, was tried: asyncpg reads the server's goodbye some time before it
    sees the socket close, and a connection checked out in between failed its request;
    tests/test_database_faults.py caught it.) A connection asyncpg already knows closed
    is replaced without the round trip, and alone: a failed ping would recycle every
    idle connection too, and a proxy's idle timeout closing one says nothing of the
    others.
    """
    dialect = engine.sync_engine.dialect

    def do_ping(dbapi_connection: Any) -> bool:
        if dbapi_connection.driver_connection.is_closed():
            raise DisconnectionError("closed by the server")
        try:
            dbapi_connection.run_async(lambda conn: conn.execute("SELECT 1"))
        except Exception as error:
            # Translates asyncpg's errors into the DB-API ones SQLAlchemy recognises as
            # disconnects (the adapter's own ping does the same).
            dbapi_connection._handle_exception(error)
        return True

    dialect.do_ping = do_ping  # type: ignore[method-assign]


def _count_connections(engine: AsyncEngine, capacity: int) -> None:
    """Keep /metrics' connections in use and capacity (every worker's pool summed)."""
    DB_CONNECTIONS_CAPACITY.inc(capacity)
    pool = engine.sync_engine.pool

    @event.listens_for(pool, "checkout")
    def _out(_dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        record.record_info["counted_out"] = True
        DB_CONNECTIONS_IN_USE.inc()

    @event.listens_for(pool, "checkin")
    def _in(_dbapi_connection: Any, record: Any) -> None:
        # A check-out that failed (a reconnect refused during an outage) is checked in
        # without having been counted out: counting it down would leave the gauge low.
        if record.record_info.pop("counted_out", False):
            DB_CONNECTIONS_IN_USE.dec()

    @event.listens_for(engine.sync_engine, "engine_disposed")
    def _disposed(*_args: Any) -> None:
        DB_CONNECTIONS_CAPACITY.dec(capacity)


def create_engine(
    url: str,
    *,
    pool_size: int = 10,
    max_overflow: int = 10,
    pool_timeout: float = 10.0,
    transaction_pooler: bool = False,
    pooled: bool = True,
) -> AsyncEngine:
    """An engine tuned for a chat server: WAL on SQLite, a bounded pool on PostgreSQL.

    Either way a database outage is raised as `DatabaseUnavailable` (db_errors.py) and a
    connection that failed in a way that leaves it unusable is discarded, so the server
    recovers by itself once the database is back. On PostgreSQL a request waits up to
    `pool_timeout` seconds for one of `pool_size + max_overflow` connections, then gets
    `DatabaseBusy`. `transaction_pooler`: the URL is a transaction-pooling proxy's
    (db_pooler.py). `pooled=False`: a connection per use, for one-off work (migrations).
    """
    path = sqlite_path(url)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(
            url,
            connect_args={"timeout": 30},
            module=one_trip_dbapi(),
            # Every use of a connection is a `begin()` or `connect()` block, which ends
            # its transaction itself; the pool's extra ROLLBACK on check-in would be one
            # more round trip to aiosqlite's thread per transaction (about ten a turn).
            pool_reset_on_return=None,
        )

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            # WAL lets readers run beside the single writer; NORMAL sync is safe with WAL.
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            # SQLite opens a file it may not write read-only, and the connection stays
            # so after the file is writable again: such a connection must never enter
            # the pool. Without waiting for the write lock: a writer holding it proves
            # this connection can write (a read-only one fails before taking it).
            cur.execute("PRAGMA busy_timeout=0")
            try:
                _sqlite_write_probe(cur)
            except sqlite3.OperationalError as exc:
                if unavailable_reason(exc) != BUSY:
                    raise
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

    elif not pooled:
        engine = create_async_engine(
            url,
            poolclass=NullPool,
            connect_args=pooler_connect_args() if transaction_pooler else {},
        )
    else:
        engine = create_async_engine(
            url,
            poolclass=_BoundedPool,
            pool_size=pool_size,
            max_overflow=max_overflow,
            pool_timeout=pool_timeout,
            pool_pre_ping=True,
            connect_args=pooler_connect_args() if transaction_pooler else {},
        )
        _ping_in_one_trip(engine)
        _count_connections(engine, pool_size + max_overflow)
    _raise_outages_as_unavailable(engine)
    return engine


def engine_for(settings: Settings) -> AsyncEngine:
    """The server's engine for DATABASE_URL, with the pool and pooler settings."""
    return create_engine(
        settings.async_database_url,
        pool_size=settings.database_pool_size,
        max_overflow=settings.database_max_overflow,
        pool_timeout=settings.database_pool_timeout,
        transaction_pooler=settings.transaction_pooled,
    )


async def migrate_for(settings: Settings, engine: AsyncEngine) -> None:
    """Migrate the database `engine` (DATABASE_URL's) serves: through DATABASE_DIRECT_URL
    when it is set, through `engine` otherwise (a transaction pooler works too)."""
    direct = settings.async_direct_url
    if direct is None:
        await migrate(engine)
        return
    assert settings.database_direct_url is not None
    one_off = create_engine(
        direct,
        pooled=False,
        transaction_pooler=names_a_pooler(settings.database_direct_url),
    )
    try:
        await migrate(one_off)
    finally:
        await one_off.dispose()


def _sqlite_write_probe(cur: Any) -> None:
    """Write the database header (its own user_version, unchanged), then roll back."""
    cur.execute("BEGIN IMMEDIATE")
    try:
        cur.execute("PRAGMA user_version")
        version = int(cur.fetchone()[0])
        cur.execute(f"PRAGMA user_version={version}")
    finally:
        cur.execute("ROLLBACK")


def _raise_outages_as_unavailable(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "do_connect")
    def _connect(dialect: Dialect, _record: Any, cargs: Any, cparams: Any) -> Any:
        try:
            return dialect.connect(*cargs, **cparams)
        except OSError as exc:
            # Refused, reset, unresolvable host, timed out: the driver raises these as
            # they are, and SQLAlchemy passes them on unwrapped.
            raise DatabaseUnavailable(UNREACHABLE) from exc

    @event.listens_for(engine.sync_engine, "handle_error")
    def _on_error(ctx: ExceptionContext) -> BaseException | None:
        error = ctx.original_exception
        if isinstance(error, asyncio.CancelledError):
            # A stop or a disconnect cancelled the task mid-statement: SQLAlchemy drops
            # the connection, and the cancellation must stay one (an outage here would
            # turn a user's stop into an error event).
            return None
        if breaks_connection(error):
            # The pool drops this connection for a new one; the others may be fine.
            ctx.is_disconnect = True
            ctx.invalidate_pool_on_disconnect = False
        reason = unavailable_reason(error, connecting=ctx.connection is None)
        if reason is None and ctx.is_disconnect:
            reason = UNREACHABLE
        if reason is None or ctx.is_pre_ping:
            return None  # a bug stays what it is; a failed pre-ping just reconnects
        return DatabaseUnavailable(reason)


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


def _alembic_config(connection: Connection) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", "chatkit_backend:migrations")
    cfg.attributes["connection"] = connection
    return cfg


def _upgrade(connection: Connection) -> None:
    from alembic import command

    if connection.dialect.name == "postgresql":
        # Instances starting together queue here; the first migrates, the rest find
        # nothing left to do. A transaction lock, taken in the migrations' own
        # transaction (Alembic joins it; DDL is transactional on PostgreSQL): it holds
        # through a transaction pooler, which would hand a session lock's unlock to
        # another server connection, and it ends with the transaction or the process.
        with connection.begin():
            connection.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _MIGRATION_LOCK_KEY})
            command.upgrade(_alembic_config(connection), "head")
    else:
        command.upgrade(_alembic_config(connection), "head")
        connection.commit()


def _locked_file(path: Path) -> IO[str]:
    while True:
        handle = open(path, "a+")  # noqa: SIM115 - closed by the caller, which releases the lock
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            current = os.path.samestat(os.fstat(handle.fileno()), os.stat(path))
        except FileNotFoundError:
            current = False
        if current:
            return handle
        # Its holder removed it as it let go: whoever locks the file now at `path` is next.
        handle.close()


@asynccontextmanager
async def _file_lock(path: Path | None) -> AsyncIterator[None]:
    """Serialise migrations of one SQLite file across processes (flock dies with them).

    The lock file is removed on release, before the lock is let go, so none is left next
    to the database; a waiter that then gets the removed file sees it and tries again.
    """
    if path is None:
        yield
        return
    lock_path = path.with_name(path.name + ".migrate.lock")
    handle = await asyncio.to_thread(_locked_file, lock_path)
    try:
        yield
    finally:
        lock_path.unlink(missing_ok=True)
        handle.close()


_MIGRATIONS = Path(__file__).parent / "migrations" / "versions"
_REVISION = re.compile(r'^(down_)?revision: str(?: \| None)? = "([^"]+)"', re.MULTILINE)


@cache
def head_revision() -> str:
    """The newest migration's revision, read from the files without importing Alembic."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in _MIGRATIONS.glob("*.py"):
        for down, revision in _REVISION.findall(path.read_text()):
            (parents if down else revisions).add(revision)
    heads = revisions - parents
    if len(heads) != 1:
        raise RuntimeError(f"migrations must form one line, found heads {sorted(heads)}")
    return heads.pop()


async def current_revision(engine: AsyncEngine) -> str | None:
    """The database's schema revision; None before the first migration."""
    async with engine.connect() as conn:
        try:
            version = await conn.scalar(text("SELECT version_num FROM alembic_version"))
        except DBAPIError:
            return None  # no alembic_version table yet
    return str(version) if version is not None else None


async def migrate(engine: AsyncEngine) -> None:
    """Apply pending migrations exactly once, however many processes call this at once."""
    if await current_revision(engine) == head_revision():
        # The usual start: nothing to do, and Alembic (0.5 s to import) is not needed.
        log.info("database schema is up to date")
        return
    async with _file_lock(sqlite_path(str(engine.url))), engine.connect() as conn:
        await conn.run_sync(_upgrade)
    log.info("database schema is up to date")


async def check_ready(engine: AsyncEngine) -> None:
    """Raise `DatabaseUnavailable` unless the database can be reached and written now.

    SQLite: the file must be there and writable by this process (the pool's older
    connections would go on working on a file that was moved away or made read-only,
    while every new one would fail), and a pooled connection commits a write of the
    file's header, unchanged, which a locked, full or failing disk refuses. PostgreSQL:
    a pooled connection (pre-pinged) must not be read-only (a hot standby, or
    `default_transaction_read_only`).
    """
    path = sqlite_path(str(engine.url))
    if path is not None:
        if not path.is_file():
            raise DatabaseUnavailable(UNREACHABLE)
        if not os.access(path, os.R_OK | os.W_OK):
            raise DatabaseUnavailable(READ_ONLY)
        async with engine.connect() as conn:
            await conn.exec_driver_sql("BEGIN IMMEDIATE")
            version = int(await conn.scalar(text("PRAGMA user_version")) or 0)
            await conn.exec_driver_sql(f"PRAGMA user_version = {version}")
            await conn.commit()
        return
    async with engine.connect() as conn:
        read_only = await conn.scalar(text("SELECT current_setting('transaction_read_only')"))
    if read_only == "on":
        raise DatabaseUnavailable(READ_ONLY)
