"""`flowforge maintain` and `flowforge migrate`: keeping the tables small and readable, and
turning the manifests of older releases into tables."""

from __future__ import annotations

import sys
from dataclasses import asdict
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from cli.tables import AsJson, fail, print_json, quiet_settings
from flowforge.errors import FlowForgeError

if TYPE_CHECKING:
    from orchestrator.retention import RetentionReport


def maintain(
    table: Annotated[
        list[str] | None, typer.Option("--table", help="Only this table (repeatable).")
    ] = None,
    dry_run: Annotated[
        bool, typer.Option(help="Compact nothing; list what vacuum would delete.")
    ] = False,
    as_json: AsJson = False,
) -> None:
    """Retention first (landing files past their workflow's landing_retention_days once
    ingested, executions past FLOWFORGE_EXECUTIONS_RETENTION_DAYS; not with --table), then
    compact small files and vacuum every table (FLOWFORGE_TABLES_RETENTION_DAYS), keeping
    every version an execution recorded; tables a running execution uses are skipped."""
    from flowforge.storage import prepare_store
    from flowforge.tables import TableRef
    from orchestrator.maintenance import maintain as maintain_tables
    from orchestrator.retention import apply_retention
    from orchestrator.store import Store

    settings = quiet_settings()
    try:
        only = [TableRef.parse(t) for t in table] if table else None
        store, objects = Store.open(settings), prepare_store(settings)
        # Before the tables: the versions of the executions it deletes are vacuumed now.
        kept = None if only else apply_retention(settings, store, objects, dry_run)
        done = maintain_tables(settings, store, objects, only, dry_run)
    except FlowForgeError as exc:
        raise fail(exc) from None
    if as_json:
        print_json({
            "retention": asdict(kept) if kept else None,
            "tables": [d.to_dict() | {"files_deleted": d.files_deleted} for d in done],
        })  # fmt: skip
    else:
        if kept is not None:
            show_retention(kept, dry_run)
        deleted = "would delete" if dry_run else "deleted"
        view = Table(
            title=f"{len(done)} tables maintained (retention "
            f"{settings.tables_retention_days:g} days{', dry run' if dry_run else ''})",
            title_justify="left",
        )
        for column in ("table", "compacted", deleted, "versions kept", "version", "note"):
            view.add_column(column)
        for d in done:
            view.add_row(
                d.table,
                f"{d.files_compacted} → {d.files_written} files" if d.files_compacted else "",
                f"{len(d.files_deleted)} files" if d.files_deleted else "",
                ", ".join(map(str, d.kept_versions)),
                "" if d.version is None else str(d.version),
                d.error
                or (f"skipped: {d.skipped}" if d.skipped else "")
                or (f"no longer in the log: {d.lost_versions}" if d.lost_versions else ""),
            )
        Console().print(view)
    if any(d.error for d in done) or (kept and kept.errors):
        raise typer.Exit(1)


def show_retention(report: RetentionReport, dry_run: bool) -> None:
    verb = "would delete" if dry_run else "deleted"
    print(f"retention: landing files {verb}: {len(report.landing_deleted)}; old ones kept "
          f"(not ingested): {len(report.landing_not_ingested)}")  # fmt: skip
    for key in report.landing_deleted:
        print(f"  {key}")
    print(f"retention: executions {verb}: {len(report.executions_deleted)}; old ones kept "
          f"(latest of their job, or holding a table's current version): "
          f"{len(report.executions_kept)}")  # fmt: skip
    for line in report.skipped:
        print(f"retention: skipped {line}")
    for line in report.errors:
        print(f"retention: error: {line}", file=sys.stderr)


def migrate(
    workflow: Annotated[
        list[str] | None, typer.Option("--workflow", "-w", help="Only this workflow (repeatable).")
    ] = None,
    dimension: Annotated[
        list[str] | None, typer.Option("--dimension", help="Only this dimension (repeatable).")
    ] = None,
    as_json: AsJson = False,
) -> None:
    """Turn datasets committed by `_manifest.json` (before Delta tables) into version 0 of
    their tables, in place; the manifest is renamed `_manifest.json.migrated`. Run it with
    no execution running; running it again changes nothing."""
    from flowforge.ids import validate_id
    from flowforge.storage import prepare_store
    from orchestrator.migration import migrate as migrate_datasets
    from orchestrator.store import Store

    settings = quiet_settings()
    try:
        for name in [*(workflow or []), *(dimension or [])]:
            validate_id(name, "--workflow/--dimension")
        scoped = bool(workflow or dimension)
        workflows = (workflow or []) if scoped else None
        dimensions = (dimension or []) if scoped else None
        running = [
            e
            for e in Store.open(settings).active_executions()
            if workflows is None or e.workflow_id in workflows or dimensions
        ]
        if running:
            raise FlowForgeError(
                f"execution {running[0].id} of {running[0].workflow_id}/{running[0].job_id} is "
                f"{running[0].status.lower()}: migrate when no execution is running"
            )
        done = migrate_datasets(settings, prepare_store(settings), workflows, dimensions)
    except FlowForgeError as exc:
        raise fail(exc) from None
    if as_json:
        print_json([asdict(d) for d in done])
    else:
        view = Table(title=f"{len(done)} datasets", title_justify="left")
        for column in ("manifest", "status", "tables"):
            view.add_column(column)
        for d in done:
            lines = [
                f"{t.table}: {t.files} files, {t.rows:,} rows"
                + (f", {t.rewritten} rewritten" if t.rewritten else "")
                + (f", {t.copied} copied" if t.copied else "")
                + (" (made earlier)" if t.existed else "")
                for t in d.tables
            ]
            view.add_row(d.manifest, d.status, "\n".join(lines) or d.error)
        Console().print(view)
    if any(d.status == "failed" for d in done):
        raise typer.Exit(1)
