"""Security at the gRPC edge, over real servers on loopback: the bearer token (health
exempt), TLS and mutual TLS from settings, the orchestrator's clients sending both, and
servers binding loopback unless told otherwise."""

from __future__ import annotations

import ipaddress
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import psutil
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from pydantic import SecretStr

from flowforge import errors
from flowforge.health import check_grpc
from flowforge.runtime import LayerServer
from flowforge.settings import Settings
from flowforge.storage import ObjectStore
from flowforge.v1 import bronze_pb2, bronze_pb2_grpc, common_pb2
from orchestrator.clients import BronzeClient
from services.layers import LAYER_SERVICES, create_server
from tests.deploy.certs import CertificateAuthority, Pair

TOKEN = "s3cr3t-token-for-the-test"
# No CSV in this job's landing prefix: a request that passes the edge gets NOT_FOUND.
REQUEST = bronze_pb2.IngestRequest(job=common_pb2.JobRef(workflow_id="nobody", job_id="empty"))


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Pair]:
    folder = tmp_path_factory.mktemp("pki")
    ca = CertificateAuthority(folder)
    stranger = CertificateAuthority(folder, "Someone else")
    return {
        "ca": ca.pair,
        "server": ca.issue("server", "bronze", server=True),
        "client": ca.issue("client", "orchestrator", server=False),
        "stranger": stranger.pair,
        "stranger-client": stranger.issue("stranger-client", "intruder", server=False),
    }


def start(settings: Settings, store: ObjectStore, **changes: object) -> LayerServer:
    return create_server("bronze", settings.model_copy(update=changes), "127.0.0.1:0", store)


@pytest.fixture(scope="module")
def token_server(settings: Settings, store: ObjectStore) -> Iterator[LayerServer]:
    server = start(settings, store, grpc_token=SecretStr(TOKEN))
    yield server
    server.stop(0)


def ingest(port: int, metadata: tuple[tuple[str, str], ...] = ()) -> grpc.StatusCode:
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        try:
            bronze_pb2_grpc.BronzeServiceStub(channel).Ingest(
                REQUEST, timeout=10, metadata=metadata
            )
        except grpc.RpcError as exc:
            return exc.code()  # type: ignore[no-any-return]
    return grpc.StatusCode.OK


def test_without_a_token_every_rpc_is_unauthenticated(token_server: LayerServer) -> None:
    assert ingest(token_server.port) is grpc.StatusCode.UNAUTHENTICATED


def test_a_wrong_token_is_unauthenticated(token_server: LayerServer) -> None:
    for wrong in (f"Bearer {TOKEN}x", f"Bearer {TOKEN[:-1]}", TOKEN, f"Basic {TOKEN}"):
        code = ingest(token_server.port, (("authorization", wrong),))
        assert code is grpc.StatusCode.UNAUTHENTICATED, wrong


def test_a_valid_token_reaches_the_service(token_server: LayerServer) -> None:
    code = ingest(token_server.port, (("authorization", f"Bearer {TOKEN}"),))
    assert code is grpc.StatusCode.NOT_FOUND  # the service answered: no CSV there


def test_health_needs_no_token(token_server: LayerServer) -> None:
    with grpc.insecure_channel(f"127.0.0.1:{token_server.port}") as channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service="flowforge.v1.BronzeService"), timeout=5
        )
    assert reply.status == health_pb2.HealthCheckResponse.SERVING


def test_orchestrator_client_sends_the_token(settings: Settings, token_server: LayerServer) -> None:
    address = f"127.0.0.1:{token_server.port}"
    valid = settings.model_copy(update={"grpc_token": SecretStr(TOKEN)})
    with BronzeClient(valid, address) as client, pytest.raises(errors.NotFound):
        client.ingest(REQUEST)
    wrong = settings.model_copy(update={"grpc_token": SecretStr("not-it")})
    with BronzeClient(wrong, address) as client, pytest.raises(errors.Unauthenticated) as info:
        client.ingest(REQUEST)
    assert "not-it" not in str(info.value) and TOKEN not in str(info.value)


def test_tls_server_with_a_self_signed_certificate(
    settings: Settings, store: ObjectStore, pki: dict[str, Pair]
) -> None:
    server = start(
        settings,
        store,
        grpc_token=SecretStr(TOKEN),
        grpc_tls_cert_file=pki["server"].cert,
        grpc_tls_key_file=pki["server"].key,
    )
    address = f"127.0.0.1:{server.port}"
    client_settings = settings.model_copy(
        update={"grpc_token": SecretStr(TOKEN), "grpc_tls_ca_file": pki["ca"].cert}
    )
    try:
        assert ingest(server.port, (("authorization", f"Bearer {TOKEN}"),)) is (
            grpc.StatusCode.UNAVAILABLE  # plaintext does not get through
        )
        with BronzeClient(client_settings, address) as client, pytest.raises(errors.NotFound):
            client.ingest(REQUEST)
        assert check_grpc(address, client_settings, "flowforge.v1.BronzeService") == "SERVING"
        # A client trusting another CA refuses the server.
        stranger = client_settings.model_copy(update={"grpc_tls_ca_file": pki["stranger"].cert})
        with BronzeClient(stranger, address) as client, pytest.raises(errors.Unavailable):
            client.ingest(REQUEST)
    finally:
        server.stop(0)


def test_mutual_tls_needs_a_client_certificate_from_the_ca(
    settings: Settings, store: ObjectStore, pki: dict[str, Pair]
) -> None:
    server = start(
        settings,
        store,
        grpc_tls_cert_file=pki["server"].cert,
        grpc_tls_key_file=pki["server"].key,
        grpc_tls_ca_file=pki["ca"].cert,
    )
    address = f"127.0.0.1:{server.port}"
    trusting = settings.model_copy(update={"grpc_tls_ca_file": pki["ca"].cert})
    try:
        with BronzeClient(trusting, address) as client, pytest.raises(errors.Unavailable):
            client.ingest(REQUEST)  # no client certificate
        intruder = trusting.model_copy(
            update={
                "grpc_tls_client_cert_file": pki["stranger-client"].cert,
                "grpc_tls_client_key_file": pki["stranger-client"].key,
            }
        )
        with BronzeClient(intruder, address) as client, pytest.raises(errors.Unavailable):
            client.ingest(REQUEST)  # a certificate from another CA
        # The healthcheck command, configured like a container would be (environment).
        env = {
            **os.environ,
            "FLOWFORGE_GRPC_TLS_CA_FILE": str(pki["ca"].cert),
            "FLOWFORGE_GRPC_TLS_CLIENT_CERT_FILE": str(pki["client"].cert),
            "FLOWFORGE_GRPC_TLS_CLIENT_KEY_FILE": str(pki["client"].key),
        }
        probe = subprocess.run(
            [Path(sys.executable).parent / "flowforge", "health", "grpc", address,
             "--service", "flowforge.v1.BronzeService", "--tls-server-name", "bronze"],
            env=env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert probe.returncode == 0, probe.stderr
        assert "SERVING" in probe.stdout
        member = trusting.model_copy(
            update={
                "grpc_tls_client_cert_file": pki["client"].cert,
                "grpc_tls_client_key_file": pki["client"].key,
            }
        )
        with BronzeClient(member, address) as client, pytest.raises(errors.NotFound):
            client.ingest(REQUEST)
    finally:
        server.stop(0)


def test_servers_bind_loopback_by_default(settings: Settings, tmp_path: Path) -> None:
    assert Settings(_env_file=None).grpc_host == "127.0.0.1"  # type: ignore[call-arg]
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLOWFORGE_")}
    env |= {
        "FLOWFORGE_S3_ENDPOINT_URL": settings.s3_endpoint_url or "",
        "FLOWFORGE_S3_ACCESS_KEY_ID": settings.s3_access_key_id or "",
        "FLOWFORGE_S3_SECRET_ACCESS_KEY": settings.s3_secret_access_key.get_secret_value()
        if settings.s3_secret_access_key
        else "",
        "FLOWFORGE_S3_BUCKET": settings.s3_bucket,
        "FLOWFORGE_LOG_FORMAT": "json",
    }
    log = tmp_path / "bronze.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [Path(sys.executable).parent / "flowforge", "serve", "bronze", "--port", "0"],
            env=env, cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        port = _serving_port(log, process)
        listening = [
            c.laddr
            for c in psutil.Process(process.pid).net_connections(kind="inet")
            if c.status == psutil.CONN_LISTEN
        ]
        # gRPC may listen on a dual-stack socket: ::ffff:127.0.0.1 is loopback too.
        hosts = {ipaddress.ip_address(addr.ip) for addr in listening}
        assert listening and {getattr(h, "ipv4_mapped", None) or h for h in hosts} == {
            ipaddress.ip_address("127.0.0.1")
        }
        assert {addr.port for addr in listening} == {port}
    finally:
        process.terminate()
        process.wait(30)


def _serving_port(log: Path, process: subprocess.Popen[bytes], timeout: float = 60) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in log.read_text(errors="replace").splitlines():
            if line.startswith("{") and json.loads(line).get("msg") == "serving":
                return int(json.loads(line)["port"])
        assert process.poll() is None, log.read_text()
        time.sleep(0.2)
    raise AssertionError(f"the server did not start: {log.read_text()}")


def test_the_other_servers_default_to_loopback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The executions API (`flowforge serve api`), the runner's /health, the embedded Prefect
    server and SeaweedFS (`flowforge up`, the demo) bind loopback unless told otherwise;
    read from the CLI's defaults and the commands the embedded servers would start."""
    import typer.main

    from cli.main import app
    from flowforge import embedded
    from orchestrator import prefect_server

    serve = typer.main.get_command(app).commands["serve"].commands  # type: ignore[attr-defined]
    for command in ("api", "deployment", *LAYER_SERVICES):
        host = next(p for p in serve[command].params if p.name == "host")
        # Layers: no default of their own, FLOWFORGE_GRPC_HOST (checked above) decides.
        assert host.default == (None if command in LAYER_SERVICES else "127.0.0.1"), command

    started: list[list[str]] = []

    class NotStarted:  # what Popen hands back: nothing runs
        pid = 0

        def __init__(self, args: list[str], **_: object) -> None:
            started.append([str(a) for a in args])

        def poll(self) -> None:
            return None

    monkeypatch.setattr(subprocess, "Popen", NotStarted)
    for module in (prefect_server, embedded):
        monkeypatch.setattr(module, "wait_ready", lambda *a, **k: None)
    prefect_server.PrefectServer(tmp_path / "prefect").start()
    embedded.EmbeddedS3(tmp_path / "s3", "access", "secret-key", "bucket").start()
    prefect, weed = started
    assert prefect[prefect.index("--host") + 1] == "127.0.0.1"
    assert {"-ip=127.0.0.1", "-ip.bind=127.0.0.1"} <= set(weed), weed
