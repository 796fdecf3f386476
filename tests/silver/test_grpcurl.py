"""People debugging silver with grpcurl: reflection lists the services and the spec."""

from __future__ import annotations

from flowforge.runtime import LayerServer
from tests.bronze.test_grpcurl import assert_reflects


def test_reflection_lists_services(silver_server: LayerServer) -> None:
    assert_reflects(silver_server.port, "SilverService", "Expectation", "max_bad_percent")
