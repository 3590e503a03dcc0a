"""The one-trip SQLite cursor (chatkit_backend/sqlite_one_trip.py) behaves as a DBAPI
cursor should under SQLAlchemy: rows, counts, RETURNING, executemany, errors."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiosqlite
import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine

from chatkit_backend.db import create_engine


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    eng = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'one_trip.db'}")
    async with eng.begin() as conn:
        await conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT UNIQUE)"))
    try:
        yield eng
    finally:
        await eng.dispose()


async def test_rows_rowcount_and_lastrowid(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        inserted = await conn.execute(text("INSERT INTO t (name) VALUES ('a')"))
        assert inserted.rowcount == 1
        assert inserted.lastrowid == 1
        many = await conn.execute(
            text("INSERT INTO t (name) VALUES (:name)"), [{"name": "b"}, {"name": "c"}]
        )
        assert many.rowcount == 2
        updated = await conn.execute(text("UPDATE t SET name = name || '!' WHERE id > 1"))
        assert updated.rowcount == 2
    async with engine.connect() as conn:
        rows = (await conn.execute(text("SELECT id, name FROM t ORDER BY id"))).all()
        assert [tuple(r) for r in rows] == [(1, "a"), (2, "b!"), (3, "c!")]
        partial = await conn.execute(text("SELECT name FROM t ORDER BY id"))
        assert partial.fetchmany(2) == [("a",), ("b!",)]
        assert partial.fetchall() == [("c!",)]


async def test_returning_and_empty_results(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        returned = await conn.execute(text("INSERT INTO t (name) VALUES ('x') RETURNING id, name"))
        assert [tuple(r) for r in returned] == [(1, "x")]
        none = await conn.execute(text("SELECT name FROM t WHERE id = 99"))
        assert none.first() is None


async def test_errors_keep_their_types_and_roll_back(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.execute(text("INSERT INTO t (name) VALUES ('dup')"))
    with pytest.raises(IntegrityError):
        async with engine.begin() as conn:
            await conn.execute(text("INSERT INTO t (name) VALUES ('ok')"))
            await conn.execute(text("INSERT INTO t (name) VALUES ('dup')"))
    with pytest.raises(OperationalError):
        async with engine.connect() as conn:
            await conn.execute(text("SELECT * FROM no_such_table"))
    async with engine.connect() as conn:
        names = (await conn.execute(text("SELECT name FROM t"))).scalars().all()
    assert names == ["dup"], "the failed transaction must have been rolled back"


async def test_one_trip_per_statement(engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch) -> None:
    trips: list[str] = []
    original = aiosqlite.Connection._execute

    async def counted(self: aiosqlite.Connection, fn, *args, **kwargs):  # type: ignore[no-untyped-def]
        trips.append(getattr(fn, "__name__", repr(fn)))
        return await original(self, fn, *args, **kwargs)

    monkeypatch.setattr(aiosqlite.Connection, "_execute", counted)
    async with engine.connect() as conn:
        trips.clear()
        rows = (await conn.execute(text("SELECT 1 UNION ALL SELECT 2"))).all()
        assert trips == ["_run"]
    assert len(rows) == 2
