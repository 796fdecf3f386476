"""Answers about what runs behind the API (5xx, a refused configuration) say what failed,
not where it runs: the object store's endpoint (and any other internal address) stays in
the server's log."""

from __future__ import annotations

import logging
import socket
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from flowforge.settings import Settings
from flowforge.storage import ObjectStore
from orchestrator.api.errors import WITHHELD
from tests.api.conftest import api_alone
from tests.api.test_errors import error_of


def closed_port() -> int:
    """A loopback port nothing listens on (connections are refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_an_unreachable_store_is_503_without_its_endpoint(
    settings: Settings, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    endpoint = f"http://127.0.0.1:{closed_port()}"
    unreachable = settings.model_copy(update={"s3_endpoint_url": endpoint, "s3_max_attempts": 1})
    with (
        caplog.at_level(logging.WARNING, logger="orchestrator.api.errors"),
        api_alone(unreachable, ObjectStore(unreachable), tmp_path) as (url, _),
    ):
        response = httpx.get(f"{url}/api/dimensions", timeout=30)
    message = error_of(response, 503)
    assert "object store" in message and WITHHELD in message
    host_and_port = endpoint.removeprefix("http://")
    assert host_and_port not in response.text and "127.0.0.1" not in response.text
    logged = [str(getattr(r, "error", "")) for r in caplog.records]
    assert any(endpoint in line for line in logged), logged  # the operator still sees it


def test_credentials_the_store_refuses_are_named_without_its_endpoint(
    settings: Settings, tmp_path: Path
) -> None:
    """A configuration fault behind the API (a wrong S3 secret: 409) is told the same way."""
    wrong = settings.model_copy(update={"s3_secret_access_key": SecretStr("not-the-secret")})
    with api_alone(wrong, ObjectStore(wrong), tmp_path) as (url, _):
        response = httpx.get(f"{url}/api/dimensions", timeout=30)
    message = error_of(response, 409)
    assert "refused the configured credentials" in message and WITHHELD in message
    assert str(settings.s3_endpoint_url) not in response.text
    assert "not-the-secret" not in response.text
