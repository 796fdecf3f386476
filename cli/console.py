"""What the CLI shows of executions: live progress per layer and the final report (rich)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import TypeVar

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.progress import BarColumn, Progress, TaskID, TextColumn
from rich.table import Table

from orchestrator.api.schemas import Progress as StepProgress
from orchestrator.store import (
    ExecutionRecord,
    StepRecord,
    Store,
    TableRole,
    WorkflowExecutionRecord,
)

Followed = TypeVar("Followed", ExecutionRecord, WorkflowExecutionRecord)

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


def _took(record: StepRecord | ExecutionRecord, digits: int) -> str:
    """Seconds from start to end, as text ("" until it has both)."""
    if not (record.started_at and record.finished_at):
        return ""
    return f"{(record.finished_at - record.started_at).total_seconds():.{digits}f}"


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
        seconds = _took(step, 2)
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


def progress_of(step: StepRecord) -> StepProgress | None:
    """A step's last progress report with its fraction done and time left, as the API
    answers it; None when the layer reported none."""
    return StepProgress.of(step.progress, step.started_at) if step.progress else None


def _duration(seconds: float | None) -> str | None:
    if seconds is None:
        return None
    if seconds < 60:
        return f"{max(1, round(seconds))} s"
    return f"{int(seconds // 60)} min {round(seconds % 60)} s"


def progress_words(step: StepRecord) -> str:
    """`reading · 42 % · 123,456 rows · 42.4 MB of 100.0 MB · about 1 min 15 s left`."""
    p = progress_of(step)
    if p is None:
        return ""
    parts = [p.phase]
    if p.fraction is not None:
        parts.append(f"{int(p.fraction * 100)} %")
    if p.rows is not None:
        parts.append(f"{p.rows:,} rows")
    if p.bytes_read is not None:
        total = f" of {p.bytes_total / 1e6:,.1f} MB" if p.bytes_total else ""
        parts.append(f"{p.bytes_read / 1e6:,.1f} MB{total}")
    if p.files_total:
        parts.append(f"{p.files_done or 0} of {p.files_total} files")
    if p.models_total:
        parts.append(f"{p.models_done or 0} of {p.models_total} models")
    left = _duration(p.eta_seconds)
    if left and step.status == "RUNNING":
        parts.append(f"about {left} left")
    return " · ".join(parts)


class LayerBars:
    """One rich progress bar per layer: its percent and what it last reported."""

    def __init__(self) -> None:
        self.bars = Progress(
            TextColumn("{task.description:<7}"),
            BarColumn(),
            TextColumn("{task.fields[words]}"),
            auto_refresh=False,
        )
        self._tasks: dict[str, TaskID] = {}

    def update(self, execution: ExecutionRecord) -> None:
        for step in execution.steps:
            if step.status == "PENDING" or (step.status == "SKIPPED" and not step.progress):
                continue
            task = self._tasks.get(step.layer)
            if task is None:
                task = self._tasks[step.layer] = self.bars.add_task(
                    step.layer, total=None, words=""
                )
            p = progress_of(step)
            if step.status == "COMPLETED":
                self.bars.update(task, total=100, completed=100, words=_status("COMPLETED"))
            elif p is not None and p.fraction is not None:
                words = progress_words(step)
                if step.status != "RUNNING":  # stopped: says how, as the web UI does
                    ended = execution.status in ("CANCELLED", "CRASHED")
                    words = f"{_status(execution.status if ended else step.status)} at {words}"
                self.bars.update(task, total=100, completed=p.fraction * 100, words=words)
            else:
                words = progress_words(step) or _status(step.status)
                self.bars.update(task, words=words)

    def renderable(self) -> RenderableType:
        return self.bars.get_renderable()


def plain_lines(before: ExecutionRecord | None, execution: ExecutionRecord) -> list[str]:
    """What changed since `before`, one line per step whose status or progress moved
    (what `follow` prints when the output is not a terminal)."""
    old = {s.layer: s for s in before.steps} if before else {}
    lines = []
    for step in execution.steps:
        was = old.get(step.layer)
        if was is not None and (was.status, was.progress) == (step.status, step.progress):
            continue
        if step.status == "PENDING":
            continue
        words = progress_words(step) if step.status == "RUNNING" else ""
        lines.append(f"{step.layer}: {step.status}{' · ' + words if words else ''}")
    if before is None or before.status != execution.status:
        lines.append(f"execution {execution.id}: {execution.status}")
    return lines


def follow(
    store: Store, execution_id: str, console: Console, poll: float = 0.25
) -> ExecutionRecord:
    """Shows the steps and a progress bar per layer live until the execution ends (plain
    lines as things change when the output is not a terminal); returns its final record."""
    execution = store.get_execution(execution_id)
    if not console.is_terminal:
        for line in plain_lines(None, execution):
            console.print(line, highlight=False)
        while execution.active:
            time.sleep(poll)
            before, execution = execution, store.get_execution(execution_id)
            for line in plain_lines(before, execution):
                console.print(line, highlight=False)
        return execution
    bars = LayerBars()

    def view(execution: ExecutionRecord) -> RenderableType:
        bars.update(execution)
        return Group(steps_table(execution), bars.renderable())

    return _live(console, lambda: store.get_execution(execution_id), execution, view, poll)


def _live(
    console: Console,
    read: Callable[[], Followed],
    record: Followed,
    view: Callable[[Followed], RenderableType],
    poll: float,
) -> Followed:
    """Draws `view` of the record, read again every `poll` seconds, until it has ended."""
    with Live(view(record), console=console, refresh_per_second=8, transient=True) as live:
        while record.active:
            time.sleep(poll)
            record = read()
            live.update(view(record))
    return record


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
    seconds = _took(e, 1)
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
            seconds = _took(step, 2)
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
    """Shows the workflow execution live (its nodes, and a progress bar per layer of each
    running job) until it ends; plain lines as things change when the output is not a
    terminal. Returns its final record."""
    run = store.get_workflow_execution(run_id)
    if not console.is_terminal:
        before: dict[str, ExecutionRecord] = {}
        status = None
        while True:
            for execution in run.executions:
                for line in plain_lines(before.get(execution.job_id), execution):
                    console.print(f"{execution.job_id} {line}", highlight=False)
                before[execution.job_id] = execution
            if run.status != status:
                console.print(f"workflow execution {run.id}: {run.status}", highlight=False)
                status = run.status
            if not run.active:
                return run
            time.sleep(poll)
            run = store.get_workflow_execution(run_id)
    bars: dict[str, LayerBars] = {}

    def view(run: WorkflowExecutionRecord) -> RenderableType:
        shown: list[RenderableType] = [workflow_table(run)]
        for execution in run.executions:
            if execution.status == "RUNNING":
                job_bars = bars.setdefault(execution.job_id, LayerBars())
                job_bars.update(execution)
                shown += [f"[bold]{execution.job_id}[/]", job_bars.renderable()]
        return Group(*shown)

    return _live(console, lambda: store.get_workflow_execution(run_id), run, view, poll)


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
