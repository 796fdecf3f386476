"""People debugging gold with grpcurl: reflection lists the services and the spec."""

from __future__ import annotations

from flowforge.runtime import LayerServer
from tests.bronze.test_grpcurl import assert_reflects


def test_reflection_lists_services(gold_server: LayerServer) -> None:
    assert_reflects(gold_server.port, "GoldService", "GoldSpec", "skip_profile")


def test_reflection_describes_the_workflow_request(gold_server: LayerServer) -> None:
    assert_reflects(gold_server.port, "GoldService", "BuildWorkflowRequest", "failed_jobs")
