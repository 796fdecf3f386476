"""The FastAPI application: routers under /api, /healthz, the OpenAPI document and its
Swagger UI (/openapi.json, /docs), the web UI at /."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from fastapi import Depends, FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.staticfiles import StaticFiles

from flowforge.settings import Settings
from flowforge.storage import ObjectStore
from orchestrator.api import (
    automation,
    dimensions,
    events,
    executions,
    jobs,
    landing,
    logs,
    outputs,
    tables,
    uploads,
    workflow_runs,
    workflows,
)
from orchestrator.api.context import ApiContext, require_token
from orchestrator.api.docs import install_docs
from orchestrator.api.errors import ERROR_RESPONSES, install_error_handlers
from orchestrator.api.headers import SecurityHeaders
from orchestrator.api.schemas import Health
from orchestrator.store import Store

STATIC = Path(__file__).parent / "static"
ROUTERS = [
    workflows,
    landing,
    jobs,
    automation,
    uploads,
    dimensions,
    executions,
    workflow_runs,
    logs,
    outputs,
    tables,
    events,
]


def create_app(
    settings: Settings, store: Store | None = None, objects: ObjectStore | None = None
) -> FastAPI:
    """The API over the executions store and object store that `settings` name."""
    context = ApiContext(settings, store or Store.open(settings), objects or ObjectStore(settings))

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        stopping: asyncio.Event = app.state.stopping
        every = settings.api_reconcile_seconds
        background = [
            asyncio.create_task(context.reconciler.poll(stopping, context.activity)),
            asyncio.create_task(context.unfinished.keep_sweeping(stopping, every)),
        ]
        if settings.automation:
            background.append(asyncio.create_task(context.automation.run(stopping)))
        try:
            yield
        finally:
            stopping.set()
            await asyncio.gather(*background)

    app = FastAPI(
        title="FlowForge executions API",
        version="1",
        description="Workflows, jobs, uploads, executions, logs and previews of FlowForge.",
        lifespan=lifespan,
        redirect_slashes=False,  # "/api/workflows/" is not "/api/workflows": no redirects
        responses=ERROR_RESPONSES,
        # Served by install_docs: the document behind the token, Swagger UI without a CDN.
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
        swagger_ui_oauth2_redirect_url=None,
    )
    app.state.context = context
    app.state.stopping = asyncio.Event()
    install_error_handlers(app)
    app.add_middleware(SecurityHeaders)
    if settings.api_cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.api_cors_origins,
            allow_methods=["GET", "POST", "PUT", "DELETE"],
            allow_headers=["Authorization", "Content-Type"],
        )

    @app.get("/healthz", response_model=Health, tags=["health"])
    def healthz() -> Health:
        """Open without the token: the container healthcheck."""
        return Health()

    for module in ROUTERS:
        app.include_router(module.router, dependencies=[Depends(require_token)])
    install_docs(app)
    app.mount("/", StaticFiles(directory=STATIC, html=True), name="ui")
    return app
