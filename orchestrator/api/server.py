"""`flowforge serve api`: the app under uvicorn."""

from __future__ import annotations

import logging

import uvicorn

from flowforge.settings import Settings
from flowforge.storage import prepare_store
from orchestrator.api.app import create_app

log = logging.getLogger(__name__)


def serve_api(settings: Settings, host: str, port: int) -> None:
    """Blocks until SIGINT/SIGTERM."""
    app = create_app(settings, objects=prepare_store(settings, keep_trying=True))
    log.info("serving", extra={"service": "api", "address": f"{host}:{port}"})
    uvicorn.run(
        app, host=host, port=port, log_config=None, timeout_graceful_shutdown=5, proxy_headers=False
    )
