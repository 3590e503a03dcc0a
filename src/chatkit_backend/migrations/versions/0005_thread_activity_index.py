"""Threads: index (user_id, updated_at, seq) for listings by last activity.

ChatKit's threads.list and REST /api/conversations both list a user's threads by
last activity with seq as tie-breaker; (user_id, updated_at) alone left the
tie-break to a sort, and it is a prefix of the new index, so it goes.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_threads_user_activity", "threads", ["user_id", "updated_at", "seq"])
    op.drop_index("ix_threads_user_updated", table_name="threads")


def downgrade() -> None:
    op.create_index("ix_threads_user_updated", "threads", ["user_id", "updated_at"])
    op.drop_index("ix_threads_user_activity", table_name="threads")
