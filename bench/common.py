"""Shared benchmark plumbing: cached input files, an embedded S3, a service subprocess, RSS,
and the orchestrator (`flowforge serve deployment`) as a runner subprocess."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import grpc
import psutil
from pydantic import SecretStr

from flowforge.embedded import EmbeddedS3, pick_ports
from flowforge.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "bench" / "output"


def generated_csv(job: str, size_mb: float) -> Path:
    """A deterministic CSV of about size_mb, generated once and cached under bench/output."""
    path = OUTPUT / f"{job}-{size_mb:g}mb.csv"
    if not path.exists():
        sys.path.insert(0, str(ROOT / "examples"))
        from generate import write  # type: ignore[import-not-found]

        print(f"generating {path.name} (once; cached) ...", flush=True)
        write(job, path.with_suffix(".tmp"), size_mb=size_mb)
        path.with_suffix(".tmp").rename(path)
    return path


def start_s3(workdir: Path) -> tuple[EmbeddedS3, Settings]:
    s3 = EmbeddedS3(workdir / "s3", "bench", secrets.token_urlsafe(16), "flowforge-bench").start()
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        s3_endpoint_url=s3.endpoint_url,
        s3_access_key_id=s3.access_key,
        s3_secret_access_key=SecretStr(s3.secret_key),
        s3_bucket=s3.bucket,
        s3_read_timeout_seconds=600,
        grpc_max_workers=4,
    )
    return s3, settings


def env_for(settings: Settings, code: Path = ROOT) -> dict[str, str]:
    secret = settings.s3_secret_access_key
    return {
        **os.environ,
        "FLOWFORGE_S3_ENDPOINT_URL": settings.s3_endpoint_url or "",
        "FLOWFORGE_S3_ACCESS_KEY_ID": settings.s3_access_key_id or "",
        "FLOWFORGE_S3_SECRET_ACCESS_KEY": secret.get_secret_value() if secret else "",
        "FLOWFORGE_S3_BUCKET": settings.s3_bucket,
        "FLOWFORGE_S3_READ_TIMEOUT_SECONDS": "600",
        "FLOWFORGE_LOG_LEVEL": os.environ.get("BENCH_SERVICE_LOG_LEVEL", "WARNING"),
        # Child processes run this checkout's code (or `code`'s), not the one the venv was
        # installed from.
        "PYTHONPATH": os.pathsep.join(p for p in (str(code), os.environ.get("PYTHONPATH")) if p),
    }


class ServiceProcess:
    """`flowforge serve <layer>` as a child process, with its peak RSS sampled; `code` is
    the checkout whose code it runs."""

    def __init__(self, layer: str, settings: Settings, workdir: Path, code: Path = ROOT) -> None:
        self.layer = layer
        self.port = pick_ports()["s3.port"]
        self.process = subprocess.Popen(
            [sys.executable, "-m", "cli", "serve", layer, "--port", str(self.port)],
            env=env_for(settings, code),
            cwd=workdir,
        )
        self.peak_rss = 0
        self._stop = threading.Event()
        with grpc.insecure_channel(self.address) as channel:
            grpc.channel_ready_future(channel).result(timeout=60)
        threading.Thread(target=self._sample, daemon=True).start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _sample(self) -> None:
        proc = psutil.Process(self.process.pid)
        while not self._stop.is_set():
            try:
                self.peak_rss = max(self.peak_rss, proc.memory_info().rss)
            except psutil.Error:
                return
            time.sleep(0.05)

    def reset_peak(self) -> None:
        self.peak_rss = psutil.Process(self.process.pid).memory_info().rss

    def stop(self) -> None:
        self._stop.set()
        self.process.terminate()
        self.process.wait(30)


def httpfs_connection(settings: Settings, spill_dir: Path | None = None):  # type: ignore[no-untyped-def]
    """A bare DuckDB connection on the same S3 (httpfs from its PyPI package, keys as a secret)."""
    from flowforge.duckdb_s3 import connect

    spill = spill_dir or Path(tempfile.mkdtemp(prefix="ff-bench-duckdb-"))
    return connect(settings, {"temp_directory": str(spill)})


def timed(label: str, fn):  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    result = fn()
    seconds = time.perf_counter() - started
    print(f"  {label:<38} {seconds:8.2f} s", flush=True)
    return seconds, result


def orchestrator_env(settings: Settings, prefect_env: dict[str, str]) -> dict[str, str]:
    """What `flowforge serve deployment` (and its flow runs) read: the same S3, services,
    executions store and Prefect server as `settings` and `prefect_env`."""
    env = {
        **env_for(settings),
        **prefect_env,
        "FLOWFORGE_STATE_DIR": str(settings.state_dir),
        "FLOWFORGE_BRONZE_ADDRESS": settings.bronze_address,
        "FLOWFORGE_SILVER_ADDRESS": settings.silver_address,
        "FLOWFORGE_GOLD_ADDRESS": settings.gold_address,
    }
    if settings.database_url is not None:
        env["FLOWFORGE_DATABASE_URL"] = settings.database_url.get_secret_value()
    return env


def start_runner(env: dict[str, str], log: Path, deployment: str) -> subprocess.Popen[bytes]:
    """`flowforge serve deployment` as a child process (output to `log`), once Prefect knows
    its deployment; the caller's Prefect settings must point at the same server."""
    with log.open("wb") as output:
        runner = subprocess.Popen(
            [sys.executable, "-m", "cli", "serve", "deployment"],
            env=env,
            cwd=ROOT,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for_deployment(deployment, runner, log)
    except BaseException:
        stop_process(runner)
        raise
    return runner


def wait_for_deployment(
    name: str, runner: subprocess.Popen[bytes], log: Path, timeout: float = 120
) -> None:
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    deadline = time.monotonic() + timeout
    with get_client(sync_client=True) as client:
        while True:
            try:
                client.read_deployment_by_name(name)
                return
            except ObjectNotFound:
                if time.monotonic() > deadline or runner.poll() is not None:
                    raise RuntimeError(log.read_text()[-3000:]) from None
                time.sleep(0.2)


def stop_process(process: subprocess.Popen[bytes] | None, timeout: float = 30) -> None:
    """SIGTERM, then SIGKILL after `timeout` seconds; a no-op once it has ended."""
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(10)
