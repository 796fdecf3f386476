"""`flowforge tables list|history|show`: FlowForge's Delta tables, readable or as JSON."""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from flowforge.errors import FlowForgeError
from flowforge.logs import configure_logging
from flowforge.settings import Settings, get_settings

app = typer.Typer(
    no_args_is_help=True,
    help="FlowForge's Delta tables: list them, their commits, any version's rows.",
)
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]
TableArg = Annotated[str, typer.Argument(help="A table path, e.g. silver/customer-data/customers.")]


def quiet_settings() -> Settings:
    settings = get_settings()
    configure_logging(settings.model_copy(update={"log_level": "WARNING"}))
    return settings


def fail(exc: FlowForgeError) -> typer.Exit:
    print(f"error: {exc.message}", file=sys.stderr)
    return typer.Exit(1)


def print_json(value: Any) -> None:
    print(json.dumps(value, indent=2))


def size(n: int) -> str:
    """Bytes as people read them: 812 B, 4.2 KB, 1.3 GB."""
    value = float(n)
    for unit in ("B", "KB", "MB"):
        if value < 1024:
            return f"{n:,} B" if unit == "B" else f"{value:,.1f} {unit}"
        value /= 1024
    return f"{value:,.1f} GB"


@app.command("list")
def tables_list(as_json: AsJson = False) -> None:
    """Every table with its latest version, rows, size, last commit and run."""
    from flowforge.catalog import list_tables
    from flowforge.storage import prepare_store
    from orchestrator.api.schemas import TableInfo

    settings = quiet_settings()
    try:
        found = [TableInfo.of(s) for s in list_tables(settings, prepare_store(settings))]
    except FlowForgeError as exc:
        raise fail(exc) from None
    if as_json:
        print_json([t.model_dump(mode="json") for t in found])
        return
    table = Table(title=f"{len(found)} tables in s3://{settings.s3_bucket}", title_justify="left")
    for column in ("table", "kind", "version", "rows", "size", "last commit (UTC)", "run"):
        table.add_column(
            column, justify="right" if column in ("version", "rows", "size") else "left"
        )
    for t in found:
        table.add_row(
            t.table,
            t.kind,
            str(t.version),
            f"{t.rows:,}",
            size(t.size_bytes),
            f"{t.last_commit_at:%Y-%m-%d %H:%M:%S} {t.last_operation}",
            t.run_id or "",
        )
    Console().print(table)


@app.command("history")
def tables_history(
    table: TableArg,
    limit: Annotated[int, typer.Option(help="Commits, newest first.")] = 20,
    as_json: AsJson = False,
) -> None:
    """TABLE's commits, newest first: version, time, operation, run, what it read."""
    from flowforge.catalog import history
    from flowforge.tables import TableRef
    from orchestrator.api.schemas import TableCommit

    settings = quiet_settings()
    try:
        commits = [TableCommit.of(c) for c in history(settings, TableRef.parse(table), limit)]
    except FlowForgeError as exc:
        raise fail(exc) from None
    if as_json:
        print_json({"table": table, "items": [c.model_dump(mode="json") for c in commits]})
        return
    view = Table(title=f"{table}: {len(commits)} commits, newest first", title_justify="left")
    for column in ("version", "time (UTC)", "operation", "run", "read"):
        view.add_column(column, justify="right" if column == "version" else "left")
    for c in commits:
        view.add_row(
            str(c.version),
            f"{c.timestamp:%Y-%m-%d %H:%M:%S}",
            c.operation,
            c.run_id or "",
            read_summary(c.inputs),
        )
    Console().print(view)


def read_summary(inputs: dict[str, Any]) -> str:
    """What a commit read, short: `bronze v7`, `landing 2 files`, `spec 3f2a9c0d1e2b`."""
    parts = []
    for name, value in sorted(inputs.items()):
        if isinstance(value, dict) and "version" in value:
            parts.append(f"{name} v{value['version']}")
        elif isinstance(value, list):
            parts.append(f"{name} {len(value)} files")
        else:
            parts.append(f"{name} {str(value)[:12]}")
    return ", ".join(parts)


@app.command("show")
def tables_show(
    table: TableArg,
    version: Annotated[
        int | None, typer.Option(help="A version (default: the latest).", min=0)
    ] = None,
    limit: Annotated[int, typer.Option(help="Rows to show.", min=0, max=1000)] = 10,
    as_json: AsJson = False,
) -> None:
    """TABLE at a version: its commit, schema, size and first rows (time travel)."""
    from flowforge.catalog import read_version
    from flowforge.tables import TableRef
    from orchestrator.api.schemas import TableDetail

    settings = quiet_settings()
    try:
        detail = TableDetail.of(read_version(settings, TableRef.parse(table), version, limit))
    except FlowForgeError as exc:
        raise fail(exc) from None
    if as_json:
        print_json(detail.model_dump(mode="json"))
        return
    console = Console()
    state = "current" if detail.current else f"since replaced; latest {detail.latest_version}"
    console.print(f"[bold]{detail.table}[/] ({detail.kind}) version {detail.version} ({state})")
    if detail.commit:
        c = detail.commit
        console.print(
            f"  committed {c.timestamp:%Y-%m-%d %H:%M:%S} UTC by {c.operation}"
            + (f", run {c.run_id}" if c.run_id else "")
        )
    console.print(
        f"  {detail.rows:,} rows in {detail.files} files, {size(detail.size_bytes)}; columns: "
        + ", ".join(f"{col.name} {col.type}" for col in detail.columns)
    )
    if detail.preview:
        rows = Table(title=f"first {len(detail.preview)} rows", title_justify="left")
        for col in detail.columns:
            rows.add_column(col.name)
        for row in detail.preview:
            rows.add_row(*("" if row[c.name] is None else str(row[c.name]) for c in detail.columns))
        console.print(rows)
