"""Read access for analysts: a DuckDB snippet that reads a workflow's gold tables with the
read-only analyst identity (silver/ and gold/ only), printed by `flowforge up` and
`flowforge analyst`."""

from __future__ import annotations

from urllib.parse import urlsplit

from flowforge.duckdb_s3 import sql_literal
from flowforge.errors import FailedPrecondition
from flowforge.layout import JobKey
from flowforge.settings import Settings
from flowforge.specs.gold import PROFILE_MODEL
from flowforge.tables import TableRef
from orchestrator.workflows import Workflow

SECRET_NAME = "flowforge_analyst"
EXTENSIONS = "INSTALL httpfs; LOAD httpfs; INSTALL delta; LOAD delta;"


def gold_tables(workflow: Workflow) -> list[TableRef]:
    """Every gold table the workflow's executions write: each job's models (and its profile
    unless skipped), then the workflow's own models."""
    refs = []
    for job in workflow.jobs:
        key = JobKey(workflow.id, job.id)
        names = [m.name for m in job.gold.models]
        if not job.gold.skip_profile:
            names.append(PROFILE_MODEL)
        refs += [TableRef.gold_model(key, name) for name in names]
    if workflow.gold is not None:
        refs += [TableRef.workflow_model(workflow.id, m.name) for m in workflow.gold.models]
    return refs


def create_secret_sql(settings: Settings) -> str:
    """CREATE SECRET with the analyst identity's keys and the store's endpoint (settings
    already for_component("analyst"))."""
    secret = settings.s3_secret_access_key
    options = [
        "TYPE s3",
        f"KEY_ID {sql_literal(settings.s3_access_key_id or '')}",
        f"SECRET {sql_literal(secret.get_secret_value() if secret else '')}",
        f"REGION {sql_literal(settings.s3_region)}",
    ]
    if settings.s3_endpoint_url:
        endpoint = urlsplit(settings.s3_endpoint_url)
        options += [
            f"ENDPOINT {sql_literal(endpoint.netloc)}",
            "URL_STYLE 'path'",
            f"USE_SSL {str(endpoint.scheme == 'https').lower()}",
        ]
    return f"CREATE SECRET {SECRET_NAME} ({', '.join(options)});"


def duckdb_snippet(settings: Settings, tables: list[TableRef]) -> str:
    """SQL for the DuckDB CLI or duckdb.sql(): the extensions, the analyst's secret, then
    one SELECT per table (each reads the table's current version). Never with the shared
    identity's keys: without the analyst's own, FailedPrecondition."""
    if not settings.s3_analyst_access_key_id or settings.s3_analyst_secret_access_key is None:
        raise FailedPrecondition(
            "no analyst identity: set FLOWFORGE_S3_ANALYST_ACCESS_KEY_ID and "
            "FLOWFORGE_S3_ANALYST_SECRET_ACCESS_KEY (a read-only identity for silver/ and gold/)"
        )
    analyst = settings.for_component("analyst")
    lines = [EXTENSIONS, create_secret_sql(analyst)]
    lines += [f"SELECT * FROM delta_scan({sql_literal(ref.uri(settings))});" for ref in tables]
    return "\n".join(lines)
