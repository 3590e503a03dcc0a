"""ChatKit store: threads, items, attachments, feedback.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

seq_type = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "threads",
        sa.Column("seq", seq_type, primary_key=True, autoincrement=True),
        sa.Column("id", sa.String(64), nullable=False, unique=True),
        sa.Column("user_id", sa.String(255), nullable=False),
        sa.Column("title", sa.Text()),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
    )
    op.create_index("ix_threads_user_created", "threads", ["user_id", "created_at", "seq"])
    op.create_index("ix_threads_user_updated", "threads", ["user_id", "updated_at"])

    op.create_table(
        "thread_items",
        sa.Column("seq", seq_type, primary_key=True, autoincrement=True),
        sa.Column("id", sa.String(64), nullable=False, unique=True),
        sa.Column("thread_id", sa.String(64), nullable=False),
        sa.Column("user_id", sa.String(255), nullable=False),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
    )
    op.create_index("ix_items_thread_created", "thread_items", ["thread_id", "created_at", "seq"])

    op.create_table(
        "attachments",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("user_id", sa.String(255), nullable=False),
        sa.Column("thread_id", sa.String(64)),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
    )
    op.create_index("ix_attachments_user", "attachments", ["user_id"])
    op.create_index("ix_attachments_thread_id", "attachments", ["thread_id"])

    op.create_table(
        "item_feedback",
        sa.Column("user_id", sa.String(255), primary_key=True),
        sa.Column("item_id", sa.String(64), primary_key=True),
        sa.Column("thread_id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_item_feedback_thread_id", "item_feedback", ["thread_id"])


def downgrade() -> None:
    op.drop_table("item_feedback")
    op.drop_table("attachments")
    op.drop_table("thread_items")
    op.drop_table("threads")
