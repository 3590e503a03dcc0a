"""Task numbers are never reused: AUTOINCREMENT on SQLite's tasks key.

Without it SQLite gives the next task the number of the newest one just deleted,
and chat history that said "#8" then names another task. PostgreSQL's sequence never
reuses a number, so only SQLite's table is rebuilt (batch mode copies the rows and
recreates the indexes; the copy sets the counter to the highest number in use).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _rebuild(autoincrement: bool) -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    with op.batch_alter_table(
        "tasks", recreate="always", table_kwargs={"sqlite_autoincrement": autoincrement}
    ):
        pass


def upgrade() -> None:
    _rebuild(True)


def downgrade() -> None:
    _rebuild(False)
