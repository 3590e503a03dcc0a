"""The statements of a run's admission and release, built once per database dialect.

Every turn counts the user's runs, takes the thread's lock, counts the message and, at
the end, writes the usage row and drops the lock: built once and executed with a dict
of values (why: db.insert_params). The names of the bind parameters are the dict's keys.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

from sqlalchemy import (
    BindParameter,
    Delete,
    Select,
    Update,
    bindparam,
    delete,
    func,
    select,
    true,
    update,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.sql.dml import ReturningInsert

from ..db import Insert, insert_params, prefixed_row
from .tables import ActiveRunRow, RateWindowRow, UsageRow

RUN_COLUMNS = (
    "thread_id",
    "run_id",
    "user_id",
    "instance",
    "started_at",
    "heartbeat_at",
    "stop_requested",
)
USAGE_COLUMNS = (
    "user_id",
    "thread_id",
    "run_id",
    "model",
    "input_tokens",
    "output_tokens",
    "duration_ms",
    "created_at",
)
# The usage row's values in release_with_usage (db.prefixed_row).
USAGE_PREFIX = "usage_"


@dataclass(frozen=True)
class RunStatements:
    # user_id, fresh: the user's runs whose heartbeat is not older than `fresh`
    count_runs: Select[Any]
    # RUN_COLUMNS, fresh: inserts the lock, or takes over one whose heartbeat is stale
    take_lock: Insert
    # run_id
    drop_lock: Delete
    # run_ids (a list): those asked to stop
    stop_requested: Select[Any]
    # run_ids (a list), heartbeat_at
    heartbeat: Update
    # user_id, window_start: adds one to the window's count and returns it
    count_message: ReturningInsert[Any]
    # USAGE_COLUMNS
    insert_usage: Insert
    # PostgreSQL, each one statement without a transaction around it and committed
    # without the WAL flush wait (registry.py): run_id (drops the lock), and
    # USAGE_PREFIX + each of USAGE_COLUMNS (writes the usage row in the same statement)
    release: Delete | None
    release_with_usage: Delete | None


def _releases() -> tuple[Delete, Delete]:
    """A run's release on PostgreSQL in one round trip instead of five (BEGIN, the
    setting, the usage row, the lock drop, COMMIT). `set_config(..., true)` in a CTE lasts
    until the statement's own commit; the CTE runs only if the statement reads it, hence
    the condition on it and the usage row selected from it."""
    runs = ActiveRunRow.__table__.c
    no_flush_wait = select(
        func.set_config("synchronous_commit", "off", true()).label("setting")
    ).cte("no_flush_wait")
    release = delete(ActiveRunRow).where(
        runs.run_id == bindparam("run_id"),
        select(no_flush_wait.c.setting).scalar_subquery().is_not(None),
    )
    row = prefixed_row(UsageRow.__table__, USAGE_COLUMNS, USAGE_PREFIX).select_from(no_flush_wait)
    used = postgresql.insert(UsageRow).from_select(USAGE_COLUMNS, row).cte("used")
    return release, release.add_cte(used)


@cache
def run_statements(dialect: str) -> RunStatements:
    runs, windows = ActiveRunRow.__table__.c, RateWindowRow.__table__.c
    run_ids: BindParameter[list[str]] = bindparam("run_ids", expanding=True)

    take_lock = insert_params(dialect, ActiveRunRow.__table__, RUN_COLUMNS)
    take_lock = take_lock.on_conflict_do_update(
        index_elements=["thread_id"],
        set_={name: take_lock.excluded[name] for name in RUN_COLUMNS if name != "thread_id"},
        # A live run's row is left alone and nothing is written (rowcount 0).
        where=runs.heartbeat_at < bindparam("fresh"),
    )

    first_message = insert_params(
        dialect, RateWindowRow.__table__, ("user_id", "window_start")
    ).values(count=1)
    count_message = first_message.on_conflict_do_update(
        index_elements=["user_id", "window_start"], set_={"count": windows.count + 1}
    ).returning(windows.count)

    release, release_with_usage = _releases() if dialect == "postgresql" else (None, None)
    return RunStatements(
        count_runs=select(func.count()).where(
            runs.user_id == bindparam("user_id"), runs.heartbeat_at >= bindparam("fresh")
        ),
        take_lock=take_lock,
        drop_lock=delete(ActiveRunRow).where(runs.run_id == bindparam("run_id")),
        stop_requested=select(runs.run_id).where(runs.run_id.in_(run_ids), runs.stop_requested),
        heartbeat=update(ActiveRunRow)
        .where(runs.run_id.in_(run_ids))
        .values(heartbeat_at=bindparam("heartbeat_at")),
        count_message=count_message,
        insert_usage=insert_params(dialect, UsageRow.__table__, USAGE_COLUMNS),
        release=release,
        release_with_usage=release_with_usage,
    )
