"""Optional OpenTelemetry tracing of HTTP requests, off unless OTEL_TRACING=true.

Spans go to the operator's OTLP endpoint (never to OpenAI: Agents SDK trace export
is a separate switch, AGENTS_TRACING). Needs the `otel` extra.
"""

from __future__ import annotations

import importlib.util
import logging
from typing import Any

from fastapi import FastAPI

from .config import ConfigError, Settings

log = logging.getLogger(__name__)


def tracing_unavailable(settings: Settings) -> str | None:
    """Why OTEL_TRACING=true cannot work here, or None (checked before workers start)."""
    if settings.otel_tracing and importlib.util.find_spec("opentelemetry.sdk") is None:
        return "OTEL_TRACING: needs the otel extra (pip install 'chatkit-backend[otel]')"
    return None


def setup_tracing(app: FastAPI, settings: Settings) -> Any | None:
    """Instrument `app`; return the tracer provider to shut down, or None when off."""
    if not settings.otel_tracing:
        return None
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError:
        raise ConfigError(
            "OTEL_TRACING: needs the otel extra (pip install 'chatkit-backend[otel]')"
        ) from None
    endpoint = settings.otel_exporter_otlp_endpoint
    exporter = OTLPSpanExporter(endpoint=f"{endpoint.rstrip('/')}/v1/traces" if endpoint else None)
    provider = TracerProvider(
        resource=Resource.create({"service.name": settings.otel_service_name})
    )
    provider.add_span_processor(BatchSpanProcessor(exporter))
    FastAPIInstrumentor.instrument_app(
        app, tracer_provider=provider, excluded_urls="health,metrics"
    )
    log.info("OpenTelemetry tracing on (OTLP endpoint %s)", endpoint or "from environment")
    return provider
