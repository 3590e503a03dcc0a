"""Attachments: `extracted_text`, what the model reads of a PDF, extracted once.

Extracting a PDF's text (pypdf, up to 50 pages) on every turn that replays it cost the
same work again and again; it is now done once, when the upload completes (or on the
first turn for rows made before this), and kept here already cut to
ATTACHMENT_TEXT_CHARS, or as the note saying why there is no text.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("attachments") as batch:
        batch.add_column(sa.Column("extracted_text", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("attachments") as batch:
        batch.drop_column("extracted_text")
