"""Health probes for container healthchecks: grpc.health.v1 on a layer service, GET on HTTP."""

from __future__ import annotations

import grpc
import httpx
from grpc_health.v1 import health_pb2, health_pb2_grpc

from flowforge.runtime import channel_credentials
from flowforge.settings import Settings


def grpc_channel(address: str, settings: Settings, server_name: str | None = None) -> grpc.Channel:
    """A channel with the TLS settings the orchestrator's clients use (plaintext without a CA).
    `server_name`: the name the certificate holds when probing it as localhost."""
    options = [("grpc.ssl_target_name_override", server_name)] if server_name else []
    credentials = channel_credentials(settings)
    if credentials is None:
        return grpc.insecure_channel(address, options=options)
    return grpc.secure_channel(address, credentials, options=options)


def check_grpc(
    address: str,
    settings: Settings,
    service: str = "",
    timeout: float = 3.0,
    server_name: str | None = None,
) -> str:
    """The serving status of `service` ("" = the whole server), e.g. SERVING; raises
    grpc.RpcError when the server cannot be reached or does not know the service."""
    token = settings.grpc_token
    # Health is exempt from the token; sending it keeps the probe working behind a proxy
    # that checks it for every path.
    metadata = (("authorization", f"Bearer {token.get_secret_value()}"),) if token else ()
    with grpc_channel(address, settings, server_name) as channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=service), timeout=timeout, metadata=metadata
        )
    return str(health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status))


def check_http(url: str, timeout: float = 3.0) -> int:
    """The HTTP status of GET `url`; raises httpx.HTTPError when it cannot be reached."""
    return httpx.get(url, timeout=timeout, follow_redirects=False).status_code
