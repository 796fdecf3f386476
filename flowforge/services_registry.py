"""Which layer services exist, their default ports and how to build each server."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass

from flowforge.runtime import LayerServer
from flowforge.settings import Settings
from flowforge.storage import ObjectStore


@dataclass(frozen=True)
class LayerService:
    name: str
    module: str  # exposes create_server(settings, address, store) -> LayerServer
    default_port: int

    def factory(self) -> Callable[[Settings, str, ObjectStore | None], LayerServer]:
        return importlib.import_module(self.module).create_server  # type: ignore[no-any-return]


LAYER_SERVICES = {
    "bronze": LayerService("bronze", "services.bronze.server", 50051),
    "silver": LayerService("silver", "services.silver.server", 50052),
    "gold": LayerService("gold", "services.gold.server", 50053),
}


def available() -> list[str]:
    """The layer services whose server module is present in this build."""
    found = []
    for name, service in LAYER_SERVICES.items():
        try:
            importlib.import_module(service.module)
        except ModuleNotFoundError as exc:
            if exc.name and service.module.startswith(exc.name):
                continue
            raise
        found.append(name)
    return found
