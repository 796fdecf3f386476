"""What the CLI shows of executions: live progress per layer and the final report (rich)."""

from __future__ import annotations

import json
import time

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table

from orchestrator.store import (
    ExecutionRecord,
    StepRecord,
    Store,
    TableRole,
    WorkflowExecutionRecord,
)

STATUS_STYLES = {
    "PENDING": "dim",
    "RUNNING": "bold cyan",
    "COMPLETED": "green",
    "FAILED": "bold red",
    "SKIPPED": "yellow",
    "CRASHED": "bold red",
    "CANCELLED": "yellow",
    "BUILT": "green",
}


def _status(text: str) -> str:
    style = STATUS_STYLES.get(text)
    return f"[{style}]{text}[/]" if style else text


def _count(value: int | None) -> str:
    return "" if value is None else f"{value:,}"


def steps_table(execution: ExecutionRecord) -> Table:
    table = Table(
        title=f"{execution.workflow_id}/{execution.job_id} · execution {execution.id} · "
        f"{_status(execution.status)}",
        title_justify="left",
    )
    for column in ("layer", "status", "rows in", "rows out", "rejected", "tries", "seconds"):
        table.add_column(column, justify="right" if column not in ("layer", "status") else "left")
    for step in execution.steps:
        seconds = ""
        if step.started_at and step.finished_at:
            seconds = f"{(step.finished_at - step.started_at).total_seconds():.2f}"
        table.add_row(
            step.layer,
            _status(step.status),
            _count(step.rows_in),
            _count(step.rows_out),
            _count(step.rows_rejected),
            str(step.attempts or ""),
            seconds,
        )
    return table


def follow(
    store: Store, execution_id: str, console: Console, poll: float = 0.25
) -> ExecutionRecord:
    """Shows the steps live until the execution ends; returns its final record."""
    execution = store.get_execution(execution_id)
    with Live(
        steps_table(execution), console=console, refresh_per_second=8, transient=True
    ) as live:
        while execution.active:
            time.sleep(poll)
            execution = store.get_execution(execution_id)
            live.update(steps_table(execution))
    return execution


def report(console: Console, execution: ExecutionRecord, previews: bool = True) -> None:
    """Rows per layer, why rows were set aside, the balance sheet and the gold previews."""
    console.print(steps_table(execution))
    if execution.error:
        console.print(f"[bold red]error[/]: {execution.error}")
    for step in execution.steps:
        if step.tables:
            console.print(f"  {step.layer} tables: {versions_line(step)}")
    for step in execution.steps:
        reasons = step.quality.get("rejected_by_reason") or {}
        label = "rejected" if step.layer == "bronze" else "quarantined"
        for reason, count in sorted(reasons.items(), key=lambda item: -item[1]):
            console.print(f"  {step.layer} {label} ({reason}): {count}")
        if step.quality.get("duplicates_removed"):
            console.print(
                f"  {step.layer} duplicates removed: {step.quality['duplicates_removed']}"
            )
        for warning in step.warnings[:5]:
            console.print(f"  [yellow]{step.layer} warning[/]: {warning}")
    if execution.balance:
        console.print(balance_table(execution.balance))
    if previews and execution.steps and execution.steps[-1].layer == "gold":
        for model in execution.step("gold").quality.get("models", []):
            console.print(preview_table(model))


_ROLE_WORDS: dict[str, str] = {
    TableRole.OUTPUT: "committed",
    TableRole.SIDE: "committed",
    TableRole.MODEL: "committed",
    TableRole.INPUT: "read",
}


def versions_line(step: StepRecord) -> str:
    """The table versions a step committed and read: `committed silver/w/j v4, ...`."""
    return ", ".join(
        f"{_ROLE_WORDS.get(t.role, t.role)} {t.table} v{t.version}" for t in step.tables
    )


def balance_table(balance: dict) -> Group:  # type: ignore[type-arg]
    figures = balance.get("figures", {})
    table = Table(title="balance sheet", title_justify="left", show_header=False)
    table.add_column("figure")
    table.add_column("rows", justify="right")
    for name, value in figures.items():
        table.add_row(name.replace("_", " "), f"{value:,}")
    checks = [
        f"  {'[green]ok[/]' if c['ok'] else '[bold red]GAP[/]'} {c['name']}: "
        f"{c['left']:,} = {c['right']:,}"
        for c in balance.get("checks", [])
    ]
    return Group(table, *checks)


def preview_table(model: dict, limit: int = 5) -> Table:  # type: ignore[type-arg]
    rows = json.loads(model.get("preview_json") or "[]")[:limit]
    table = Table(
        title=f"gold · {model['name']} ({model['rows']:,} rows; first {len(rows)})",
        title_justify="left",
    )
    for column in rows[0] if rows else []:
        table.add_column(str(column))
    for row in rows:
        table.add_row(*(_cell(v) for v in row.values()))
    return table


def _cell(value: object, width: int = 32) -> str:
    """A preview value, cut to `width`; the profile's most frequent values as `value (n)`."""
    if value is None:
        return ""
    text = str(value)
    if isinstance(value, list) and all(isinstance(v, dict) and "value" in v for v in value):
        text = ", ".join(f"{v['value']} ({v.get('count', '?')})" for v in value)
    return text if len(text) <= width else text[: width - 1] + "…"


def execution_row(e: ExecutionRecord) -> tuple[str, ...]:
    """One execution as `flowforge executions list` shows it."""
    seconds = ""
    if e.started_at and e.finished_at:
        seconds = f"{(e.finished_at - e.started_at).total_seconds():.1f}"
    return (
        e.id,
        f"{e.workflow_id}/{e.job_id}",
        e.status,
        ",".join(e.layers),
        f"{e.created_at:%Y-%m-%d %H:%M:%S}",
        seconds,
        e.error or "",
    )


def workflow_table(run: WorkflowExecutionRecord) -> Table:
    """A workflow execution: each job's layers, then each workflow model."""
    table = Table(
        title=f"{run.workflow_id} · workflow execution {run.id} · {_status(run.status)}",
        title_justify="left",
    )
    for column in ("node", "status", "rows", "seconds", "note"):
        table.add_column(column, justify="right" if column in ("rows", "seconds") else "left")
    for execution in run.executions:
        for step in execution.steps:
            seconds = ""
            if step.started_at and step.finished_at:
                seconds = f"{(step.finished_at - step.started_at).total_seconds():.2f}"
            table.add_row(
                f"{execution.job_id} · {step.layer}",
                _status(step.status),
                _count(step.rows_out),
                seconds,
                (step.error or "")[:60],
            )
    for model in run.models:
        table.add_row(
            f"model {model['name']}",
            _status(model.get("status") or ""),
            _count(model.get("rows")) if model.get("status") == "BUILT" else "",
            f"{model.get('seconds', 0):.2f}" if model.get("status") == "BUILT" else "",
            (model.get("reason") or "")[:60],
        )
    return table


def follow_workflow(
    store: Store, run_id: str, console: Console, poll: float = 0.25
) -> WorkflowExecutionRecord:
    """Shows the workflow execution live until it ends; returns its final record."""
    run = store.get_workflow_execution(run_id)
    with Live(workflow_table(run), console=console, refresh_per_second=8, transient=True) as live:
        while run.active:
            time.sleep(poll)
            run = store.get_workflow_execution(run_id)
            live.update(workflow_table(run))
    return run


def workflow_report(console: Console, run: WorkflowExecutionRecord, previews: bool = True) -> None:
    """The workflow execution's table, its error, each model's lineage and preview."""
    console.print(workflow_table(run))
    if run.error:
        console.print(f"[bold red]error[/]: {run.error}")
    for model in run.models:
        reads = [
            f"silver.{i['job_id']} v{i['version']} (execution {i['run_id']})"
            if i.get("job_id")
            else f"dim_{i['dimension']} v{i['version']}"
            for i in model.get("inputs", [])
            if i.get("job_id") or i.get("dimension")
        ]
        if reads:
            console.print(f"  {model['name']} read {', '.join(reads)}")
    if previews:
        for model in run.models:
            if model.get("status") == "BUILT":
                console.print(preview_table(model))
