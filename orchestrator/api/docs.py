"""The OpenAPI document and its Swagger UI, served by the API itself.

`/openapi.json` needs the bearer token when one is set (it describes the whole API). `/docs`
is Swagger UI 5 from the files the `fastapi-offline` package ships (swagger-ui-bundle.js,
swagger-ui.css), served under /docs/assets, so it works on a machine with no internet access
(the `swagger-ui-bundle` package ships Swagger UI 4, which cannot read OpenAPI 3.1). The page
holds no data: its script (static/docs.js) adds the token the web UI saved to every request
Swagger UI makes, the document and "Try it out". ReDoc is not served."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from orchestrator.api.context import require_token

STATIC = Path(__file__).parent / "static"
OPENAPI_URL = "/openapi.json"
DOCS_URL = "/docs"
ASSETS_URL = "/docs/assets"
# swagger-ui-bundle.js, swagger-ui.css, favicon.png (and ReDoc's bundle, not used).
SWAGGER_UI = Path(str(files("fastapi_offline") / "static"))


def install_docs(app: FastAPI) -> None:
    """Adds /openapi.json (token-checked), /docs and /docs/assets; call before mounting "/".
    The app is made with openapi_url, docs_url and redoc_url set to None."""

    @app.get(OPENAPI_URL, include_in_schema=False, dependencies=[Depends(require_token)])
    def openapi() -> JSONResponse:
        schema: dict[str, Any] = app.openapi()
        return JSONResponse(schema)

    @app.get(DOCS_URL, include_in_schema=False)
    def docs() -> FileResponse:
        return FileResponse(STATIC / "docs.html", media_type="text/html")

    app.mount(ASSETS_URL, StaticFiles(directory=SWAGGER_UI), name="swagger-ui")
