"""The browser test's fixtures: Debian's headless chromium, and the API of tests/api (the
real stack, a served deployment, uvicorn on a free port, a bearer token)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from tests.api.conftest import (  # noqa: F401 (the API's fixtures, by name)
    TOKEN,
    Api,
    api,
    served,
)
from tests.conftest import require
from tests.orchestrator.conftest import (  # noqa: F401 (the orchestrator's fixtures, by name)
    postgres_schema_url,
    sample_workflow,
    stack,
)

CHROMIUM = Path("/usr/bin/chromium")
OUTPUT = Path(__file__).resolve().parents[1] / "output"
# Every load or inline code the API's Content-Security-Policy refuses, as the page saw it.
RECORD_CSP_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) =>
  window.__cspViolations.push(`${e.violatedDirective} ${e.blockedURI}`));
"""


def csp_violations(page: Page) -> list[str]:
    return page.evaluate("window.__cspViolations")  # type: ignore[no-any-return]


@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    """Debian's headless chromium through Playwright (Playwright never downloads one)."""
    require(CHROMIUM.exists(), "no /usr/bin/chromium: install Debian's `apt-get install chromium`")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--headless", "--no-sandbox", "--disable-background-networking"],
        )
        try:
            yield browser
        finally:
            browser.close()
