"""DuckDB connections that read and write the object store through the httpfs extension."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import duckdb

from flowforge.errors import FailedPrecondition
from flowforge.settings import Settings

SECRET_NAME = "flowforge_s3"
# DuckDB's allowed_paths/allowed_directories compare URLs as text: `run=R/../../silver/x`
# passes a check on `run=R/` and the store resolves it elsewhere. Escaped separators and
# dots, backslashes and query strings (httpfs reads settings from them) are refused too.
_UNSAFE_URL = re.compile(r"(^|/)\.{1,2}(/|$)|%(2f|5c|2e)|[\\?#]|[\x00-\x1f]", re.IGNORECASE)


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


def checked_url(url: str) -> str:
    """The URL or path unchanged when DuckDB may see it; FailedPrecondition when it holds a
    `.` or `..` segment, an escaped slash, backslash or dot, a query string or a control
    character."""
    path = url.split("://", 1)[1] if "://" in url else url
    if _UNSAFE_URL.search(path):
        raise FailedPrecondition(
            f"refusing {url!r}: object keys and paths given to DuckDB may not hold '.' or "
            "'..' segments, escaped slashes or dots, backslashes or query strings"
        )
    return url


def duckdb_url(settings: Settings, key: str) -> str:
    """The s3:// URL of an object key (as flowforge.storage.s3_url writes it, without
    loading boto3 into every gold build's process), checked for DuckDB (see checked_url)."""
    return checked_url(f"s3://{settings.s3_bucket}/{key}")


def read_parquet_sql(urls: list[str]) -> str:
    """A SELECT over these Parquet files as one table: parts matched by column name, and
    hive partitioning off, so a run=... folder does not turn into a column."""
    files = ", ".join(sql_literal(checked_url(url)) for url in urls)
    return f"SELECT * FROM read_parquet([{files}], union_by_name = true, hive_partitioning = false)"


def connect(settings: Settings, config: dict[str, Any] | None = None) -> duckdb.DuckDBPyConnection:
    """A fresh in-memory database with httpfs loaded and the store's credentials as a secret."""
    con = open_database(config)
    try:
        add_s3_secret(con, settings)
    except BaseException:
        con.close()
        raise
    return con


def open_database(config: dict[str, Any] | None = None) -> duckdb.DuckDBPyConnection:
    """A fresh in-memory database with httpfs loaded and no credentials yet.

    Extensions never load or install themselves, Python variables are never visible to
    SQL as tables (DuckDB's replacement scans), and secrets stored in the home folder
    (~/.duckdb/stored_secrets) are never loaded, whatever the query says.
    """
    con = duckdb.connect(
        ":memory:",
        config={
            "autoinstall_known_extensions": False,
            "autoload_known_extensions": False,
            "python_enable_replacements": False,
            "allow_persistent_secrets": False,
            **(config or {}),
        },
    )
    try:
        con.execute(f"LOAD {sql_literal(str(httpfs_extension_path()))}")
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
