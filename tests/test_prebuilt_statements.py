"""The prebuilt statements bind every column the code writes (an unbound key is dropped)."""

from __future__ import annotations

from chatkit_backend.chat.store_statements import ITEM_COLUMNS, THREAD_COLUMNS
from chatkit_backend.chat.tables import ItemRow, ThreadRow
from chatkit_backend.runs.statements import RUN_COLUMNS, USAGE_COLUMNS
from chatkit_backend.runs.tables import ActiveRunRow, UsageRow
from chatkit_backend.runs.usage import RunUsage, usage_row


def test_a_usage_row_has_exactly_the_columns_the_insert_binds() -> None:
    # A prebuilt INSERT ignores keys it does not bind: a field added to RunUsage
    # without a column (or the other way round) would be lost without this.
    usage = RunUsage(
        user_id="u",
        thread_id="t",
        run_id="r",
        model="m",
        input_tokens=1,
        output_tokens=2,
        duration_ms=3,
    )
    assert set(usage_row(usage)) == set(USAGE_COLUMNS)
    assert set(USAGE_COLUMNS) == {c.name for c in UsageRow.__table__.c} - {"seq"}


def test_the_run_lock_insert_binds_every_column() -> None:
    assert set(RUN_COLUMNS) == {c.name for c in ActiveRunRow.__table__.c}


def test_the_store_upserts_bind_every_column_but_the_sequence() -> None:
    assert set(THREAD_COLUMNS) == {c.name for c in ThreadRow.__table__.c} - {"seq"}
    assert set(ITEM_COLUMNS) == {c.name for c in ItemRow.__table__.c} - {"seq"}
