"""docker-compose.yml run as local processes: each service's own command and environment
(from the compose file, interpolated from a .env), with what needs a container engine
substituted — loopback ports for the compose DNS names, this machine's PostgreSQL (a
database per compose database), SeaweedFS's `weed` from pip for the image's, a temporary
folder for /data."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

from flowforge.embedded import pick_ports, weed_binary
from tests.deploy.compose import environment, flag, load_compose

BIN = Path(sys.executable).parent
# The PostgreSQL server of this machine (trust auth), as the orchestrator's tests use it.
POSTGRES = os.environ.get(
    "FLOWFORGE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Topology:
    dotenv: dict[str, str]
    folder: Path
    replicas: dict[str, int] = field(default_factory=dict)
    extra_env: dict[str, str] = field(default_factory=dict)
    compose: dict[str, Any] = field(init=False)
    # (service, port inside the container) -> the local ports of its replicas
    ports: dict[tuple[str, int], list[int]] = field(default_factory=dict)
    databases: dict[str, str] = field(default_factory=dict)
    processes: list[tuple[str, subprocess.Popen[bytes]]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.compose = load_compose(self.dotenv)
        self.services: dict[str, Any] = self.compose["services"]
        (self.folder / "logs").mkdir(parents=True, exist_ok=True)
        tag = uuid.uuid4().hex[:8]
        self.databases = {name: f"ff_topo_{tag}_{name}" for name in ("flowforge", "prefect")}

    @property
    def s3_port(self) -> int:
        """The seaweedfs service's S3 port, as its command sets it."""
        return int(flag(self.services["seaweedfs"]["command"], "-s3.port"))

    # -- substitutions ----------------------------------------------------------------
    def local(self, service: str, port: int) -> list[int]:
        if (service, port) not in self.ports:
            count = self.replicas.get(service, 1)
            self.ports[service, port] = [free_port() for _ in range(count)]
        return self.ports[service, port]

    def substitute(self, value: str, service: str) -> str:
        """One value of `service`'s command, environment or healthcheck, made local."""
        for (name, inside), outside in list(self.ports.items()):
            many = ",".join(f"127.0.0.1:{p}" for p in outside)
            value = value.replace(f"dns:///{name}:{inside}", f"ipv4:{many}")
            value = value.replace(f"//{name}:{inside}", f"//127.0.0.1:{outside[0]}")
            if name == service:
                value = value.replace(f"127.0.0.1:{inside}", f"127.0.0.1:{outside[0]}")
        for database, local_name in self.databases.items():
            value = value.replace(f"@postgres:5432/{database}", f"@127.0.0.1:5432/{local_name}")
        # Trust authentication here: the password still travels, as in the containers.
        value = value.replace("://flowforge:", "://postgres:")
        return value

    def command(self, service: str, replica: int = 0) -> list[str]:
        args = [str(a) for a in self.services[service]["command"]]
        out: list[str] = []
        for i, arg in enumerate(args):
            if i and args[i - 1] == "--host":
                arg = "127.0.0.1"  # the compose network is loopback here
            elif i and args[i - 1] == "--port":
                arg = str(self.local(service, int(arg))[replica])
            out.append(self.substitute(arg, service))
        return out

    def env(self, service: str, **extra: str) -> dict[str, str]:
        home = self.folder / "home" / service
        home.mkdir(parents=True, exist_ok=True)
        # What the image sets (Dockerfile ENV), with this machine's folders.
        env = {
            "PATH": f"{BIN}:/usr/local/bin:/usr/bin:/bin",
            "HOME": str(home),
            "LANG": "C.UTF-8",
            "PYTHONUNBUFFERED": "1",
            "FLOWFORGE_STATE_DIR": str(home / "state"),
            "PREFECT_HOME": str(home / ".prefect"),
        }
        for key, value in environment(self.services[service]).items():
            env[key] = self.substitute(value, service)
        return env | self.extra_env | extra

    def healthcheck(self, service: str) -> list[str]:
        test = self.services[service]["healthcheck"]["test"]
        assert test[0] == "CMD"
        return [self.substitute(str(a), service) for a in test[1:]]

    # -- processes ----------------------------------------------------------------------
    def spawn(self, name: str, args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        cwd = self.folder / "home" / name.split("#")[0]
        cwd.mkdir(parents=True, exist_ok=True)
        with (self.folder / "logs" / f"{name}.log").open("ab") as log:
            process = subprocess.Popen(
                args, env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        self.processes.append((name, process))
        return process

    def run(self, name: str, args: list[str], env: dict[str, str], timeout: float = 180) -> str:
        result = subprocess.run(
            args, env=env, cwd=self.folder, capture_output=True, text=True, timeout=timeout
        )
        (self.folder / "logs" / f"{name}.log").write_text(result.stdout + result.stderr)
        assert result.returncode == 0, f"{args}: {result.stdout}\n{result.stderr}"
        return result.stdout

    def wait_healthy(self, service: str, timeout: float = 300) -> None:
        deadline = time.monotonic() + timeout
        while True:
            probe = subprocess.run(
                self.healthcheck(service), env=self.env(service), capture_output=True, timeout=30
            )
            if probe.returncode == 0:
                return
            dead = [
                n for n, p in self.processes if n.split("#")[0] == service and p.poll() is not None
            ]
            if dead or time.monotonic() > deadline:
                log = self.folder / "logs" / f"{dead[0] if dead else service}.log"
                raise AssertionError(f"{service} not healthy: {log.read_text()[-3000:]}")
            time.sleep(0.5)

    # -- the stack ------------------------------------------------------------------------
    def start_object_store(self) -> None:
        """The seaweedfs service's command (`weed mini ...`) and environment, run by the
        `weed` binary from pip (same version as the image, a test checks it)."""
        service = self.services["seaweedfs"]
        s3_port = self.local("seaweedfs", self.s3_port)[0]
        admin_port = self.local("seaweedfs", int(flag(service["command"], "-admin.port")))[0]
        internal = pick_ports()
        data = self.folder / "seaweedfs"
        data.mkdir()
        # The files compose mounts from its configs (content interpolated from .env).
        mounted = {}
        for config in service.get("configs", []):
            path = self.folder / "configs" / config["source"]
            path.parent.mkdir(exist_ok=True)
            path.write_text(self.compose["configs"][config["source"]]["content"])
            mounted[config["target"]] = str(path)
        args = [weed_binary()]
        for arg in service["command"]:
            option, _, value = str(arg).partition("=")
            value = {
                "-dir": str(data),
                "-ip": "127.0.0.1",
                "-ip.bind": "127.0.0.1",
                "-s3.port": str(s3_port),
                "-admin.port": str(admin_port),
            }.get(option, mounted.get(value, value))
            args.append(f"{option}={value}" if value else option)
        # Listeners the container keeps to itself: free ports here.
        args += [f"-{name}={port}" for name, port in internal.items()
                 if name in ("master.port", "volume.port", "filer.port")]  # fmt: skip
        self.spawn("seaweedfs", args, self.env("seaweedfs"))
        self.wait_healthy("seaweedfs")

    def create_databases(self) -> None:
        admin = create_engine(POSTGRES, isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            for name in self.databases.values():
                connection.execute(text(f'CREATE DATABASE "{name}"'))
        admin.dispose()

    def drop_databases(self) -> None:
        admin = create_engine(POSTGRES, isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            for name in self.databases.values():
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    def start(self, services: list[str]) -> None:
        """Starts `services` (replicas included), then waits until each is healthy."""
        for service in services:
            for replica in range(self.replicas.get(service, 1)):
                name = service if replica == 0 else f"{service}#{replica}"
                self.spawn(name, self.command(service, replica), self.env(service))
        for service in services:
            self.wait_healthy(service)

    def prepare_ports(self) -> None:
        """Every service's ports, before any environment is built from them."""
        for name, service in self.services.items():
            args = [str(a) for a in service.get("command", [])]
            if "--port" in args:
                self.local(name, int(args[args.index("--port") + 1]))
        self.local("seaweedfs", self.s3_port)
        runner = environment(self.services["worker"]).get("PREFECT_RUNNER_SERVER_PORT")
        if runner:
            self.local("worker", int(runner))
            self.services["worker"]["environment"]["PREFECT_RUNNER_SERVER_PORT"] = str(
                self.local("worker", int(runner))[0]
            )

    def stop(self) -> None:
        for _, process in reversed(self.processes):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for _, process in reversed(self.processes):
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()

    def logs(self) -> dict[str, str]:
        return {p.stem: p.read_text(errors="replace") for p in (self.folder / "logs").glob("*.log")}
