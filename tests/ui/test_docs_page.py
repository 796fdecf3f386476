"""/docs in real headless Chromium: Swagger UI loads from the API alone (every other host is
refused), and its requests carry the token the web UI saved (the document and Try it out)."""

from __future__ import annotations

from urllib.parse import urlsplit

from playwright.sync_api import Browser, Request, Route

from tests.ui.conftest import OUTPUT, RECORD_CSP_VIOLATIONS, TOKEN, Api, csp_violations


def test_swagger_ui_works_offline_with_the_saved_token(api: Api, browser: Browser) -> None:
    page = browser.new_page(viewport={"width": 1366, "height": 768})
    page.set_default_timeout(60_000)
    own = urlsplit(api.url).netloc
    elsewhere: list[str] = []

    def offline(route: Route) -> None:
        if urlsplit(route.request.url).netloc == own:
            route.continue_()
        else:
            elsewhere.append(route.request.url)
            route.abort()

    page.route("**/*", offline)
    sent: dict[str, str | None] = {}

    def record(request: Request) -> None:
        sent[urlsplit(request.url).path] = request.headers.get("authorization")

    page.on("request", record)
    page.add_init_script(RECORD_CSP_VIOLATIONS)  # Swagger UI under the API's policy

    # No token saved: the document is refused, and the page says so.
    page.goto(f"{api.url}/docs")
    page.get_by_text("Failed to load API definition").wait_for()
    assert sent["/openapi.json"] is None

    # The token saved as the web UI saves it: the document loads, Try it out sends it too.
    page.evaluate("token => localStorage.setItem('flowforge.token', token)", TOKEN)
    page.goto(f"{api.url}/docs")
    page.locator(".opblock").first.wait_for()
    assert sent["/openapi.json"] == f"Bearer {TOKEN}"
    jobs = page.locator("#operations-jobs-list_jobs_api_jobs_get")  # tag, operationId
    jobs.locator(".opblock-summary").first.click()
    page.get_by_role("button", name="Try it out").click()
    with page.expect_response(lambda r: urlsplit(r.url).path == "/api/jobs") as answer:
        page.get_by_role("button", name="Execute").click()
    assert answer.value.status == 200
    assert sent["/api/jobs"] == f"Bearer {TOKEN}"
    OUTPUT.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(OUTPUT / "docs.png"), full_page=False)
    assert elsewhere == []
    assert csp_violations(page) == []
    page.close()
