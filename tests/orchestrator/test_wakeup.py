"""The served runner's wake-up: a flow run of its deployment, announced on Prefect's event
stream, makes it look for runs at once; with the stream down it polls at the fast pace."""

from __future__ import annotations

import asyncio
import uuid
from uuid import UUID

from prefect.settings import PREFECT_API_URL, temporary_settings

from flowforge.embedded import pick_ports
from orchestrator.wakeup import Wakeup

NEVER = 3600.0  # a fallback poll that never comes within a test: only an event wakes it


async def _polls_until(wakeup: Wakeup, wanted: int, timeout: float = 60) -> int:
    """Runs `wakeup` until it has polled `wanted` times (or `timeout` passes); the count."""
    polled = asyncio.Event()
    count = 0

    async def poll() -> None:
        nonlocal count
        count += 1
        if count >= wanted:
            polled.set()

    task = asyncio.create_task(wakeup.run(poll))
    try:
        await asyncio.wait_for(polled.wait(), timeout)
    finally:
        task.cancel()
    return count


def test_a_flow_run_of_the_deployment_wakes_the_runner(prefect_api: str) -> None:
    from prefect.client.orchestration import get_client

    async def scenario() -> None:
        async with get_client() as client:
            flow_id = await client.create_flow_from_name(f"wake-{uuid.uuid4().hex[:8]}")
            deployment = await client.create_deployment(flow_id=flow_id, name="served")
            wakeup = Wakeup([deployment], fallback_seconds=NEVER)
            polled = asyncio.Event()

            async def poll() -> None:
                polled.set()

            task = asyncio.create_task(wakeup.run(poll))
            try:
                # Connecting polls once (runs announced while it was away), then it waits.
                await asyncio.wait_for(polled.wait(), 60)
                assert wakeup.connected and wakeup.wakes == 0
                polled.clear()
                run = await client.create_flow_run_from_deployment(deployment)
                await asyncio.wait_for(polled.wait(), 60)  # no fallback poll comes before
                assert wakeup.wakes == 1, run.id
            finally:
                task.cancel()

    asyncio.run(scenario())


def test_with_the_event_stream_down_it_polls_at_the_fallback_pace() -> None:
    nobody = f"http://127.0.0.1:{pick_ports()['s3.port']}/api"  # refused: nothing listens
    with temporary_settings(updates={PREFECT_API_URL: nobody}):
        wakeup = Wakeup([UUID(int=1)], fallback_seconds=0.05)
        assert asyncio.run(_polls_until(wakeup, 3)) >= 3
    assert not wakeup.connected
