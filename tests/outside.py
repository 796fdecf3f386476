"""Readers with no FlowForge code: what an analyst's polars (delta-rs) and DuckDB (with its
delta extension) need to read FlowForge's tables, written out by hand."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import duckdb_extension_delta
import duckdb_extension_httpfs

from flowforge.settings import Settings


def outside_options(settings: Settings) -> dict[str, str]:
    """What any delta-rs reader needs, written out here: no FlowForge code."""
    return {
        "aws_endpoint_url": settings.s3_endpoint_url or "",
        "aws_access_key_id": settings.s3_access_key_id or "",
        "aws_secret_access_key": settings.s3_secret_access_key.get_secret_value(),  # type: ignore[union-attr]
        "aws_region": "us-east-1",
        "aws_allow_http": "true",
    }


def duckdb_with_delta(settings: Settings) -> duckdb.DuckDBPyConnection:
    """DuckDB with httpfs and delta loaded by path (their packages ship them) and the store
    as an S3 secret."""
    con = duckdb_extensions()
    host = (settings.s3_endpoint_url or "").removeprefix("http://")
    con.execute(
        "CREATE SECRET store (TYPE s3, KEY_ID $k, SECRET $s, REGION 'us-east-1', "
        "ENDPOINT $e, URL_STYLE 'path', USE_SSL false)",
        {
            "k": settings.s3_access_key_id,
            "s": settings.s3_secret_access_key.get_secret_value(),  # type: ignore[union-attr]
            "e": host,
        },
    )
    return con


def duckdb_extensions() -> duckdb.DuckDBPyConnection:
    """DuckDB with httpfs and delta loaded by path (their packages ship them; `INSTALL`
    would download them), no secret yet."""
    version = f"v{duckdb.__version__}"
    extensions = [
        Path(package.__file__).parent / "extensions" / version / f"{name}.duckdb_extension"
        for package, name in (
            (duckdb_extension_httpfs, "httpfs"),
            (duckdb_extension_delta, "delta"),
        )
    ]
    con = duckdb.connect(config={"autoinstall_known_extensions": False})
    for path in extensions:
        assert path.is_file(), f"missing DuckDB extension {path}"
        con.execute(f"LOAD '{path}'")
    return con


def duckdb_rows(con: duckdb.DuckDBPyConnection, uri: str, version: int | None = None) -> Any:
    at = f", version => {int(version)}" if version is not None else ""
    return con.sql(f"SELECT * FROM delta_scan('{uri}'{at})").pl()
