"""The generated reference pages match the code: the API page its OpenAPI document, the
configuration page the settings model (regenerate with `make docs`)."""

from __future__ import annotations

import pytest

from cli.reference import pages


@pytest.mark.parametrize("page", ["api.md", "configuration.md"])
def test_reference_page_is_current(page: str) -> None:
    rendered = {path.name: (path, text) for path, text in pages().items()}
    path, text = rendered[page]
    assert path.read_text(encoding="utf-8") == text, f"{path} is stale: run `make docs`"
