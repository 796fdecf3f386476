"""The gRPC server runtime every layer service shares.

create_server() builds a server with health, reflection, auth and TLS from settings and
binds it (port 0 picks a free one); serve() runs it until SIGTERM, then drains in-flight
requests. @rpc wraps each servicer method: it turns domain errors into status codes,
never leaks a traceback, honours deadlines and logs one structured line per request.
"""

from __future__ import annotations

import errno
import functools
import hmac
import logging
import signal
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent import futures
from dataclasses import dataclass, field
from typing import Any, TypeVar

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from flowforge.errors import Cancelled, DeadlineExceeded, FlowForgeError, ResourceExhausted
from flowforge.settings import Settings

log = logging.getLogger("flowforge.rpc")

MAX_MESSAGE_BYTES = 64 << 20
# Trailing metadata saying whether repeating the call may help: the status code alone
# cannot tell a store outage (retry) from a model over its memory limit (never).
RETRYABLE_KEY = "flowforge-retryable"
_HEALTH_PREFIX = "/grpc.health.v1.Health/"

Request = TypeVar("Request")
Response = TypeVar("Response")


class Deadline:
    """The time a request has left; checked between units of work."""

    def __init__(self, context: grpc.ServicerContext | None = None) -> None:
        self._context = context
        remaining = context.time_remaining() if context is not None else None
        self._ends = time.monotonic() + remaining if remaining is not None else None

    @property
    def ends(self) -> float | None:
        """The time.monotonic() instant it passes; None without a deadline."""
        return self._ends

    def remaining(self) -> float | None:
        return None if self._ends is None else self._ends - time.monotonic()

    def check(self, doing: str = "") -> None:
        # The time first: once the deadline passes gRPC marks the call inactive too, and
        # that is a deadline exceeded, not a client that went away.
        left = self.remaining()
        if left is not None and left <= 0:
            raise DeadlineExceeded(f"deadline exceeded{' while ' + doing if doing else ''}")
        if self._context is not None and not self._context.is_active():
            raise Cancelled(f"the client went away{' while ' + doing if doing else ''}")


def rpc(summary: Callable[[Any, Any], dict[str, Any]]) -> Callable[..., Any]:
    """Decorates a servicer method `(self, request, context, deadline) -> response`.

    `summary(request, response_or_None)` returns the fields for the request's log line.
    """

    def decorate(method: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(method)
        def handler(self: Any, request: Any, context: grpc.ServicerContext) -> Any:
            started = time.monotonic()
            response, code, message = None, grpc.StatusCode.OK, ""
            try:
                response = method(self, request, context, Deadline(context))
                return response
            except FlowForgeError as exc:
                code, message = grpc.StatusCode[exc.status], exc.message
                context.set_trailing_metadata(((RETRYABLE_KEY, str(exc.retryable).lower()),))
            except OSError as exc:
                code, message = _os_error_status(exc)
                if code is grpc.StatusCode.INTERNAL:
                    log.exception("unexpected error", extra={"method": method.__name__})
            except MemoryError:
                code = grpc.StatusCode.RESOURCE_EXHAUSTED
                message = "the service ran out of memory for this request"
            except (KeyboardInterrupt, SystemExit, GeneratorExit):
                raise
            except BaseException:  # includes Rust panics surfacing from native engines
                incident = uuid.uuid4().hex[:12]
                log.exception(
                    "unexpected error", extra={"method": method.__name__, "incident": incident}
                )
                code = grpc.StatusCode.INTERNAL
                message = f"internal error (incident {incident}; see the service log)"
            finally:
                fields = _safe_summary(summary, request, response)
                log.info(
                    method.__name__,
                    extra={
                        "rpc": method.__name__,
                        "code": code.name,
                        "duration_ms": round((time.monotonic() - started) * 1000, 1),
                        **fields,
                        **({"error": message} if message else {}),
                    },
                )
            context.abort(code, message)

        return handler

    return decorate


def _safe_summary(
    summary: Callable[[Any, Any], dict[str, Any]], request: Any, response: Any
) -> Any:
    try:
        return summary(request, response)
    except Exception:  # a log line must never fail a request
        return {}


def _os_error_status(exc: OSError) -> tuple[grpc.StatusCode, str]:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        where = f" ({exc.filename})" if exc.filename else ""
        return grpc.StatusCode.RESOURCE_EXHAUSTED, f"no space left on device{where}"
    if exc.errno == errno.ENOMEM:
        return grpc.StatusCode.RESOURCE_EXHAUSTED, "out of memory"
    return grpc.StatusCode.INTERNAL, f"internal I/O error ({type(exc).__name__})"


def resource_exhausted_from(exc: BaseException) -> ResourceExhausted | None:
    """Recognises disk-full errors raised by native engines (polars, DuckDB, Arrow)."""
    text = str(exc).lower()
    if "no space left" in text or "disk quota" in text or "out of memory" in text:
        return ResourceExhausted(f"the service ran out of disk or memory: {str(exc)[:300]}")
    return None


class TokenAuthInterceptor(grpc.ServerInterceptor):
    """Requires `authorization: Bearer <token>` on every RPC except health checks."""

    def __init__(self, token: str) -> None:
        self._expected = f"Bearer {token}".encode()

        def deny(request: Any, context: grpc.ServicerContext) -> None:
            context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or invalid bearer token")

        self._deny = grpc.unary_unary_rpc_method_handler(deny)

    def intercept_service(self, continuation: Any, details: Any) -> Any:
        if details.method.startswith(_HEALTH_PREFIX):
            return continuation(details)
        given = dict(details.invocation_metadata or ()).get("authorization", "")
        given_bytes = given.encode() if isinstance(given, str) else bytes(given)
        if hmac.compare_digest(given_bytes, self._expected):
            return continuation(details)
        return self._deny


@dataclass
class LayerServer:
    server: grpc.Server
    port: int
    health: health.HealthServicer
    service_names: Sequence[str]
    # Called once the server has stopped (gold's build processes, ...).
    on_stop: list[Callable[[], None]] = field(default_factory=list)

    def stop(self, grace: float | None = None) -> None:
        self.health.enter_graceful_shutdown()
        self.server.stop(grace).wait()
        for close in self.on_stop:
            close()


def create_server(
    settings: Settings,
    register: Callable[[grpc.Server], Sequence[str]],
    address: str,
) -> LayerServer:
    """Builds and starts a server; `register` adds servicers and returns their full names."""
    interceptors = []
    if settings.grpc_token is not None:
        interceptors.append(TokenAuthInterceptor(settings.grpc_token.get_secret_value()))
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=settings.grpc_max_workers, thread_name_prefix="rpc"),
        interceptors=interceptors,
        options=[
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.so_reuseport", 0),
        ],
    )
    names = list(register(server))
    health_servicer = health.HealthServicer(experimental_non_blocking=True)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    for name in ["", *names]:
        health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    reflection.enable_server_reflection(
        [
            *names,
            health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
            reflection.SERVICE_NAME,
        ],
        server,
    )
    credentials = server_credentials(settings)
    if credentials is None:
        port = server.add_insecure_port(address)
    else:
        port = server.add_secure_port(address, credentials)
    if port == 0:
        raise OSError(errno.EADDRINUSE, f"could not bind {address}")
    server.start()
    return LayerServer(server, port, health_servicer, names)


def server_credentials(settings: Settings) -> grpc.ServerCredentials | None:
    if settings.grpc_tls_cert_file is None or settings.grpc_tls_key_file is None:
        return None
    ca = settings.grpc_tls_ca_file.read_bytes() if settings.grpc_tls_ca_file else None
    return grpc.ssl_server_credentials(
        [(settings.grpc_tls_key_file.read_bytes(), settings.grpc_tls_cert_file.read_bytes())],
        root_certificates=ca,
        require_client_auth=ca is not None,
    )


def channel_credentials(settings: Settings) -> grpc.ChannelCredentials | None:
    """Client side of the TLS settings: verify servers with the CA, present the client
    certificate when one is set (mutual TLS). None: plaintext."""
    if settings.grpc_tls_ca_file is None:
        return None
    key, cert = settings.grpc_tls_client_key_file, settings.grpc_tls_client_cert_file
    return grpc.ssl_channel_credentials(
        root_certificates=settings.grpc_tls_ca_file.read_bytes(),
        private_key=key.read_bytes() if key else None,
        certificate_chain=cert.read_bytes() if cert else None,
    )


def serve(layer_server: LayerServer, settings: Settings) -> None:
    """Blocks until SIGTERM or SIGINT, then finishes in-flight requests within the grace."""
    stopping = threading.Event()

    def on_signal(signum: int, _frame: Any) -> None:
        if stopping.is_set():
            return
        stopping.set()
        log.info("shutting down", extra={"signal": signal.Signals(signum).name})
        threading.Thread(
            target=layer_server.stop, args=(settings.grpc_grace_seconds,), daemon=True
        ).start()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    layer_server.server.wait_for_termination()
    log.info("stopped")
