"""DuckDB connections that read and write the object store through the httpfs extension."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import duckdb

from flowforge.errors import FailedPrecondition
from flowforge.settings import Settings

SECRET_NAME = "flowforge_s3"


def httpfs_extension_path() -> Path:
    """The httpfs build shipped by the `duckdb-extension-httpfs` package for this DuckDB.

    Loaded by path: `INSTALL httpfs` would download it, which a server must not depend on.
    """
    import duckdb_extension_httpfs

    version = duckdb.__version__
    path = (
        Path(duckdb_extension_httpfs.__file__).parent
        / "extensions"
        / f"v{version}"
        / "httpfs.duckdb_extension"
    )
    if not path.is_file():
        raise FailedPrecondition(
            f"the DuckDB httpfs extension for DuckDB {version} is missing: "
            f"install duckdb-extension-httpfs=={version}"
        )
    return path


def sql_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def sql_identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def read_parquet_sql(urls: list[str]) -> str:
    """A SELECT over these Parquet files as one table: parts matched by column name, and
    hive partitioning off, so a run=... folder does not turn into a column."""
    files = ", ".join(sql_literal(url) for url in urls)
    return f"SELECT * FROM read_parquet([{files}], union_by_name = true, hive_partitioning = false)"


def connect(settings: Settings, config: dict[str, Any] | None = None) -> duckdb.DuckDBPyConnection:
    """A fresh in-memory database with httpfs loaded and the store's credentials as a secret.

    Extensions never load or install themselves, and Python variables are never visible to
    SQL as tables (DuckDB's replacement scans), whatever the query says.
    """
    con = duckdb.connect(
        ":memory:",
        config={
            "autoinstall_known_extensions": False,
            "autoload_known_extensions": False,
            "python_enable_replacements": False,
            **(config or {}),
        },
    )
    try:
        con.execute(f"LOAD {sql_literal(str(httpfs_extension_path()))}")
        add_s3_secret(con, settings)
    except BaseException:
        con.close()
        raise
    return con


def add_s3_secret(con: duckdb.DuckDBPyConnection, settings: Settings) -> None:
    """Registers the store's endpoint and keys as a DuckDB secret, passed as bound
    parameters: the key never appears in SQL text, settings or DuckDB's messages."""
    options = ["TYPE s3", "REGION $region"]
    values: dict[str, Any] = {"region": settings.s3_region}
    if settings.s3_access_key_id:
        options.append("KEY_ID $key_id")
        values["key_id"] = settings.s3_access_key_id
    if settings.s3_secret_access_key is not None:
        options.append("SECRET $secret")
        values["secret"] = settings.s3_secret_access_key.get_secret_value()
    if settings.s3_endpoint_url:
        endpoint = urlsplit(settings.s3_endpoint_url)
        options += ["ENDPOINT $endpoint", "URL_STYLE 'path'", "USE_SSL $ssl"]
        values |= {"endpoint": endpoint.netloc, "ssl": endpoint.scheme == "https"}
    try:
        con.execute(f"CREATE SECRET {SECRET_NAME} ({', '.join(options)})", values)
    except duckdb.Error:
        raise FailedPrecondition(
            "DuckDB refused the object store settings (endpoint, region or keys)"
        ) from None


def scrub(text: str, settings: Settings) -> str:
    """Removes the secret key from a message that came back from the engine."""
    secret = settings.s3_secret_access_key
    if secret is not None and secret.get_secret_value():
        text = text.replace(secret.get_secret_value(), "[redacted]")
    return text
