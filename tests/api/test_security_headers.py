"""Every response carries a Content-Security-Policy that allows this origin only, refuses
framing and sniffing; the UI's and /docs' pages load nothing that policy would refuse (the
browser tests in tests/ui load them for real and record violations)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import httpx
import pytest

from flowforge.settings import Settings
from flowforge.storage import ObjectStore
from orchestrator.api.headers import CONTENT_SECURITY_POLICY
from tests.api.conftest import api_alone

STATIC = Path(__file__).resolve().parents[2] / "orchestrator" / "api" / "static"
PAGES = ["/", "/index.html", "/docs"]
FILES = ["/app.js", "/app.css", "/docs.js", "/docs.css", "/docs/assets/swagger-ui-bundle.js",
         "/docs/assets/swagger-ui.css"]  # fmt: skip
OTHERS = ["/healthz", "/api/jobs", "/api/no-such-route", "/nope.js"]


@pytest.fixture(scope="module")
def url(
    settings: Settings, store: ObjectStore, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    with api_alone(settings, store, tmp_path_factory.mktemp("api-headers")) as (served, _):
        yield served


def directives(policy: str) -> dict[str, list[str]]:
    parts = (part.split() for part in policy.split(";") if part.strip())
    return {words[0]: words[1:] for words in parts}


@pytest.mark.parametrize("path", PAGES + FILES + OTHERS)
def test_every_response_has_the_security_headers(url: str, path: str) -> None:
    response = httpx.get(f"{url}{path}")
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    policy = directives(response.headers["Content-Security-Policy"])
    assert policy["frame-ancestors"] == ["'none'"]
    assert policy["default-src"] == ["'self'"]
    for directive in ("script-src", "style-src", "connect-src"):
        assert policy[directive] == ["'self'"], directive  # no inline code, no other host


class Page(HTMLParser):
    """What a page loads and runs, as the policy sees it."""

    def __init__(self) -> None:
        super().__init__()
        self.sources: list[str] = []
        self.inline: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "style":
            self.inline.append("<style>")
        if tag == "script" and not found.get("src"):
            self.inline.append("<script> without src")
        if "style" in found:
            self.inline.append(f"style= on <{tag}>")
        self.inline += [f"{name}= on <{tag}>" for name in found if name.startswith("on")]
        for name in ("src", "href"):
            if found.get(name):
                self.sources.append(str(found[name]))


@pytest.mark.parametrize("path", ["/", "/docs"])
def test_the_pages_load_only_what_the_policy_allows(url: str, path: str) -> None:
    page = Page()
    page.feed(httpx.get(f"{url}{path}").text)
    assert page.inline == [], "inline code or style the policy refuses"
    for source in page.sources:
        assert not re.match(r"^(\w+:)?//", source), f"{source} is on another host"
        assert httpx.get(f"{url}/{source.lstrip('/')}").status_code == 200, source
    # The UI's own scripts set no inline style and evaluate no text as code.
    for script in STATIC.glob("*.js"):
        code = script.read_text()
        for refused in ("eval(", "new Function", ".innerHTML", 'setAttribute("style"'):
            assert refused not in code, f"{script.name}: {refused}"
    assert "'unsafe-inline'" not in CONTENT_SECURITY_POLICY
    assert "'unsafe-eval'" not in CONTENT_SECURITY_POLICY
