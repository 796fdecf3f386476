"""Layer services as real child processes (`flowforge serve <layer>`), for faults that need
a process: SIGKILL mid-request, restart on the same port."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from flowforge.settings import Settings


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def service_env(settings: Settings, state_dir: Path, **extra: str) -> dict[str, str]:
    secret = settings.s3_secret_access_key
    return {
        **os.environ,
        "FLOWFORGE_S3_ENDPOINT_URL": settings.s3_endpoint_url,
        "FLOWFORGE_S3_BUCKET": settings.s3_bucket,
        "FLOWFORGE_S3_ACCESS_KEY_ID": settings.s3_access_key_id,
        "FLOWFORGE_S3_SECRET_ACCESS_KEY": secret.get_secret_value() if secret else "",
        "FLOWFORGE_STATE_DIR": str(state_dir),
        "FLOWFORGE_LOG_FORMAT": "text",
        **extra,
    }


class ServiceProcess:
    """One layer service in its own process, on a fixed port so it can come back there."""

    def __init__(self, layer: str, env: dict[str, str], log_path: Path) -> None:
        self.layer = layer
        self.env = env
        self.port = free_port()
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout: float = 60) -> ServiceProcess:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "cli", "serve", self.layer]
                + ["--host", "127.0.0.1", "--port", str(self.port)],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.layer} exited: {self.log_path.read_text()[-2000:]}")
            if self.serving():
                return self
            time.sleep(0.2)
        raise TimeoutError(f"{self.layer} did not become healthy on {self.address}")

    def serving(self) -> bool:
        with grpc.insecure_channel(self.address) as channel:
            try:
                answer = health_pb2_grpc.HealthStub(channel).Check(
                    health_pb2.HealthCheckRequest(), timeout=1
                )
            except grpc.RpcError:
                return False
            return answer.status == health_pb2.HealthCheckResponse.SERVING

    def kill(self) -> None:
        """SIGKILL: no drain, no clean-up, exactly like the OOM killer."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(10)
            self.kill()
