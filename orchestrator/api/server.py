"""`flowforge serve api`: the app under uvicorn."""

from __future__ import annotations

import logging

import uvicorn

from flowforge.settings import Settings
from orchestrator.api.app import create_app

log = logging.getLogger(__name__)


def serve_api(settings: Settings, host: str, port: int) -> None:
    """Blocks until SIGINT/SIGTERM."""
    from flowforge.cli import prepare_store

    app = create_app(settings, objects=prepare_store(settings, keep_trying=True))
    log.info("serving", extra={"service": "api", "address": f"{host}:{port}"})
    uvicorn.run(
        app, host=host, port=port, log_config=None, timeout_graceful_shutdown=5, proxy_headers=False
    )
