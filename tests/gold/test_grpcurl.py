"""People debugging gold with grpcurl: reflection lists the services and the spec."""

from __future__ import annotations

from flowforge.runtime import LayerServer
from tests.bronze.test_grpcurl import grpcurl


def test_reflection_lists_services(gold_server: LayerServer) -> None:
    address = f"127.0.0.1:{gold_server.port}"
    listed = grpcurl(address, "list")
    assert listed.returncode == 0, listed.stderr
    assert set(listed.stdout.split()) >= {"flowforge.v1.GoldService", "grpc.health.v1.Health"}
    described = grpcurl(address, "describe", "flowforge.v1.GoldSpec")
    assert described.returncode == 0, described.stderr
    assert "skip_profile" in described.stdout
