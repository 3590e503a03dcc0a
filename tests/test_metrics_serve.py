"""/metrics through the real `chatkit-backend serve`, with one worker and with two.

One worker keeps its samples in memory, several share them through a directory that
`serve` makes and removes again on exit (SIGTERM included).
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from .databases import sqlite_url
from .live import parse_sse
from .processes import ServerProcess, clean_env


def metric_total(text: str, name: str, **labels: str) -> float:
    """The sum of `name`'s samples whose labels include `labels`."""
    wanted = [f'{key}="{value}"' for key, value in labels.items()]
    total = 0.0
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        series, _, value = line.rpartition(" ")
        if series.split("{", 1)[0] == name and all(w in series for w in wanted):
            total += float(value)
    return total


@pytest.mark.parametrize("workers", [1, 2])
def test_metrics_show_a_turn_and_serve_leaves_no_metrics_directory(
    tmp_path: Path, workers: int
) -> None:
    temp = tmp_path / "tmp"
    temp.mkdir()
    # TMPDIR makes the server's own temporary directories land where the test can see them.
    env = clean_env(DATABASE_URL=sqlite_url(tmp_path), MODEL="offline", TMPDIR=str(temp))
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    server = ServerProcess(env, tmp_path, "--workers", str(workers))
    try:
        reply = httpx.post(
            f"{server.url}/api/chat/stream", json={"message": "add a task to buy bread"}, timeout=60
        )
        assert reply.status_code == 200
        assert [e for e in parse_sse(reply.text) if e["type"] == "tool_call"]
        # Any worker may answer /metrics: each must see the turn the other one served.
        for _ in range(4):
            text = httpx.get(f"{server.url}/metrics", timeout=10).text
            assert metric_total(text, "chatkit_turns_total", model="offline", outcome="completed")
            assert metric_total(text, "chatkit_turns_total") == 1
            assert metric_total(text, "chatkit_turn_seconds_count") == 1
            assert metric_total(text, "chatkit_tool_calls_total", tool="add_task") == 1
            assert "chatkit_active_streams" in text
        shared = list(temp.glob("chatkit-metrics-*"))
        assert len(shared) == (1 if workers > 1 else 0)
    finally:
        server.stop()
    assert server.proc.returncode is not None
    assert list(temp.glob("chatkit-metrics-*")) == []
