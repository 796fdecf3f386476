"""Dimension tables over HTTP: upload a CSV or Parquet file as dimension {name}, list them."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import IO

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool

from flowforge.dimensions import DimensionInfo, list_dimensions, upload_dimension
from flowforge.errors import FlowForgeError, InvalidArgument
from flowforge.ids import validate_file_name
from orchestrator.api.context import Context, DimensionName, ids
from orchestrator.api.errors import PayloadTooLarge, RequestTimeout, responses
from orchestrator.api.limits import arriving
from orchestrator.api.multipart import Part, read_parts
from orchestrator.api.schemas import Dimension
from orchestrator.api.uploads import UPLOAD_ERRORS, drain, multipart_body
from orchestrator.dimensions import delete_unused_dimension

router = APIRouter(prefix="/api/dimensions", tags=["dimensions"])
SUFFIXES = (".csv", ".parquet", ".pq")
DIMENSION_BODY = multipart_body("file")


@router.get("", response_model=list[Dimension])
def get_dimensions(ctx: Context) -> list[Dimension]:
    return [dimension(d) for d in list_dimensions(ctx.objects)]


@router.put(
    "/{name}", response_model=Dimension, openapi_extra=DIMENSION_BODY, responses=UPLOAD_ERRORS
)
async def put_dimension(ctx: Context, request: Request, name: DimensionName) -> Dimension:
    """Stores the uploaded file (multipart field `file`, .csv or .parquet) as dimension
    NAME, replacing the previous version atomically. The body is spooled to a temporary
    file, not memory; dimensions are reference tables, up to FLOWFORGE_API_UPLOAD_MAX_MB."""
    ids(name=name)
    with (
        ctx.uploads.take(),
        tempfile.NamedTemporaryFile(prefix="flowforge-dimension-") as spool,
    ):
        filename = await _spool(ctx, request, spool)
        spool.flush()
        info = await run_in_threadpool(
            upload_dimension, ctx.objects, name, Path(spool.name), filename
        )
    return dimension(info)


@router.delete("/{name}", status_code=204, responses=responses(404, 409))
async def delete_dimension(ctx: Context, name: DimensionName) -> Response:
    """Deletes dimension NAME with every version of it; 409 naming the workflows that
    still list it."""
    ids(name=name)
    await run_in_threadpool(delete_unused_dimension, ctx.store, ctx.objects, name)
    return Response(status_code=204)


async def _spool(ctx: Context, request: Request, spool: IO[bytes]) -> str:
    """Writes the request's one file part to `spool`; returns its checked file name."""
    limit = ctx.settings.api_upload_max_mb << 20
    body = arriving(request.stream(), ctx.settings.api_body_timeout_seconds)
    filename: str | None = None
    size = 0
    try:
        async for kind, value in read_parts(body, request.headers.get("content-type", "")):
            if kind == "part" and isinstance(value, Part) and value.filename is not None:
                if filename is not None:
                    raise InvalidArgument("send one file per dimension")
                filename = validate_file_name(value.filename, SUFFIXES)
            elif kind == "data" and filename is not None and isinstance(value, bytes):
                size += len(value)
                if size > limit:
                    raise PayloadTooLarge(
                        f"file {filename!r} is larger than the upload limit "
                        f"of {limit >> 20} MB (FLOWFORGE_API_UPLOAD_MAX_MB)"
                    )
                await run_in_threadpool(spool.write, value)
        if filename is None:
            raise InvalidArgument("the request has no file (multipart field 'file')")
    except FlowForgeError as exc:
        if not isinstance(exc, RequestTimeout):
            await drain(body)
        raise
    return filename


def dimension(info: DimensionInfo) -> Dimension:
    return Dimension(
        name=info.name,
        run_id=info.run_id,
        version=info.version,
        rows=info.rows,
        columns=[[c, t] for c, t in info.columns],
        created_at=info.created_at,
        source=info.source,
        warnings=info.warnings,
    )
