"""`flowforge upload` and `flowforge schedules ...`: runs that start themselves, from the
command line (retention is part of `flowforge maintain`)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from flowforge.errors import FlowForgeError
from flowforge.logs import configure_command_logging
from flowforge.settings import Settings, get_settings

if TYPE_CHECKING:
    from orchestrator.store import Store

schedules_app = typer.Typer(
    no_args_is_help=True, help="Job schedules (cron), registered with the Prefect deployment."
)


def _fail(exc: FlowForgeError) -> typer.Exit:
    print(f"error: {exc.message}", file=sys.stderr)
    return typer.Exit(1)


def _opened():  # type: ignore[no-untyped-def]
    from orchestrator.store import Store

    settings = get_settings()
    configure_command_logging(settings, "WARNING")
    return settings, Store.open(settings)


def upload_files(
    settings: Settings, store: Store, workflow: str, job: str, files: list[Path], trigger: bool
) -> dict[str, str]:
    """Uploads FILEs to the job's landing prefix; with `trigger`, notes them for the job's
    upload trigger (else only as seen, so the landing scan does not start the job again)."""
    from flowforge.ids import validate_file_name
    from flowforge.layout import JobKey, landing_prefix
    from flowforge.storage import prepare_store
    from orchestrator.triggers import note_uploads

    key = JobKey.of(workflow, job)
    for file in files:  # each name becomes the last part of a landing key
        validate_file_name(file.name, (".csv",))
        if not file.is_file():
            raise FlowForgeError(f"{file} is not a file")
    _, definition = store.get_job(workflow, job)
    objects = prepare_store(settings)
    etags = {}
    for file in files:
        with file.open("rb") as stream:  # streamed, in parts when large
            objects.upload(landing_prefix(key) + file.name, stream)
        info = objects.head(landing_prefix(key) + file.name)
        if info is not None:
            etags[info.key] = info.etag
    if definition.trigger.on_upload:
        if trigger:
            note_uploads(store, definition, workflow, etags)
        else:
            store.see_landing(workflow, job, etags)
    return etags


def upload(
    workflow: Annotated[str, typer.Option("--workflow", "-w", help="Workflow id.")],
    job: Annotated[str, typer.Option("--job", "-j", help="Job id.")],
    files: Annotated[list[Path], typer.Argument(help="CSV files for the job's landing prefix.")],
) -> None:
    """Upload FILEs to the job's landing prefix; a job with trigger.on_upload starts once
    uploads have been quiet for its debounce (run by the API's automation loop)."""
    settings, store = _opened()
    try:
        uploaded = upload_files(settings, store, workflow, job, files, trigger=True)
        pending = store.pending_trigger(workflow, job)
    except FlowForgeError as exc:
        raise _fail(exc) from None
    for key in uploaded:
        print(f"uploaded {key}")
    if pending is not None:
        print(f"{workflow}/{job} starts at {pending.due_at:%Y-%m-%d %H:%M:%S}Z unless more "
              "files come first")  # fmt: skip


@schedules_app.command("list")
def schedules_list() -> None:
    """Every schedule (a workflow's own, each job's): cron, time zone, paused, next run."""
    from orchestrator.schedules import WORKFLOW_SCHEDULE, next_run

    _, store = _opened()
    states = store.schedule_states()
    for summary in store.list_workflows():
        workflow = store.get_workflow(summary.id)
        scheduled = [(WORKFLOW_SCHEDULE, workflow.schedule)] if workflow.schedule else []
        scheduled += [(job.id, job.schedule) for job in workflow.jobs if job.schedule]
        for job_id, schedule in scheduled:
            state = states.get((summary.id, job_id))
            paused = bool(state and state.paused)
            upcoming = "paused" if paused else f"next {next_run(schedule):%Y-%m-%d %H:%M}Z"
            note = f"\t{state.error}" if state and state.error else ""
            name = summary.id if job_id == WORKFLOW_SCHEDULE else f"{summary.id}/{job_id}"
            print(f"{name}\t{schedule.cron}\t{schedule.timezone}\t{upcoming}{note}")


def _pause(workflow: str, job: str | None, paused: bool) -> None:
    from orchestrator.schedules import WORKFLOW_SCHEDULE, set_paused

    settings, store = _opened()
    try:
        state = set_paused(settings, store, workflow, job or WORKFLOW_SCHEDULE, paused)
    except FlowForgeError as exc:
        raise _fail(exc) from None
    name = f"{workflow}/{job}" if job else f"workflow {workflow}"
    print(f"{name}: schedule {'paused' if state.paused else 'active'}")


@schedules_app.command("pause")
def schedules_pause(
    workflow: Annotated[str, typer.Option("--workflow", "-w")],
    job: Annotated[
        str | None, typer.Option("--job", "-j", help="Without it: the workflow's own schedule.")
    ] = None,
) -> None:
    """Pause a job's (or the workflow's own) schedule, in Prefect too."""
    _pause(workflow, job, True)


@schedules_app.command("resume")
def schedules_resume(
    workflow: Annotated[str, typer.Option("--workflow", "-w")],
    job: Annotated[
        str | None, typer.Option("--job", "-j", help="Without it: the workflow's own schedule.")
    ] = None,
) -> None:
    """Resume a job's (or the workflow's own) schedule."""
    _pause(workflow, job, False)


@schedules_app.command("sync")
def schedules_sync() -> None:
    """Make the Prefect deployment's schedules match the stored jobs now."""
    from orchestrator.schedules import sync_schedules

    settings, store = _opened()
    try:
        changed = sync_schedules(settings, store)
    except FlowForgeError as exc:
        raise _fail(exc) from None
    print(f"schedules in sync ({changed} changed)")
