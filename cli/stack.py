"""The embedded single-machine stack: SeaweedFS, the three services, the SQLite store and
(optionally) a Prefect server, all on loopback, all stopped together.

Used by `flowforge demo` and `flowforge up`. `env()` gives what another process (the
served deployment's flow runs, another terminal) needs to use this stack.
"""

from __future__ import annotations

import os
import secrets
from contextlib import ExitStack
from pathlib import Path
from typing import Self

from pydantic import SecretStr

from flowforge.dimensions import upload_dimension_file
from flowforge.embedded import EmbeddedS3
from flowforge.layout import JobKey, landing_prefix
from flowforge.processes import Started
from flowforge.settings import Settings
from flowforge.storage import ObjectStore
from orchestrator.prefect_server import PrefectServer, flush_clients
from orchestrator.store import Store
from orchestrator.workflows import Workflow, load_workflow_file
from services.layers import LAYER_SERVICES, create_server

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
SAMPLE_WORKFLOW = EXAMPLES / "workflows" / "customer-data.yaml"


class EmbeddedStack(Started):
    def __init__(
        self, settings: Settings, state: Path, prefect: bool = True, prefect_ui: bool = False
    ) -> None:
        self.state = Path(state).resolve()
        self.base = settings
        self.with_prefect = prefect
        self.prefect_ui = prefect_ui
        self.settings = settings
        self.prefect: PrefectServer | None = None
        self.s3: EmbeddedS3 | None = None
        self.ports: dict[str, int] = {}
        self._exit = ExitStack()

    def start(self) -> Self:
        try:
            self._start()
        except BaseException:
            self._exit.close()
            raise
        return self

    def _start(self) -> None:
        self.s3 = EmbeddedS3(
            self.state / "s3", "flowforge", secrets.token_urlsafe(24), self.base.s3_bucket
        )
        self._exit.enter_context(self.s3)
        settings = self.base.model_copy(
            update={
                "s3_endpoint_url": self.s3.endpoint_url,
                "s3_access_key_id": self.s3.access_key,
                "s3_secret_access_key": SecretStr(self.s3.secret_key),
                **self.s3.identity_settings(),  # each service its own identity
                "state_dir": self.state,
                "database_url": None,
                "grpc_token": None,
                "grpc_tls_ca_file": None,
                "grpc_tls_cert_file": None,
                "grpc_tls_key_file": None,
            }
        )
        addresses = {}
        for layer in LAYER_SERVICES:
            server = create_server(layer, settings, "127.0.0.1:0")
            self._exit.callback(server.stop, 1.0)
            self.ports[layer] = server.port
            addresses[f"{layer}_address"] = f"127.0.0.1:{server.port}"
        self.settings = settings.model_copy(update=addresses)
        if self.with_prefect:
            self.prefect = PrefectServer(self.state / "prefect", ui=self.prefect_ui)
            self._exit.enter_context(self.prefect)
            self._exit.enter_context(_prefect_settings(self.prefect))
            self._exit.callback(flush_clients)

    def env(self) -> dict[str, str]:
        """Environment variables pointing another process at this stack."""
        s = self.settings
        secret = s.s3_secret_access_key.get_secret_value() if s.s3_secret_access_key else ""
        analyst = s.s3_analyst_secret_access_key
        env = {
            "FLOWFORGE_S3_ENDPOINT_URL": s.s3_endpoint_url or "",
            "FLOWFORGE_S3_ACCESS_KEY_ID": s.s3_access_key_id or "",
            "FLOWFORGE_S3_SECRET_ACCESS_KEY": secret,
            "FLOWFORGE_S3_BUCKET": s.s3_bucket,
            # The read-only analyst identity, for `flowforge analyst` in another shell.
            "FLOWFORGE_S3_ANALYST_ACCESS_KEY_ID": s.s3_analyst_access_key_id or "",
            "FLOWFORGE_S3_ANALYST_SECRET_ACCESS_KEY": analyst.get_secret_value() if analyst else "",
            "FLOWFORGE_STATE_DIR": str(self.state),
            "FLOWFORGE_BRONZE_ADDRESS": s.bronze_address,
            "FLOWFORGE_SILVER_ADDRESS": s.silver_address,
            "FLOWFORGE_GOLD_ADDRESS": s.gold_address,
        }
        if self.prefect is not None:
            env |= self.prefect.client_env()
        return env

    def write_env_file(self) -> Path:
        """`{state}/stack.env` (mode 600): `set -a; . .flowforge/stack.env` in another shell."""
        path = self.state / "stack.env"
        path.touch(mode=0o600)
        path.write_text("".join(f"{k}={v}\n" for k, v in self.env().items()))
        return path

    def stop(self) -> None:
        self._exit.close()


def _prefect_settings(server: PrefectServer):  # type: ignore[no-untyped-def]
    from prefect.settings import PREFECT_API_URL, temporary_settings

    return temporary_settings(updates={PREFECT_API_URL: server.api_url})


def seed(settings: Settings, store: Store, workflow_file: Path = SAMPLE_WORKFLOW) -> Workflow:
    """Stores the sample workflow, lands its CSVs and uploads its dimensions."""
    workflow = load_workflow_file(workflow_file)
    store.save_workflow(workflow, workflow_file.read_text(encoding="utf-8"))
    objects = ObjectStore(settings)
    if settings.s3_create_bucket:
        objects.ensure_bucket()
    for job in workflow.jobs:
        csv = EXAMPLES / "data" / f"{job.id}.csv"
        if csv.exists():
            key = landing_prefix(JobKey(workflow.id, job.id)) + csv.name
            objects.put_bytes(key, csv.read_bytes(), content_type="text/csv")
    for name in workflow.dimensions:
        table = EXAMPLES / "dimensions" / f"{name}.csv"
        if table.exists():
            upload_dimension_file(objects, name, table)
    return workflow


def environ_with(env: dict[str, str]) -> dict[str, str]:
    return {**os.environ, **env}
