"""The Alembic migrations create exactly the schema the table models describe.

Autogenerate compares a freshly migrated database (SQLite and PostgreSQL) with the
models' metadata: a model changed without a migration, or a migration that drifted
from its model, shows up here as a difference. A table no module below defines shows
up as one to remove: import its module here.
"""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

# Every table module, so Base.metadata holds all of them (as the app's imports make it).
from chatkit_backend.attachments import tables as _attachment_tables  # noqa: F401
from chatkit_backend.chat import tables as _chat_tables  # noqa: F401
from chatkit_backend.db import Base
from chatkit_backend.runs import tables as _runs_tables  # noqa: F401
from chatkit_backend.tasks import models as _task_models  # noqa: F401


def differences(conn: Connection) -> list[Any]:
    context = MigrationContext.configure(
        conn, opts={"compare_type": True, "compare_server_default": True}
    )
    return list(compare_metadata(context, Base.metadata))


async def test_the_migrations_match_the_models(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        found = await conn.run_sync(differences)
    assert found == [], "\n".join(map(str, found))
