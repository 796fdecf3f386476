"""Serving the flows as the deployments `flowforge-medallion/customer-data` (one job),
`flowforge-workflow/customer-data` (a whole workflow) and `flowforge-maintenance/tables`
(on FLOWFORGE_MAINTENANCE_CRON).

`flowforge serve deployment` (and `flowforge up`) call serve_deployment(): a Prefect
runner in the foreground that polls the API at PREFECT_API_URL (self-hosted or Prefect
Cloud with PREFECT_API_KEY) and runs each flow run in a child process, which inherits
this process's FLOWFORGE_* settings. With work pools and workers, `prefect.yaml` at the
repository root describes the same deployments (`prefect deploy --all`).

Against a self-hosted Prefect server the runner's own loop looks for new flow runs every
IDLE_POLL_SECONDS (5 s), and a triggered run wakes it at once: Prefect's event stream
announces the run (see wakeup.py), about 0.1 s after the trigger, instead of the 0.25 s
poll that cost the idle Prefect server ~6 % of a core. While that stream is down it polls
every POLL_SECONDS (0.25 s). Against Prefect Cloud, where every request counts toward the
account's rate limit, it keeps Prefect's own poll frequency (and is woken all the same).
An explicit PREFECT_RUNNER_POLL_FREQUENCY (environment or Prefect profile) wins in both
cases.

Each flow run's child process is forked from a warm fork server that has already imported
Prefect and the flow (see warm_flow_run_processes), not spawned as a fresh interpreter
that spends 2-4 s importing them before the flow's first line: most of a small job's time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
from types import ModuleType
from typing import TYPE_CHECKING, Any
from uuid import UUID

from flowforge.settings import Settings, get_settings
from orchestrator.flow import FLOW_NAME, medallion
from orchestrator.maintenance_flow import MAINTENANCE_FLOW, maintenance
from orchestrator.wakeup import IDLE_POLL_SECONDS, Wakeup
from orchestrator.workflow_flow import WORKFLOW_FLOW, workflow_run

if TYPE_CHECKING:
    from prefect.runner import Runner

logger = logging.getLogger(__name__)

DEPLOYMENT = "customer-data"
FULL_NAME = f"{FLOW_NAME}/{DEPLOYMENT}"
WORKFLOW_NAME = f"{WORKFLOW_FLOW}/{DEPLOYMENT}"
MAINTENANCE_DEPLOYMENT = "tables"
MAINTENANCE_NAME = f"{MAINTENANCE_FLOW}/{MAINTENANCE_DEPLOYMENT}"
MAINTENANCE_DESCRIPTION = (
    "Compacts small files and vacuums every FlowForge table, keeping the versions "
    "executions recorded (FLOWFORGE_TABLES_RETENTION_DAYS)."
)
POLL_SECONDS = 0.25


def serve_deployment(
    name: str = DEPLOYMENT,
    limit: int | None = None,
    health: bool = False,
    settings: Settings | None = None,
) -> None:
    """Blocks, running flow runs of the deployments until interrupted. `health`: the
    runner also answers GET /health at PREFECT_RUNNER_SERVER_HOST:_PORT (a liveness probe;
    `flowforge serve deployment --port` sets those)."""
    from prefect.exceptions import TerminationSignal
    from prefect.runner import Runner

    settings = settings or get_settings()
    warm_flow_run_processes()
    wake = hasattr(Runner, "_get_and_submit_flow_runs")
    if not wake:
        logger.warning("this Prefect version polls its own way: polling every %ss", POLL_SECONDS)
    every = poll_seconds() if wake else fallback_seconds()
    runner = Runner(name=name, limit=limit, query_seconds=every, webserver=health)
    deployment_id = runner.add_flow(
        medallion,
        name=name,
        description="Bronze -> silver -> gold for one job of a FlowForge workflow.",
        tags=["flowforge"],
    )
    workflow_id = runner.add_flow(
        workflow_run,
        name=name,
        description="A whole FlowForge workflow: every job, then the workflow's own models.",
        tags=["flowforge"],
    )
    maintenance_id = runner.add_flow(
        maintenance,
        name=MAINTENANCE_DEPLOYMENT,
        description=MAINTENANCE_DESCRIPTION,
        tags=["flowforge"],
        cron=maintenance_cron(settings),
        concurrency_limit=1,  # two at once would race each other's commits
    )
    # add_flow outside an event loop: its result is the deployment's id.
    ids = [i for i in (deployment_id, workflow_id, maintenance_id) if isinstance(i, UUID)]
    assert len(ids) == 3
    wakeup = Wakeup(ids, fallback_seconds()) if wake else None
    try:
        asyncio.run(_serve(runner, wakeup))
    except (KeyboardInterrupt, TerminationSignal) as exc:
        logger.info("%s: the runner stopped", type(exc).__name__)


def maintenance_cron(settings: Settings) -> str | None:
    """The maintenance deployment's schedule: FLOWFORGE_MAINTENANCE_CRON, or none ('off')."""
    cron = settings.maintenance_cron.strip()
    return None if cron.lower() in ("", "off", "none") else cron


async def _serve(runner: Runner, wakeup: Wakeup | None) -> None:
    """The runner until it stops, woken by `wakeup` meanwhile."""

    async def poll() -> None:
        if runner.started and not runner.stopping:
            await runner._get_and_submit_flow_runs()  # the workload of its own loop

    woken = asyncio.create_task(wakeup.run(poll)) if wakeup else None
    try:
        await runner.start()
    finally:
        if woken is not None:
            woken.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await woken


def poll_seconds() -> float:
    """How often the runner's own loop asks the Prefect API for new flow runs: an explicit
    PREFECT_RUNNER_POLL_FREQUENCY; else Prefect's own default against Prefect Cloud (each
    poll counts toward the account's rate limit); else IDLE_POLL_SECONDS (a trigger wakes
    it sooner)."""
    runner, explicit_or_cloud = _poll_setting()
    return float(runner.poll_frequency) if explicit_or_cloud else IDLE_POLL_SECONDS


def fallback_seconds() -> float:
    """How often it polls while Prefect's event stream is down (nothing wakes it then):
    POLL_SECONDS against a self-hosted server, else as poll_seconds()."""
    runner, explicit_or_cloud = _poll_setting()
    return float(runner.poll_frequency) if explicit_or_cloud else POLL_SECONDS


def _poll_setting() -> tuple[Any, bool]:
    from prefect.client.base import ServerType, determine_server_type
    from prefect.settings import get_current_settings

    runner = get_current_settings().runner
    explicit = "poll_frequency" in runner.model_fields_set
    return runner, explicit or determine_server_type() == ServerType.CLOUD


# What the fork server imports once, so that a flow run's process starts with them loaded
# (the CLI too: a child re-runs the runner's __main__, `flowforge`, before the flow).
WARM_MODULES = [
    "prefect.flow_engine",
    "cli.main",
    "orchestrator.flow",
    "orchestrator.maintenance_flow",
    # imported by Prefect's engine or the flow only once a flow run is under way
    "prefect.task_engine",
    "prefect.utilities.visualization",
    "prefect._internal.observers",
    "anyio._backends._asyncio",
    "grpc._channel",
    "sqlite3",
    "encodings.idna",
]


class _ForkServerForSpawn:
    """Stands in for the `multiprocessing` module inside prefect.flow_engine: its
    get_context("spawn") hands out the warm fork server instead; everything else is the
    real module."""

    def __init__(self, real: ModuleType, forkserver: Any) -> None:
        self._real = real
        self._forkserver = forkserver

    def get_context(self, method: str | None = None) -> Any:
        return self._forkserver if method == "spawn" else self._real.get_context(method)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


def warm_flow_run_processes() -> bool:
    """Makes Prefect start this process's flow runs as forks of a fork server that has
    imported WARM_MODULES (Python's `forkserver` start method), instead of spawning a fresh
    interpreter per run. The child still gets a process of its own (a crash or a kill
    stays contained, Prefect cancels it by pid) and the runner's environment, which
    Prefect re-applies in the child as it does after a spawn.

    Prefect 3.9 spawns in flow_engine.run_flow_in_subprocess through
    `multiprocessing.get_context("spawn")`; that is the one name replaced here. If a
    Prefect release no longer looks like that, flow runs are spawned as before (a warning
    says so) and only start slower. Returns whether flow runs start from the fork server."""
    from prefect import flow_engine

    if "forkserver" not in multiprocessing.get_all_start_methods():  # Windows
        return False
    if getattr(flow_engine, "multiprocessing", None) is not multiprocessing or not hasattr(
        flow_engine, "run_flow_in_subprocess"
    ):
        logger.warning("this Prefect version starts flow runs its own way: spawning them")
        return False
    from multiprocessing import forkserver as forkserver_module

    forkserver = multiprocessing.get_context("forkserver")
    forkserver.set_forkserver_preload(WARM_MODULES)
    forkserver_module.ensure_running()  # warm now, not when the first flow run waits on it
    flow_engine.multiprocessing = _ForkServerForSpawn(multiprocessing, forkserver)  # type: ignore[assignment]
    return True
