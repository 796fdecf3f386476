"""FlowForge settings: one object, read from FLOWFORGE_* environment variables and .env."""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from flowforge.ids import ID_PATTERN

# A size as DuckDB reads it: 512MB, 2GB, 1.5GiB.
_BYTES = r"^\d+(\.\d+)?\s*([KMGT]i?B|B)$"
_UNITS = {"B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12}
_UNITS |= {"KiB": 2**10, "MiB": 2**20, "GiB": 2**30, "TiB": 2**40}


def byte_size(text: str) -> int:
    """Bytes in a size written as DuckDB reads it (KB = 1000 bytes, KiB = 1024)."""
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([KMGT]i?B|B)", text.strip())
    if match is None:
        raise ValueError(f"{text!r} is not a size such as 512MB or 2GiB")
    return int(float(match[1]) * _UNITS[match[2]])


class ApiToken(BaseModel):
    """One scoped API token: admin (everything), or read or run on one workflow."""

    model_config = ConfigDict(extra="forbid")
    token: SecretStr = Field(min_length=16)
    scope: Literal["admin", "read", "run"]
    workflow: str | None = Field(default=None, pattern=f"^{ID_PATTERN}$")

    @model_validator(mode="after")
    def _workflow_with_its_scope(self) -> ApiToken:
        if (self.scope == "admin") != (self.workflow is None):
            raise ValueError("a read or run token names its workflow; an admin token none")
        return self


class Settings(BaseSettings):
    """Every setting FlowForge reads. `.env.example` lists each key with its default."""

    model_config = SettingsConfigDict(
        env_prefix="FLOWFORGE_",
        env_file=".env",
        env_file_encoding="utf-8",
        env_ignore_empty=True,
        extra="ignore",
    )

    # Object store. These names are relied on by the compose file, the docs and operators.
    s3_endpoint_url: str | None = Field(
        default=None,
        description="S3 endpoint URL, e.g. http://127.0.0.1:8333. Empty: AWS S3.",
    )
    s3_region: str = Field(default="us-east-1", description="S3 region.")
    s3_bucket: str = Field(default="flowforge-data", description="The bucket holding every layer.")
    s3_access_key_id: str | None = Field(default=None, description="S3 access key id.")
    s3_secret_access_key: SecretStr | None = Field(default=None, description="S3 secret key.")
    s3_create_bucket: bool = Field(
        default=True, description="Create the bucket on start when it is missing."
    )
    # One identity per component (flowforge/identities.py): each falls back to the shared
    # identity above when its access key id is not set.
    s3_bronze_access_key_id: str | None = Field(
        default=None,
        description="Bronze's own S3 identity (reads landing/, writes bronze/). "
        "Empty: the shared FLOWFORGE_S3_ACCESS_KEY_ID.",
    )
    s3_bronze_secret_access_key: SecretStr | None = Field(
        default=None, description="Secret key of bronze's own S3 identity."
    )
    s3_silver_access_key_id: str | None = Field(
        default=None,
        description="Silver's own S3 identity (reads bronze/, writes silver/). "
        "Empty: the shared FLOWFORGE_S3_ACCESS_KEY_ID.",
    )
    s3_silver_secret_access_key: SecretStr | None = Field(
        default=None, description="Secret key of silver's own S3 identity."
    )
    s3_gold_access_key_id: str | None = Field(
        default=None,
        description="Gold's own S3 identity (reads silver/ and dimensions/, writes gold/). "
        "Empty: the shared FLOWFORGE_S3_ACCESS_KEY_ID.",
    )
    s3_gold_secret_access_key: SecretStr | None = Field(
        default=None, description="Secret key of gold's own S3 identity."
    )
    s3_analyst_access_key_id: str | None = Field(
        default=None,
        description="The read-only identity for analysts (reads silver/ and gold/): "
        "`flowforge analyst` prints a DuckDB snippet with it.",
    )
    s3_analyst_secret_access_key: SecretStr | None = Field(
        default=None, description="Secret key of the analysts' read-only S3 identity."
    )
    s3_connect_timeout_seconds: float = Field(default=5.0, description="S3 connect timeout.")
    s3_read_timeout_seconds: float = Field(default=60.0, description="S3 read timeout.")
    s3_max_attempts: int = Field(
        default=3, description="S3 attempts per request before the layer reports UNAVAILABLE."
    )

    # Local state (embedded S3 data, SQLite files, logs).
    state_dir: Path = Field(
        default=Path(".flowforge"), description="Folder for local state (embedded stack)."
    )

    # gRPC servers.
    grpc_host: str = Field(default="127.0.0.1", description="Default bind host for services.")
    grpc_max_workers: int = Field(default=8, description="Concurrent RPCs per service.")
    grpc_grace_seconds: float = Field(
        default=30.0, description="How long SIGTERM waits for in-flight requests."
    )
    grpc_token: SecretStr | None = Field(
        default=None, description="When set, every RPC but health needs 'authorization: Bearer'."
    )
    grpc_tls_cert_file: Path | None = Field(default=None, description="Server certificate (PEM).")
    grpc_tls_key_file: Path | None = Field(default=None, description="Server private key (PEM).")
    grpc_tls_ca_file: Path | None = Field(
        default=None,
        description="CA bundle: servers require client certificates signed by it (mutual TLS); "
        "clients verify servers with it.",
    )
    grpc_tls_client_cert_file: Path | None = Field(
        default=None, description="Client certificate for mutual TLS (orchestrator side)."
    )
    grpc_tls_client_key_file: Path | None = Field(
        default=None, description="Client private key for mutual TLS (orchestrator side)."
    )

    # Bronze.
    bronze_part_target_mb: int = Field(
        default=64, description="CSV megabytes per bronze Parquet part (bounds memory)."
    )
    bronze_block_size_mb: int = Field(
        default=8,
        description="CSV parser block size; peak memory grows with it (8 MB: under 1 GB peak).",
    )
    bronze_max_field_mb: int = Field(
        default=16,
        ge=1,
        description="Largest CSV field bronze ingests, in MB (its value's UTF-8 bytes); a row "
        "with a larger field is rejected (kind field_too_large) without being held in memory.",
    )

    # Silver.
    silver_memory_limit_mb: int = Field(
        default=2048,
        description="Memory one silver refine may use to deduplicate; larger inputs are split "
        "into hash buckets of the dedupe key on disk, deduplicated one bucket at a time.",
    )
    silver_spill_dir: Path | None = Field(
        default=None,
        description="Where silver keeps rows between its two passes. "
        "Empty: {state_dir}/silver-spill.",
    )

    # Gold.
    gold_memory_limit: str = Field(
        default="2GB",
        pattern=_BYTES,
        description="DuckDB memory limit of one gold build (each request has its own); "
        "beyond it DuckDB spills to disk.",
    )
    gold_process_memory_limit: str = Field(
        default="3GB",
        pattern=_BYTES,
        description="Address space of the process that runs one gold build (an OS limit): "
        "a model needing more, even for one huge value DuckDB cannot spill, fails with "
        "RESOURCE_EXHAUSTED. Leave about 1GB above FLOWFORGE_GOLD_MEMORY_LIMIT: the "
        "process's code, thread stacks and DuckDB's allocations outside its own limit take "
        "some 500MB.",
    )
    gold_threads: int = Field(default=4, ge=1, description="DuckDB threads of one gold build.")
    gold_max_concurrent_builds: int | None = Field(
        default=None,
        ge=1,
        description="Gold builds running at once; a build over the cap waits for a slot "
        "while its deadline allows. Empty: the number of CPU cores.",
    )
    gold_temp_directory: Path | None = Field(
        default=None,
        description="Where gold builds spill beyond their memory limit. "
        "Empty: {state_dir}/gold-spill.",
    )
    gold_max_temp_size: str = Field(
        default="10GB",
        pattern=_BYTES,
        description="How much one gold build may spill before it fails with RESOURCE_EXHAUSTED.",
    )
    gold_model_timeout_seconds: float = Field(
        default=600.0,
        gt=0,
        description="Time limit per gold model (then DEADLINE_EXCEEDED; the build's process is "
        "killed if the query does not stop).",
    )

    @model_validator(mode="after")
    def _gold_process_holds_duckdb(self) -> Settings:
        # DuckDB must reach its own limit (and spill) before the OS refuses it memory.
        if byte_size(self.gold_process_memory_limit) <= byte_size(self.gold_memory_limit):
            raise ValueError(
                f"FLOWFORGE_GOLD_PROCESS_MEMORY_LIMIT={self.gold_process_memory_limit} must "
                f"exceed FLOWFORGE_GOLD_MEMORY_LIMIT={self.gold_memory_limit}"
            )
        return self

    # Orchestrator: the executions store, the services the flow calls, deadlines and retries.
    database_url: SecretStr | None = Field(
        default=None,
        description="Executions store, e.g. postgresql+psycopg://user:pass@host/db. "
        "Empty: SQLite at {state_dir}/flowforge.db.",
    )
    database_reconnect_seconds: float = Field(
        default=30.0,
        ge=0,
        description="How long a store call waits for a lost database connection to come back "
        "(a PostgreSQL restart or failover) before it fails.",
    )
    bronze_address: str = Field(
        default="localhost:50051", description="host:port of the bronze service (gRPC)."
    )
    silver_address: str = Field(
        default="localhost:50052", description="host:port of the silver service (gRPC)."
    )
    gold_address: str = Field(
        default="localhost:50053", description="host:port of the gold service (gRPC)."
    )
    layer_deadline_seconds: float = Field(
        default=3600.0, gt=0, description="Deadline of one layer call (Ingest, Refine, Build)."
    )
    layer_retry_delays_seconds: list[float] = Field(
        default=[2.0, 10.0, 30.0],
        description="Waits before each retry of a layer that failed with UNAVAILABLE, "
        "DEADLINE_EXCEEDED or RESOURCE_EXHAUSTED, unless the service marked the error final "
        "(a gold model over its limits) (JSON list; its length is the retry count).",
    )
    progress_interval_seconds: float = Field(
        default=1.0,
        gt=0,
        description="How often at most the flow records a running layer's progress report "
        "in the executions store (per step; the services stream a few a second).",
    )
    execution_heartbeat_seconds: float = Field(
        default=10.0,
        gt=0,
        description="How often a running flow records that it is alive in the executions store.",
    )
    execution_heartbeat_timeout_seconds: float = Field(
        default=60.0,
        gt=0,
        description="Reconcile marks a RUNNING execution CRASHED when its flow has not "
        "recorded a heartbeat for this long (its orchestrator process was killed or lost).",
    )
    deployment_name: str = Field(
        default="flowforge-medallion/customer-data",
        description="The Prefect deployment `flowforge run` and the API trigger.",
    )
    workflow_deployment_name: str = Field(
        default="flowforge-workflow/customer-data",
        description="The Prefect deployment that runs a whole workflow (`flowforge run "
        "--workflow W` without --job, POST /api/workflows/{w}/executions).",
    )
    workflow_max_parallel_jobs: int = Field(
        default=2,
        ge=1,
        le=64,
        description="How many jobs of a workflow run at once in a workflow run.",
    )

    # Tables: maintenance (`flowforge maintain`, the flowforge-maintenance deployment).
    tables_retention_days: float = Field(
        default=7.0,
        ge=0,
        description="Files a table no longer needs are deleted by maintenance once removed "
        "this long ago (time travel reaches this far back); versions an execution recorded "
        "are kept however old.",
    )
    maintenance_cron: str = Field(
        default="0 3 * * *",
        description="When the served flowforge-maintenance/tables deployment runs (cron, "
        "UTC); 'off': only when started by hand.",
    )

    # Runs that start themselves: upload triggers, schedules, notifications, retention. The
    # loop runs in the API process (`flowforge serve api`).
    automation: bool = Field(
        default=True,
        description="Run upload triggers, the landing scan, the schedule sync and webhook "
        "notifications in this API process (all state is in the executions store, so "
        "several API replicas may run it; turn it off where one should not).",
    )
    landing_scan_seconds: float = Field(
        default=60.0,
        ge=0,
        description="How often the landing prefix of each job with trigger.on_upload is "
        "listed (one list per job) for files put there without FlowForge; 0: never.",
    )
    schedule_sync_seconds: float = Field(
        default=60.0,
        gt=0,
        description="How often job schedules are made to match Prefect's deployment "
        "schedules (they are also synced when a workflow is applied).",
    )
    public_url: str = Field(
        default="http://127.0.0.1:8000",
        description="The address users open the web UI at: notifications link to "
        "{public_url}/#/executions/{id}.",
    )
    notify_timeout_seconds: float = Field(
        default=10.0, gt=0, description="Deadline of one webhook call."
    )
    notify_retry_delays_seconds: list[float] = Field(
        default=[5.0, 30.0, 120.0, 600.0],
        description="Waits before each retry of a webhook call that failed (network error, "
        "a 5xx or 429 answer) (JSON list; its length is the retry count).",
    )
    executions_retention_days: float = Field(
        default=90.0,
        gt=0,
        description="Maintenance removes ended executions older than this from the store "
        "(which frees their table versions for vacuum), except the latest of each job and "
        "those whose output is still a table's current version.",
    )

    # The executions API (`flowforge serve api`).
    api_token: SecretStr | None = Field(
        default=None,
        description="When set, every API endpoint but /healthz needs 'Authorization: Bearer'.",
    )
    api_tokens: list[ApiToken] = Field(
        default=[],
        description="Scoped API tokens (JSON list): "
        '[{"token": "...", "scope": "read", "workflow": "customer-data"}]. Scope admin: '
        "everything (like FLOWFORGE_API_TOKEN); read: GET of that workflow's jobs, "
        "executions, logs, previews and tables; run: read, and start or cancel its "
        "executions and upload to its landing.",
    )
    api_cors_origins: list[str] = Field(
        default=[],
        description="Browser origins allowed to call the API "
        '(JSON list, e.g. ["http://localhost:3000"]).',
    )
    api_upload_max_mb: int = Field(
        default=1024, gt=0, description="Largest file one upload may carry (then 413)."
    )
    api_reconcile_seconds: float = Field(
        default=5.0,
        gt=0,
        description="How often the API reconciles active executions with Prefect's flow runs.",
    )
    api_max_concurrent_uploads: int = Field(
        default=8,
        ge=1,
        description="Uploads (job files and dimensions) the API takes at once; one more is "
        "answered 503 with Retry-After.",
    )
    api_max_event_streams_per_client: int = Field(
        default=10,
        ge=1,
        description="Open /api/events streams one client address may hold; one more is "
        "answered 429 with Retry-After.",
    )
    api_max_event_streams: int = Field(
        default=50,
        ge=1,
        description="Open /api/events streams in all; one more is answered 503 with Retry-After.",
    )
    api_body_timeout_seconds: float = Field(
        default=30.0,
        gt=0,
        description="Longest wait for the next bytes of a request body (an upload, a "
        "workflow document); a client that stops sending is answered 408 and dropped.",
    )

    log_level: str = Field(default="INFO", description="Log level of FlowForge's own loggers.")
    log_format: str = Field(default="json", description="json (one object per line) or text.")

    def for_component(self, component: str) -> Settings:
        """These settings with `component`'s own S3 identity (bronze, silver, gold,
        analyst) in place of the shared one, when its access key id is set. A scoped
        identity never creates the bucket (it may not)."""
        access = getattr(self, f"s3_{component}_access_key_id")
        if not access:
            return self
        secret = getattr(self, f"s3_{component}_secret_access_key")
        return self.model_copy(
            update={
                "s3_access_key_id": access,
                "s3_secret_access_key": secret,
                "s3_create_bucket": False,
            }
        )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
