"""FlowForge's tables over HTTP: every table with its latest version, a table's commits,
and any version's schema and first rows. Paths are checked against the table shapes
FlowForge writes before anything is read: anything else is 400, never an object read."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from starlette.convertors import Convertor, register_url_convertor

from flowforge import catalog
from flowforge.errors import NotFound
from flowforge.tables import TABLE_PATH_PATTERN, TableRef
from orchestrator.api.context import Context
from orchestrator.api.schemas import TableCommit, TableDetail, TableHistory, TableInfo

MAX_ROWS = 100
MAX_COMMITS = 1000


class TablePathConvertor(Convertor[str]):
    """Matches only the table shapes (tables.TABLE_SHAPES), so `.../{table}/history` and
    `.../{table}` never both match one URL; every other path reaches `refuse`."""

    regex = f"(?:{TABLE_PATH_PATTERN})"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


class RestConvertor(Convertor[str]):
    """Anything, newlines too (starlette's `path` stops at one), so that `refuse` sees it."""

    regex = r"[\s\S]*"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("table", TablePathConvertor())
register_url_convertor("anything", RestConvertor())
router = APIRouter(prefix="/api/tables", tags=["tables"])
TablePath = Annotated[
    str,
    Path(
        description="The table's path in the bucket, e.g. silver/customer-data/customers or "
        "gold/customer-data/customers/customers_by_country"
    ),
]


@router.get("", response_model=list[TableInfo])
async def list_tables(ctx: Context) -> list[TableInfo]:
    """Every FlowForge table in the bucket, with its latest version, rows, size and last
    commit, by path."""
    found = await run_in_threadpool(catalog.list_tables, ctx.settings, ctx.objects)
    return [TableInfo.of(s) for s in found]


@router.get("/{path:table}/history", response_model=TableHistory)
async def table_history(
    ctx: Context,
    request: Request,
    path: TablePath,
    limit: Annotated[int, Query(ge=1, le=MAX_COMMITS, description="Commits, newest first")] = 50,
) -> TableHistory:
    ref = table_of(request, path)
    commits = await run_in_threadpool(catalog.history, ctx.settings, ref, limit)
    return TableHistory(table=ref.path, items=[TableCommit.of(c) for c in commits])


@router.get("/{path:table}", response_model=TableDetail)
async def show_table(
    ctx: Context,
    request: Request,
    path: TablePath,
    version: Annotated[
        int | None, Query(ge=0, description="A version (default: the latest)")
    ] = None,
    limit: Annotated[int, Query(ge=0, le=MAX_ROWS, description="Rows of the preview")] = 20,
) -> TableDetail:
    """The table at `version`: its schema, size and first rows (time travel)."""
    ref = table_of(request, path)
    view = await run_in_threadpool(catalog.read_version, ctx.settings, ref, version, limit)
    return TableDetail.of(view)


def table_of(request: Request, path: str) -> TableRef:
    """The table a route matched, refusing a URL path with more than it (route patterns
    end with `$`, which also matches before a final newline)."""
    rest = request.scope["path"].removeprefix(f"{router.prefix}/")
    if rest not in (path, f"{path}/history"):
        TableRef.parse(rest.removesuffix("/history"))
    return TableRef.parse(path)


@router.get("/{path:anything}", include_in_schema=False)
async def refuse(path: str) -> None:
    """Any other path under /api/tables: 400 naming it."""
    TableRef.parse(path.removesuffix("/history"))
    raise NotFound(f"no such table endpoint: {path!r}")  # the routes above took any table
