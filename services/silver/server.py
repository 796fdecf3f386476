"""The silver gRPC server: create_server() for tests and embedding, serve() for the CLI."""

from __future__ import annotations

import grpc

from flowforge.runtime import LayerServer
from flowforge.runtime import create_server as create_layer_server
from flowforge.settings import Settings
from flowforge.storage import ObjectStore
from flowforge.v1 import silver_pb2, silver_pb2_grpc
from services.silver.servicer import SilverServicer

DEFAULT_PORT = 50052
SERVICE_NAME = silver_pb2.DESCRIPTOR.services_by_name["SilverService"].full_name


def create_server(
    settings: Settings, address: str, store: ObjectStore | None = None
) -> LayerServer:
    store = store or ObjectStore(settings)

    def register(server: grpc.Server) -> list[str]:
        silver_pb2_grpc.add_SilverServiceServicer_to_server(SilverServicer(settings, store), server)
        return [SERVICE_NAME]

    return create_layer_server(settings, register, address)
