"""Writes this folder: what the layers committed before Delta tables, for the migration test.

Run on a checkout whose layers still commit `_manifest.json` (main at aa24df1):
    .venv/bin/python -m tests.orchestrator.cases.legacy.capture
It starts SeaweedFS and the three services, ingests the sample customers in two runs (the
first 150 rows, then the rest as a second landing file, so bronze's manifest keeps the
first run's part), refines and builds gold after each, uploads the countries dimension,
and copies every object under bronze|silver|gold/legacy/ and dimensions/countries/ here.
"""

from __future__ import annotations

import secrets
import shutil
import tempfile
from pathlib import Path

from pydantic import SecretStr

from flowforge.dimensions import upload_dimension_file
from flowforge.embedded import EmbeddedS3
from flowforge.layout import JobKey, landing_prefix
from flowforge.settings import Settings
from flowforge.storage import ObjectStore
from orchestrator.layers import call_layer
from orchestrator.workflows import load_workflow_file
from services.layers import create_server

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[3]
WORKFLOW = "legacy"
PREFIXES = (f"bronze/{WORKFLOW}/", f"silver/{WORKFLOW}/", f"gold/{WORKFLOW}/", "dimensions/")


def main() -> None:
    sample = load_workflow_file(ROOT / "examples" / "workflows" / "customer-data.yaml")
    job = sample.job("customers")
    lines = (ROOT / "examples" / "data" / "customers.csv").read_text().splitlines(keepends=True)
    parts = {"customers-1.csv": lines[:151], "customers-2.csv": lines[:1] + lines[151:]}
    with tempfile.TemporaryDirectory() as state:
        s3 = EmbeddedS3(Path(state), "capture-key", secrets.token_urlsafe(16), "flowforge-capture")
        with s3:
            settings = Settings(
                _env_file=None,  # type: ignore[call-arg]
                s3_endpoint_url=s3.endpoint_url,
                s3_access_key_id=s3.access_key,
                s3_secret_access_key=SecretStr(s3.secret_key),
                s3_bucket=s3.bucket,
                state_dir=Path(state),
            )
            objects = ObjectStore(settings)
            servers = {
                layer: create_server(layer, settings, "127.0.0.1:0", objects)
                for layer in ("bronze", "silver", "gold")
            }
            settings = settings.model_copy(
                update={f"{layer}_address": f"127.0.0.1:{s.port}" for layer, s in servers.items()}
            )
            upload_dimension_file(
                objects, "countries", ROOT / "examples" / "dimensions" / "countries.csv"
            )
            for run, (name, text) in enumerate(parts.items(), start=1):
                key = landing_prefix(JobKey(WORKFLOW, job.id)) + name
                objects.put_bytes(key, "".join(text).encode(), content_type="text/csv")
                for layer in ("bronze", "silver", "gold"):
                    call_layer(settings, layer, WORKFLOW, job, ["countries"], f"legacy-run-{run}")
            for server in servers.values():
                server.stop(0)
            for folder in ("bronze", "silver", "gold", "dimensions"):
                shutil.rmtree(HERE / folder, ignore_errors=True)
            for prefix in PREFIXES:
                for info in objects.list(prefix):
                    target = HERE / info.key
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(objects.get_bytes(info.key))


if __name__ == "__main__":
    main()
