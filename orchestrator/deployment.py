"""Serving the flow as the deployment `flowforge-medallion/customer-data`.

`flowforge serve deployment` (and `flowforge up`) call serve_deployment(): a Prefect
runner in the foreground that polls the API at PREFECT_API_URL (self-hosted or Prefect
Cloud with PREFECT_API_KEY) and runs each flow run in a child process, which inherits
this process's FLOWFORGE_* settings. With work pools and workers, `prefect.yaml` at the
repository root describes the same deployment (`prefect deploy --all`).
"""

from __future__ import annotations

from orchestrator.flow import FLOW_NAME, medallion

DEPLOYMENT = "customer-data"
FULL_NAME = f"{FLOW_NAME}/{DEPLOYMENT}"


def serve_deployment(name: str = DEPLOYMENT, limit: int | None = None) -> None:
    """Blocks, running flow runs of the deployment until interrupted."""
    medallion.serve(
        name=name,
        description="Bronze -> silver -> gold for one job of a FlowForge workflow.",
        tags=["flowforge"],
        limit=limit,
        print_starting_message=False,
    )
