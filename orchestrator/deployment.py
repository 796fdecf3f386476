"""Serving the flow as the deployment `flowforge-medallion/customer-data`.

`flowforge serve deployment` (and `flowforge up`) call serve_deployment(): a Prefect
runner in the foreground that polls the API at PREFECT_API_URL (self-hosted or Prefect
Cloud with PREFECT_API_KEY) and runs each flow run in a child process, which inherits
this process's FLOWFORGE_* settings. With work pools and workers, `prefect.yaml` at the
repository root describes the same deployment (`prefect deploy --all`).

The runner looks for new flow runs every POLL_SECONDS (1 s) rather than Prefect's 10 s:
a triggered execution otherwise waits 5 s on average before it starts, which is most of a
small job's time from trigger to committed gold. An explicit PREFECT_RUNNER_POLL_FREQUENCY
(environment or Prefect profile) still wins.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext

from orchestrator.flow import FLOW_NAME, medallion

DEPLOYMENT = "customer-data"
FULL_NAME = f"{FLOW_NAME}/{DEPLOYMENT}"
POLL_SECONDS = 1


def serve_deployment(
    name: str = DEPLOYMENT, limit: int | None = None, health: bool = False
) -> None:
    """Blocks, running flow runs of the deployment until interrupted. `health`: the
    runner also answers GET /health at PREFECT_RUNNER_SERVER_HOST:_PORT (a liveness probe;
    `flowforge serve deployment --port` sets those)."""
    with poll_frequency():  # read once, when serve() builds its runner
        medallion.serve(
            name=name,
            description="Bronze -> silver -> gold for one job of a FlowForge workflow.",
            tags=["flowforge"],
            limit=limit,
            print_starting_message=False,
            webserver=health,
        )


def poll_frequency() -> AbstractContextManager[object]:
    """POLL_SECONDS as the runner's poll frequency, unless it was set explicitly."""
    from prefect.settings import (
        PREFECT_RUNNER_POLL_FREQUENCY,
        get_current_settings,
        temporary_settings,
    )

    if "poll_frequency" in get_current_settings().runner.model_fields_set:
        return nullcontext()
    return temporary_settings(updates={PREFECT_RUNNER_POLL_FREQUENCY: POLL_SECONDS})
