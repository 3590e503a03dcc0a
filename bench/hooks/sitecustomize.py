"""Bench only: count a server's SQL statements by verb and table, per process.

`python -m bench`'s capacity section puts this directory on the server's PYTHONPATH with
BENCH_STATEMENTS_DIR set; Python imports `sitecustomize` at start-up in every process
(the `serve` supervisor and each worker), and each writes its counts (statements, rows
written, commits) to BENCH_STATEMENTS_DIR/<pid>.json twice a second. The server's code
is not touched.
"""

from __future__ import annotations

import os

_DIR = os.environ.get("BENCH_STATEMENTS_DIR")


def _install(directory: str) -> None:
    import atexit
    import collections
    import json
    import re
    import threading
    from pathlib import Path
    from typing import Any

    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    table = re.compile(r'\b(?:FROM|INTO|UPDATE|JOIN)\s+"?(\w+)', re.IGNORECASE)
    # A statement without a table: the function it calls (e.g. pg_advisory_xact_lock).
    function = re.compile(r"\b(\w+)\s*\(")
    counts: collections.Counter[str] = collections.Counter()
    lock = threading.Lock()
    out = Path(directory) / f"{os.getpid()}.json"

    def on_statement(_conn: Any, cursor: Any, statement: str, *_rest: Any) -> None:
        words = statement.split(None, 1)
        verb = words[0].upper() if words else "?"
        found = table.search(statement) or function.search(statement)
        key = f"{verb} {found[1] if found else '-'}"
        rows = getattr(cursor, "rowcount", -1) if verb in {"INSERT", "UPDATE", "DELETE"} else -1
        with lock:
            counts[key] += 1
            if isinstance(rows, int) and rows > 0:
                counts[f"rows {key}"] += rows

    def on_commit(_conn: Any) -> None:
        with lock:
            counts["transactions"] += 1

    def flush() -> None:
        with lock:
            data = json.dumps(dict(counts))
        tmp = out.with_suffix(".tmp")
        tmp.write_text(data)
        tmp.replace(out)

    def flusher() -> None:
        while True:
            threading.Event().wait(0.5)
            flush()

    event.listen(Engine, "after_cursor_execute", on_statement)
    event.listen(Engine, "commit", on_commit)
    threading.Thread(target=flusher, daemon=True, name="bench-statements").start()
    atexit.register(flush)


if _DIR:
    _install(_DIR)
