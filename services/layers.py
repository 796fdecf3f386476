"""The layer services FlowForge serves, in one table the runtime serves from.

Each row names a layer, its default port, its proto service and how to build its
servicer; `create_server` is the one way to start any of them (tests bind port 0).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf.descriptor import ServiceDescriptor

from flowforge.runtime import LayerServer
from flowforge.runtime import create_server as create_grpc_server
from flowforge.settings import Settings
from flowforge.storage import ObjectStore
from flowforge.v1 import (
    bronze_pb2,
    bronze_pb2_grpc,
    gold_pb2,
    gold_pb2_grpc,
    silver_pb2,
    silver_pb2_grpc,
)
from services.bronze.servicer import BronzeServicer
from services.gold.servicer import GoldServicer
from services.silver.servicer import SilverServicer


@dataclass(frozen=True)
class LayerService:
    name: str
    default_port: int
    descriptor: ServiceDescriptor
    servicer: Callable[[Settings, ObjectStore], Any]
    add_to_server: Callable[[Any, grpc.Server], None]

    @property
    def service_name(self) -> str:
        """The full proto name (flowforge.v1.BronzeService): health and reflection use it."""
        return self.descriptor.full_name


LAYER_SERVICES = {
    "bronze": LayerService(
        "bronze",
        50051,
        bronze_pb2.DESCRIPTOR.services_by_name["BronzeService"],
        BronzeServicer,
        bronze_pb2_grpc.add_BronzeServiceServicer_to_server,
    ),
    "silver": LayerService(
        "silver",
        50052,
        silver_pb2.DESCRIPTOR.services_by_name["SilverService"],
        SilverServicer,
        silver_pb2_grpc.add_SilverServiceServicer_to_server,
    ),
    "gold": LayerService(
        "gold",
        50053,
        gold_pb2.DESCRIPTOR.services_by_name["GoldService"],
        GoldServicer,
        gold_pb2_grpc.add_GoldServiceServicer_to_server,
    ),
}


def create_server(
    layer: str, settings: Settings, address: str, store: ObjectStore | None = None
) -> LayerServer:
    """Builds, binds and starts the layer's server (health, reflection, auth, TLS). The
    layer uses its own S3 identity when its keys are set (Settings.for_component); a
    `store` given must have been made with those settings."""
    service = LAYER_SERVICES[layer]
    settings = settings.for_component(layer)
    objects = store or ObjectStore(settings)

    servicer = service.servicer(settings, objects)

    def register(server: grpc.Server) -> list[str]:
        service.add_to_server(servicer, server)
        return [service.service_name]

    close = getattr(servicer, "close", None)  # gold's warm build process
    try:
        layer_server = create_grpc_server(settings, register, address)
    except BaseException:
        if close is not None:
            close()
        raise
    if close is not None:
        layer_server.on_stop.append(close)
    return layer_server
