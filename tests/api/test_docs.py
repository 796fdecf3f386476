"""The OpenAPI document is behind the token; /docs is Swagger UI served by the API itself
(no CDN: it works on an offline machine); ReDoc is not served."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import httpx
import pytest

from tests.api.conftest import Api

# Every URL in an HTML attribute or a JS import/string that names a scheme or a host.
ABSOLUTE = re.compile(r"""(?:https?:)?//[\w.-]+""")
REFERENCES = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']|from\s+["']([^"']+)["']""")


@pytest.fixture
def bare(api: Api) -> httpx.Client:
    with httpx.Client(base_url=api.url, timeout=30) as client:
        yield client  # type: ignore[misc]


def test_the_openapi_document_needs_the_token(api: Api, bare: httpx.Client) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic abc"}):
        refused = bare.get("/openapi.json", headers=headers)
        assert refused.status_code == 401, refused.text
        assert refused.json()["error"]["code"] == "UNAUTHENTICATED"
        assert "paths" not in refused.text
    token = api.client.headers["Authorization"].split(" ", 1)[1]
    # ?access_token= is for the events stream only.
    assert bare.get("/openapi.json", params={"access_token": token}).status_code == 401

    spec = api.client.get("/openapi.json")
    assert spec.status_code == 200, spec.text
    document = spec.json()
    assert document["openapi"].startswith("3.") and "/api/jobs" in document["paths"]
    # The document, the docs page and their assets are not API operations.
    assert not {"/openapi.json", "/docs"} & set(document["paths"])


def test_redoc_is_not_served(bare: httpx.Client) -> None:
    assert bare.get("/redoc").status_code == 404
    assert bare.get("/docs/oauth2-redirect").status_code == 404


def test_the_docs_page_loads_only_from_this_api(api: Api, bare: httpx.Client) -> None:
    page = bare.get("/docs")  # public: it holds no data, the document it loads is not
    assert page.status_code == 200, page.text
    assert page.headers["content-type"].startswith("text/html")
    html = page.text
    assert not ABSOLUTE.findall(html), "the docs page names another host"
    references = [a or b for a, b in REFERENCES.findall(html)]
    assert "/docs/assets/swagger-ui-bundle.js" in references
    assert "/docs/assets/swagger-ui.css" in references
    scripts = [ref for ref in references if ref.endswith(".js")]
    for reference in references:
        assert urlsplit(reference).netloc == "" and reference.startswith("/"), reference
        served = bare.get(reference)
        assert served.status_code == 200, reference

    # The page's own script: no other host either, and the token the web UI saved.
    for script in scripts:
        if script.startswith("/docs/assets/"):
            continue
        code = bare.get(script).text
        assert not ABSOLUTE.findall(code), f"{script} names another host"
        assert "SwaggerUIBundle(" in code and 'url: "/openapi.json"' in code
        assert "requestInterceptor" in code and "getToken" in code
        imported = [b for _, b in REFERENCES.findall(code) if b]
        assert imported == ["./api.js"]
        api_js = bare.get("/api.js").text
        assert 'const TOKEN_KEY = "flowforge.token"' in api_js
        assert "export function getToken" in api_js


def test_the_swagger_ui_assets_are_served(bare: httpx.Client) -> None:
    bundle = bare.get("/docs/assets/swagger-ui-bundle.js")
    assert bundle.status_code == 200
    assert "javascript" in bundle.headers["content-type"]
    assert "SwaggerUIBundle" in bundle.text
    css = bare.get("/docs/assets/swagger-ui.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    assert bare.get("/docs/assets/nope.js").status_code == 404
