"""create_app(): settings, database, model, ChatKit server, routes and middleware.

Nothing here imports the Agents SDK, the OpenAI client or LiteLLM: they load after
start-up (chat/runtime.py), so the server is up in about a second.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import Depends, FastAPI
from fastapi.middleware.cors import CORSMiddleware
from sqlalchemy.ext.asyncio import AsyncEngine

from . import db
from .agent.catalogue import build_catalogue
from .agent.models_api import router as models_router
from .attachments.routes import router as attachments_router
from .attachments.setup import open_attachments
from .auth import authenticator
from .chat.conversations import router as conversations_router
from .chat.debug import router as debug_router
from .chat.routes import router as chatkit_router
from .chat.runtime import ChatRuntime
from .chat.seed_conversations import router as seed_conversations_router
from .chat.seed_frontend import router as seed_frontend_router
from .chat.store import SQLStore
from .chat.streaming import RunTasks
from .config import Settings, load_settings
from .db_errors import UNREACHABLE, DatabaseUnavailable
from .deps import get_chat_runtime, get_engine
from .docs import install_docs
from .errors import database_unavailable, install_error_handlers, problem
from .features import router as features_router
from .logs import configure_logging
from .loop_errors import quiet_sdk_leftovers
from .metrics import router as metrics_router
from .middleware import RequestIdMiddleware
from .runs.admission import Admission
from .runs.limits import Limits
from .runs.registry import RunRegistry
from .runs.usage import router as usage_router
from .tasks.routes import router as tasks_router
from .telemetry import setup_tracing
from .web.routes import router as web_router

log = logging.getLogger(__name__)

SHUTDOWN_GRACE_SECONDS = 10.0


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or load_settings()
    configure_logging(settings.log_level, settings.log_format)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        quiet_sdk_leftovers(asyncio.get_running_loop())
        engine = db.engine_for(settings)
        await db.migrate_for(settings, engine)
        store = SQLStore(engine)
        attachments = open_attachments(settings, engine, store)
        app.state.attachments = attachments
        catalogue = build_catalogue(settings)
        default = catalogue.default.choice
        log.info("model: %s (%s)", default.name, default.reason)
        if len(catalogue.entries) > 1:
            log.info("models users may pick: %s", ", ".join(e.id for e in catalogue.entries))
        app.state.settings = settings
        app.state.engine = engine
        app.state.store = store
        app.state.catalogue = catalogue
        app.state.run_tasks = RunTasks()
        chat = ChatRuntime(settings, catalogue, engine, store, attachments)
        chat.start()
        app.state.chat = chat
        registry = RunRegistry(
            engine,
            max_runs_per_user=settings.max_concurrent_runs_per_user,
            heartbeat_interval=settings.run_heartbeat_seconds,
            stale_after=6 * settings.run_heartbeat_seconds,
        )
        app.state.admission = Admission(
            Limits(
                engine,
                messages_per_minute=settings.rate_limit_messages_per_minute,
                daily_token_budget=settings.daily_token_budget,
            ),
            registry,
        )
        try:
            yield
        finally:
            await app.state.run_tasks.drain(SHUTDOWN_GRACE_SECONDS)
            await registry.close()
            await chat.aclose()
            await engine.dispose()
            if tracer_provider is not None:
                tracer_provider.shutdown()  # flushes the spans still queued

    # The docs pages are our own (docs.py): FastAPI's load their scripts from a CDN.
    app = FastAPI(title="chatkit-backend", lifespan=lifespan, docs_url=None, redoc_url=None)
    install_docs(app)
    app.state.settings = settings
    authenticator(app)  # built now, so its mode is logged at start
    tracer_provider = setup_tracing(app, settings)
    install_error_handlers(app)
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.cors_origins,
        allow_credentials=True,
        # PUT: the seed project's frontend renames conversations with it.
        allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
        # ChatKit's iframe adds headers of its own (and they change between releases):
        # any request header is allowed, from the configured origins only.
        allow_headers=["*"],
        expose_headers=["x-request-id", "x-thread-id", "retry-after"],
    )
    app.add_middleware(RequestIdMiddleware)

    @app.get("/health", tags=["health"])
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/health/ready", tags=["health"], response_model=None)
    async def ready(
        engine: Annotated[AsyncEngine, Depends(get_engine)],
        chat: Annotated[ChatRuntime, Depends(get_chat_runtime)],
    ) -> object:
        try:
            # Reachable and writable: a read-only or failing database is not ready either.
            await db.check_ready(engine)
        except DatabaseUnavailable as exc:
            log.warning("readiness check failed: database %s", exc.reason)
            return database_unavailable(exc)
        except Exception:
            log.exception("readiness check failed")
            return database_unavailable(DatabaseUnavailable(UNREACHABLE))
        if not chat.ready:
            return problem(503, "Service Unavailable", "The chat model is still loading.")
        answer: dict[str, object] = {"status": "ready", "database": "ok", "model": "ok"}
        if reason := chat.model_problem:
            # Still ready: a refused key is the same on every instance, and taking them all
            # out of rotation would hide this message (and the REST API, which still
            # works) behind the load balancer's own error until a restart.
            answer |= {"model": "key_rejected", "detail": reason}
        if (mcp := chat.mcp_states()) is not None:
            # Still ready with a server down: its tools are unavailable, nothing else.
            answer["mcp"] = mcp
        return answer

    app.include_router(chatkit_router)
    app.include_router(attachments_router)
    app.include_router(conversations_router)
    app.include_router(seed_frontend_router)
    app.include_router(seed_conversations_router)
    app.include_router(tasks_router)
    app.include_router(usage_router)
    app.include_router(models_router)
    app.include_router(features_router)
    app.include_router(metrics_router)
    app.include_router(debug_router)
    app.include_router(web_router)
    return app
