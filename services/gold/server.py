"""The gold gRPC server: create_server() for tests and embedding, serve() for the CLI."""

from __future__ import annotations

import grpc

from flowforge.runtime import LayerServer
from flowforge.runtime import create_server as create_layer_server
from flowforge.settings import Settings
from flowforge.storage import ObjectStore
from flowforge.v1 import gold_pb2, gold_pb2_grpc
from services.gold.sandbox import Sandbox
from services.gold.servicer import GoldServicer

DEFAULT_PORT = 50053
SERVICE_NAME = gold_pb2.DESCRIPTOR.services_by_name["GoldService"].full_name


def create_server(
    settings: Settings, address: str, store: ObjectStore | None = None
) -> LayerServer:
    store = store or ObjectStore(settings)
    sandbox = Sandbox(settings)

    def register(server: grpc.Server) -> list[str]:
        gold_pb2_grpc.add_GoldServiceServicer_to_server(GoldServicer(sandbox, store), server)
        return [SERVICE_NAME]

    try:
        layer_server = create_layer_server(settings, register, address)
    except BaseException:
        sandbox.close()
        raise
    layer_server.on_stop.append(sandbox.close)
    return layer_server
