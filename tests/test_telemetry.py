"""Optional OpenTelemetry: off by default; when on, request spans reach the OTLP endpoint."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from chatkit_backend.config import load_settings

from .live import live_server


class Collector:
    """An OTLP/HTTP trace receiver on 127.0.0.1 that counts what it is sent."""

    def __init__(self) -> None:
        self.paths: list[str] = []
        received = self.paths

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("content-length", 0)))
                received.append(self.path)
                self.send_response(200)
                self.send_header("content-type", "application/x-protobuf")
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *_args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def collector() -> Iterator[Collector]:
    found = Collector()
    yield found
    found.server.shutdown()
    found.server.server_close()  # shutdown() only stops the loop; this closes the socket


def test_tracing_sends_request_spans_when_switched_on(collector: Collector, tmp_path: Path) -> None:
    settings = load_settings(
        database_url=f"sqlite:///{tmp_path / 'db.sqlite'}",
        model="offline",
        otel_tracing=True,
        otel_exporter_otlp_endpoint=collector.url,
    )
    with live_server(settings) as url:
        assert httpx.get(f"{url}/api/tasks").status_code == 200
    assert "/v1/traces" in collector.paths  # flushed at shutdown


def test_tracing_is_off_by_default(collector: Collector, tmp_path: Path) -> None:
    settings = load_settings(
        database_url=f"sqlite:///{tmp_path / 'db.sqlite'}",
        model="offline",
        otel_exporter_otlp_endpoint=collector.url,  # an endpoint alone does not switch it on
    )
    assert settings.otel_tracing is False
    with live_server(settings) as url:
        assert httpx.get(f"{url}/api/tasks").status_code == 200
    assert collector.paths == []
