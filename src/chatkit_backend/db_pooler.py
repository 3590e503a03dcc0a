"""Running behind a transaction-pooling proxy (PgBouncer, Supavisor, Neon's pooler).

In transaction mode the proxy lends a server connection for one transaction only: the
next transaction of the same client connection may run on another one. So nothing may
outlive a transaction. What the server itself keeps across transactions:

- prepared statements: asyncpg and SQLAlchemy's adapter cache them per connection under
  names from a per-connection counter, so a cached one is missing on the next server
  connection (InvalidSQLStatementNameError) and two clients' names collide on one
  server connection (DuplicatePreparedStatementError). Behind a pooler both caches are
  off (`pooler_connect_args`).
- session advisory locks: the migration lock and the per-user admission lock are
  transaction locks (pg_advisory_xact_lock), which go with their transaction.
- SET, LISTEN, temporary tables: not used.

Pointed at a pooler, the settings say so (DATABASE_POOLER=transaction) or the URL does.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

# Query options asyncpg would reject: libpq's channel_binding, and Prisma's pgbouncer
# flag (read here as "this is a pooler", then dropped).
DROPPED_URL_OPTIONS = frozenset({"channel_binding", "pgbouncer"})

# PgBouncer's default port; Supavisor's transaction port on Supabase.
_POOLER_PORTS = frozenset({6432, 6543})
_TRUE = frozenset({"1", "true", "yes", "on"})


def names_a_pooler(url: str) -> bool:
    """Whether a PostgreSQL URL plainly points at a transaction pooler.

    PgBouncer's port, Prisma's `pgbouncer=true`, a Supabase pooler host
    (`*.pooler.supabase.com`) or a Neon pooled host (`ep-...-pooler.region...`). Any
    other set-up says so with DATABASE_POOLER=transaction.
    """
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    if query.get("pgbouncer", "").strip().lower() in _TRUE:
        return True
    host = (parts.hostname or "").lower()
    if host.endswith(".pooler.supabase.com") or "-pooler." in host:
        return True
    try:
        port = parts.port
    except ValueError:
        return False  # not a port at all: the driver will say so
    return port in _POOLER_PORTS


def pooler_connect_args() -> dict[str, int]:
    """asyncpg connection options for a transaction pooler.

    `statement_cache_size` is asyncpg's own cache, `prepared_statement_cache_size`
    SQLAlchemy's adapter's. With both 0 (and no statement name given) asyncpg prepares
    every statement unnamed and parses it again with its Bind: nothing is left on the
    server connection to collide or go missing. Unique names (SQLAlchemy's
    `prepared_statement_name_func` recipe) would avoid collisions too, but each would
    stay prepared on whichever server connection ran it (asyncpg's later Close reaches
    another one), piling up in the database's backends for the pooler's server lifetime.
    """
    return {"statement_cache_size": 0, "prepared_statement_cache_size": 0}
