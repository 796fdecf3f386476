"""Preview rows as JSON a browser reads exactly: 64-bit integers as text (JavaScript's
numbers are exact only to 2^53), the OpenAPI document saying so."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl

from flowforge.settings import Settings
from flowforge.storage import ObjectStore
from orchestrator.api.app import create_app
from orchestrator.api.outputs import json_rows
from orchestrator.store import Store
from orchestrator.store.database import open_engine

ABOVE_2_53 = 2**53 + 1  # the first integer a JavaScript number cannot hold


def test_64_bit_integers_are_text_whatever_their_value() -> None:
    frame = pl.DataFrame(
        {
            "_row_hash": pl.Series([ABOVE_2_53, 2**64 - 1, 7], dtype=pl.UInt64),
            "signed": pl.Series([-(2**63), None, 7], dtype=pl.Int64),
            "small": pl.Series([1, 2, 3], dtype=pl.Int32),
            "ratio": [0.5, 1.0, 2.0],
        }
    )
    rows = json.loads(json.dumps(json_rows(frame)))
    assert [row["_row_hash"] for row in rows] == [str(ABOVE_2_53), str(2**64 - 1), "7"]
    assert [row["signed"] for row in rows] == [str(-(2**63)), None, "7"]
    # Types JavaScript holds exactly stay numbers.
    assert [row["small"] for row in rows] == [1, 2, 3]
    assert [row["ratio"] for row in rows] == [0.5, 1.0, 2.0]


def test_the_openapi_document_says_so(
    settings: Settings, store: ObjectStore, tmp_path: Path
) -> None:
    database = Store(open_engine(f"sqlite:///{tmp_path / 'ff.db'}"))
    try:
        document = create_app(settings, store=database, objects=store).openapi()
    finally:
        database.close()
    schemas = document["components"]["schemas"]
    described = schemas["Preview"]["properties"]["preview"]["description"]
    assert "64-bit integers" in described and "strings" in described
    complete = schemas["LogPage"]["properties"]["complete"]
    assert complete["type"] == "boolean" and "more lines may arrive" in complete["description"]
