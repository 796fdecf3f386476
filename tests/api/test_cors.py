"""CORS: with FLOWFORGE_API_CORS_ORIGINS set, a browser page served from a named origin may
call the API (preflight answered, its origin echoed); any other origin is not allowed. By
default (empty) the API sends no CORS headers at all."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from pydantic import SecretStr

from flowforge.settings import Settings
from orchestrator.api.app import create_app
from tests.api.conftest import TOKEN, Api, ApiServer

ALLOWED = "http://ui.example.test:3000"
OTHER = "http://evil.example.test"


def preflight(client: httpx.Client, origin: str, path: str = "/api/jobs") -> httpx.Response:
    """What a browser sends before a GET with the Authorization header (no token on it)."""
    return client.options(
        path,
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "authorization",
        },
    )


def cors_headers(response: httpx.Response) -> dict[str, str]:
    return {k: v for k, v in response.headers.items() if k.startswith("access-control-")}


@pytest.fixture(scope="module")
def with_origins(api: Api) -> Iterator[httpx.Client]:
    """The API with FLOWFORGE_API_CORS_ORIGINS naming one origin, read as an operator sets
    it (a JSON list in the environment), and the token of the other tests."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FLOWFORGE_API_CORS_ORIGINS", f'["{ALLOWED}"]')
        origins = Settings(_env_file=None).api_cors_origins  # type: ignore[call-arg]
    assert origins == [ALLOWED]
    settings = api.stack.settings.model_copy(
        update={"api_cors_origins": origins, "api_token": SecretStr(TOKEN)}
    )
    app = create_app(settings, store=api.stack.store, objects=api.stack.object_store)
    with ApiServer(app) as url, httpx.Client(base_url=url, timeout=30) as client:
        yield client


def test_an_allowed_origin_may_call_the_api(with_origins: httpx.Client) -> None:
    answered = preflight(with_origins, ALLOWED)
    assert answered.status_code == 200, answered.text  # before the token check: no token sent
    assert answered.headers["access-control-allow-origin"] == ALLOWED
    assert "GET" in answered.headers["access-control-allow-methods"]
    assert "authorization" in answered.headers["access-control-allow-headers"].lower()
    upload = preflight(with_origins, ALLOWED, "/api/dimensions/rates")
    assert upload.status_code == 200 and upload.headers["access-control-allow-origin"] == ALLOWED

    listed = with_origins.get(
        "/api/jobs", headers={"Origin": ALLOWED, "Authorization": f"Bearer {TOKEN}"}
    )
    assert listed.status_code == 200, listed.text
    assert listed.headers["access-control-allow-origin"] == ALLOWED
    # The token is still needed: CORS lets the page ask, not skip it.
    refused = with_origins.get("/api/jobs", headers={"Origin": ALLOWED})
    assert refused.status_code == 401


def test_another_origin_is_not_allowed(with_origins: httpx.Client) -> None:
    answered = preflight(with_origins, OTHER)
    assert answered.status_code == 400, answered.text
    assert "access-control-allow-origin" not in answered.headers
    # A simple request gets its answer, but no header letting the browser show it.
    listed = with_origins.get(
        "/api/jobs", headers={"Origin": OTHER, "Authorization": f"Bearer {TOKEN}"}
    )
    assert listed.status_code == 200
    assert "access-control-allow-origin" not in listed.headers


def test_by_default_no_cors_headers_are_sent(api: Api) -> None:
    assert api.stack.settings.api_cors_origins == []
    with httpx.Client(base_url=api.url, timeout=30) as bare:
        answered = preflight(bare, ALLOWED)
        assert answered.status_code == 405, answered.text  # no CORS layer answers OPTIONS
        assert cors_headers(answered) == {}
    listed = api.client.get("/api/jobs", headers={"Origin": ALLOWED})
    assert listed.status_code == 200
    assert cors_headers(listed) == {}
