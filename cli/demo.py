"""`flowforge demo`: the sample workflow through the flows on the embedded stack: every
job, then the workflow's own models."""

from __future__ import annotations

import shutil
import tempfile
from contextlib import ExitStack
from pathlib import Path

from rich.console import Console

from flowforge.logs import configure_logging
from flowforge.settings import Settings


def run_demo(settings: Settings, keep: bool = False) -> int:
    from cli.console import follow_workflow, report, workflow_report
    from cli.stack import EmbeddedStack, seed
    from orchestrator.prefect_server import quiet_console
    from orchestrator.runner import InProcessRunner
    from orchestrator.store import Store
    from orchestrator.trigger import trigger_workflow_execution

    console = Console()
    configure_logging(settings.model_copy(update={"log_level": "WARNING", "log_format": "text"}))
    quiet_console()
    state = Path(tempfile.mkdtemp(prefix="flowforge-demo-"))
    failed = []
    with ExitStack() as stack:
        if not keep:
            stack.callback(shutil.rmtree, state, True)
        console.print(
            "[bold]FlowForge demo[/]: starting SeaweedFS, the bronze, silver and gold services "
            "and a Prefect server (about 20 s) ..."
        )
        embedded = stack.enter_context(EmbeddedStack(settings, state, prefect=True))
        live = embedded.settings
        store = Store.open(live)
        stack.callback(store.close)
        runner = InProcessRunner(live, store)
        workflow = seed(live, store)
        assert embedded.prefect is not None
        console.print(
            f"S3 {live.s3_endpoint_url}, services {live.bronze_address} {live.silver_address} "
            f"{live.gold_address}, Prefect {embedded.prefect.api_url}\n"
            f"seeded workflow [bold]{workflow.id}[/]: jobs "
            f"{', '.join(j.id for j in workflow.jobs)}; dimension {', '.join(workflow.dimensions)}"
        )
        console.rule(f"{workflow.id}: every job, then the workflow's own models")
        run = trigger_workflow_execution(live, workflow.id, store=store, runner=runner)
        final = follow_workflow(store, run.id, console)
        runner.join()
        for execution in final.executions:
            console.rule(f"{workflow.id}/{execution.job_id}")
            report(console, execution)
            if execution.status != "COMPLETED":
                failed.append(execution.job_id)
        console.rule(f"{workflow.id}: workflow models")
        workflow_report(console, final)
        if final.status != "COMPLETED" and not failed:
            failed.append(f"workflow models ({final.error})")
        if keep:
            console.print(f"state kept in {state}")
    if failed:
        console.print(f"[bold red]failed[/]: {', '.join(failed)}")
        return 1
    console.print(
        "[bold green]every sample job and workflow model completed[/]; everything the demo "
        "started is stopped"
    )
    return 0
