"""PostgreSQL: `chatkit_admit`, a turn's admission in one statement.

Admitting a turn took seven round trips on PostgreSQL (BEGIN, the user's advisory lock,
the run count, the lock row, the message count, the key, COMMIT), each waiting its turn
on a busy server's event loop before the stream's first event. This function does the
same work in one statement, called without a transaction around it (runs/
postgres_admission.py): the statement is its transaction. It follows the rules of the
SQLite path (runs/registry.py `acquire`, runs/limits.py) in the same order, and checks
before it writes, so a refusal writes nothing: a live run on the thread, then the
user's concurrent runs, then this minute's messages, then the Idempotency-Key. Each
statement of a VOLATILE PL/pgSQL function takes a new snapshot, so the counts after the
lock see every admission committed before it. SQLite has no functions: nothing to do.

A change to the admission rules is a new migration that replaces this function, and the
same change to the SQLite path.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ADMIT = """
CREATE OR REPLACE FUNCTION chatkit_admit(
    p_user_id text,
    p_thread_id text,
    p_run_id text,
    p_instance text,
    p_now timestamp,
    p_fresh timestamp,
    p_window_start timestamp,
    p_max_runs integer,
    p_messages_per_minute integer,
    p_key text,
    p_keys_expired_before timestamp,
    OUT refusal text,
    OUT running integer
) LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    sent integer;
BEGIN
    -- Bookkeeping rows only: see RunRegistry._drop_lock in runs/registry.py.
    PERFORM set_config('synchronous_commit', 'off', true);
    -- The lock of runs/registry.py: one user's admissions one at a time.
    PERFORM pg_advisory_xact_lock(hashtext(p_user_id));
    IF EXISTS (SELECT 1 FROM active_runs
               WHERE thread_id = p_thread_id AND heartbeat_at >= p_fresh) THEN
        refusal := 'run_in_progress';
        RETURN;
    END IF;
    SELECT count(*) INTO running FROM active_runs
        WHERE user_id = p_user_id AND heartbeat_at >= p_fresh;
    IF running >= p_max_runs THEN
        refusal := 'too_many_runs';
        RETURN;
    END IF;
    SELECT coalesce(max(count), 0) INTO sent FROM rate_windows
        WHERE user_id = p_user_id AND window_start = p_window_start;
    IF sent >= p_messages_per_minute THEN
        refusal := 'rate_limited';
        RETURN;
    END IF;
    IF p_key IS NOT NULL AND EXISTS (
        SELECT 1 FROM idempotency_keys
        WHERE user_id = p_user_id AND key = p_key AND created_at >= p_keys_expired_before
    ) THEN
        refusal := 'duplicate_request';
        RETURN;
    END IF;
    -- Inserted, or taken over from a crashed worker (its heartbeat is stale).
    INSERT INTO active_runs AS r
        (thread_id, run_id, user_id, instance, started_at, heartbeat_at, stop_requested)
        VALUES (p_thread_id, p_run_id, p_user_id, p_instance, p_now, p_now, false)
        ON CONFLICT (thread_id) DO UPDATE SET
            run_id = excluded.run_id,
            user_id = excluded.user_id,
            instance = excluded.instance,
            started_at = excluded.started_at,
            heartbeat_at = excluded.heartbeat_at,
            stop_requested = excluded.stop_requested
        WHERE r.heartbeat_at < p_fresh;
    IF NOT FOUND THEN
        -- Taken since the check above by an admission not under this user's lock.
        refusal := 'run_in_progress';
        RETURN;
    END IF;
    INSERT INTO rate_windows AS w (user_id, window_start, count)
        VALUES (p_user_id, p_window_start, 1)
        ON CONFLICT (user_id, window_start) DO UPDATE SET count = w.count + 1
        RETURNING w.count INTO sent;
    IF sent = 1 THEN
        -- First message of a new window: drop this user's old windows.
        DELETE FROM rate_windows WHERE user_id = p_user_id AND window_start < p_window_start;
    END IF;
    IF p_key IS NOT NULL THEN
        DELETE FROM idempotency_keys
            WHERE user_id = p_user_id AND key = p_key AND created_at < p_keys_expired_before;
        INSERT INTO idempotency_keys (user_id, key, created_at) VALUES (p_user_id, p_key, p_now);
    END IF;
END
$$
"""


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(ADMIT)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "DROP FUNCTION IF EXISTS chatkit_admit("
            "text, text, text, text, timestamp, timestamp, timestamp, integer, integer, text, "
            "timestamp)"
        )
