"""Tables as the layers commit them (write_deltalake with tables.commit_properties: run id,
report, an application transaction), for tests of what reads, keeps and migrates them."""

from __future__ import annotations

from typing import Any, Literal

import pyarrow as pa
from deltalake import DeltaTable, write_deltalake

from flowforge import tables
from flowforge.reports import LayerReport
from flowforge.settings import Settings
from flowforge.tables import TableRef


def commit(
    settings: Settings,
    ref: TableRef,
    data: pa.Table | dict[str, list[Any]],
    run_id: str,
    mode: Literal["append", "overwrite"] = "append",
    inputs: dict[str, Any] | None = None,
    **options: Any,
) -> int:
    """Commits `data` to the table as run `run_id` would; returns the version made."""
    layer = ref.path.split("/", 1)[0]
    job = ref.job
    report = LayerReport(
        layer=layer,
        workflow_id=job.workflow_id if job else "",
        job_id=job.job_id if job else "",
        run_id=run_id,
        table=ref.path,
    )
    with tables.delta_errors("writing a test table", ref):
        write_deltalake(
            ref.uri(settings),
            data if isinstance(data, pa.Table) else pa.table(data),
            mode=mode,
            storage_options=tables.storage_options(settings),
            commit_properties=tables.commit_properties(run_id, report, inputs),
            **options,
        )
    return table(settings, ref).version()


def table(settings: Settings, ref: TableRef, version: int | None = None) -> DeltaTable:
    return DeltaTable(
        ref.uri(settings), version=version, storage_options=tables.storage_options(settings)
    )


def rows(settings: Settings, ref: TableRef, version: int | None = None) -> list[dict[str, Any]]:
    """The rows of a version, read with delta-rs (sorted, for comparisons)."""
    read = pa.table(table(settings, ref, version).to_pyarrow_dataset().to_table())
    return sorted(read.to_pylist(), key=lambda r: [str(v) for v in r.values()])
