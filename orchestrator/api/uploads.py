"""CSV uploads to a job's landing prefix, streamed from the request body to S3.

Each file part is handed to the object store's upload (multipart upload when large) in a
worker thread through a bounded pipe as its bytes arrive: memory per upload stays at a few
chunks. A file over FLOWFORGE_API_UPLOAD_MAX_MB (413), not named *.csv (415), with a
path-like name (400) or with binary content (415) fails the request, naming the file, and
the files this request already wrote are removed again; so does a client that stops
sending (408) or leaves. At most FLOWFORGE_API_MAX_CONCURRENT_UPLOADS run at once (then 503).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import anyio
from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool

from flowforge.errors import FlowForgeError, InvalidArgument, UnsupportedMediaType
from flowforge.ids import validate_file_name
from flowforge.layout import JobKey, landing_prefix
from flowforge.pipes import ChunkPipe
from flowforge.storage import ObjectStore
from orchestrator.api.context import Context, JobId, WorkflowId, ids
from orchestrator.api.errors import PayloadTooLarge, RequestTimeout, responses
from orchestrator.api.limits import arriving
from orchestrator.api.multipart import Part, read_parts
from orchestrator.api.schemas import Uploaded, UploadedFile
from orchestrator.api.unfinished import UnfinishedUploads
from orchestrator.triggers import note_uploads
from orchestrator.workflows import Job

router = APIRouter(tags=["jobs"])
log = logging.getLogger(__name__)
SNIFF_BYTES = 8192
_CHUNK = 1 << 20


def multipart_body(field: str, many: bool = False) -> dict[str, Any]:
    """The OpenAPI request body of a multipart upload with file field `field`."""
    binary = {"type": "string", "format": "binary"}
    schema = {
        "type": "object",
        "required": [field],
        "properties": {field: {"type": "array", "items": binary} if many else binary},
    }
    return {
        "requestBody": {"required": True, "content": {"multipart/form-data": {"schema": schema}}}
    }


UPLOAD_BODY = multipart_body("files", many=True)
UPLOAD_ERRORS = responses(408, 503)


class FileUpload:
    """One file part on its way to `key`."""

    def __init__(
        self,
        objects: ObjectStore,
        unfinished: UnfinishedUploads,
        name: str,
        key: str,
        limit: int,
    ) -> None:
        self.name, self.key, self.limit, self.size = name, key, limit, 0
        self._unfinished = unfinished
        self._pipe = ChunkPipe()
        self._pending = bytearray()
        self._sniffed = False
        # A limiter of its own, not the shared thread pool's: the writer waits on this
        # request's bytes for as long as the upload lasts, and the pool's threads pass those
        # bytes (put below). Uploads holding every pooled thread would wait for ever.
        writer = anyio.to_thread.run_sync(self._run, objects, limiter=anyio.CapacityLimiter(1))
        self._task = asyncio.create_task(writer)

    def _run(self, objects: ObjectStore) -> None:
        try:
            with self._unfinished.writing(self.key):
                objects.upload(self.key, self._pipe)  # type: ignore[arg-type]
        except BaseException:
            self._unfinished.abort(self.key)  # in case boto3's own abort did not get through
            raise
        finally:
            self._pipe.close()  # a writer still putting is let go

    async def write(self, data: bytes) -> None:
        self.size += len(data)
        if self.size > self.limit:
            raise PayloadTooLarge(
                f"file {self.name!r} is larger than the upload limit of "
                f"{self.limit // (1 << 20)} MB (FLOWFORGE_API_UPLOAD_MAX_MB)"
            )
        self._pending += data
        if not self._sniffed and len(self._pending) >= SNIFF_BYTES:
            self._sniff()
        if len(self._pending) >= _CHUNK:
            await self._flush()

    def _sniff(self) -> None:
        self._sniffed = True
        if b"\x00" in self._pending[:SNIFF_BYTES]:
            raise UnsupportedMediaType(f"file {self.name!r} is binary, not CSV text")

    async def _flush(self) -> None:
        chunk, self._pending = bytes(self._pending), bytearray()
        await run_in_threadpool(self._pipe.put, chunk)
        if self._task.done():
            await self._task  # the store failed: raise its error

    async def finish(self) -> UploadedFile:
        if not self._sniffed:
            self._sniff()
        if self._pending:
            await self._flush()
        await run_in_threadpool(self._pipe.put, b"")  # the end
        await self._task
        return UploadedFile(name=self.name, key=self.key, size_bytes=self.size)

    async def abort(self, exc: BaseException) -> None:
        # Shielded: a cancelled request still hands its writer the error (else the writer
        # waits on the pipe for ever, its multipart upload open).
        with anyio.CancelScope(shield=True):
            await run_in_threadpool(self._pipe.put, exc)
            with contextlib.suppress(BaseException):
                await self._task


@router.post(
    "/api/workflows/{workflow_id}/jobs/{job_id}/files",
    response_model=Uploaded,
    status_code=201,
    openapi_extra=UPLOAD_BODY,
    responses=UPLOAD_ERRORS,
)
async def upload_files(
    ctx: Context, request: Request, workflow_id: WorkflowId, job_id: JobId
) -> Uploaded:
    """Uploads one or more CSV files (multipart field `files`) to the job's landing prefix;
    a file with the same name is replaced. A body that stops arriving is 408; past
    FLOWFORGE_API_MAX_CONCURRENT_UPLOADS uploads at once, 503 with Retry-After."""
    ids(workflow_id=workflow_id, job_id=job_id)
    with ctx.uploads.take():
        _, job = await run_in_threadpool(ctx.store.get_job, workflow_id, job_id)
        uploaded = await _upload(ctx, request, workflow_id, job_id)
    if job.trigger.on_upload:
        await run_in_threadpool(_note, ctx, workflow_id, job, uploaded)
    return uploaded


def _note(ctx: Context, workflow_id: str, job: Job, uploaded: Uploaded) -> None:
    """Starts (or moves) the job's debounce. A store that fails here leaves it to the
    landing scan: the files are there, unseen and not ingested."""
    try:
        etags = {}
        for file in uploaded.files:
            info = ctx.objects.head(file.key)
            if info is not None:
                etags[file.key] = info.etag
        note_uploads(ctx.store, job, workflow_id, etags)
        pending = ctx.store.pending_trigger(workflow_id, job.id)
        uploaded.trigger_due_at = pending.due_at if pending else None
    except FlowForgeError as exc:
        log.warning("upload trigger of %s/%s not noted: %s", workflow_id, job.id, exc.message)


async def _upload(ctx: Context, request: Request, workflow_id: str, job_id: str) -> Uploaded:
    prefix = landing_prefix(JobKey.of(workflow_id, job_id))
    limit = ctx.settings.api_upload_max_mb << 20
    done: list[UploadedFile] = []
    current: FileUpload | None = None
    body = arriving(request.stream(), ctx.settings.api_body_timeout_seconds)
    parts = read_parts(body, request.headers.get("content-type", ""))
    try:
        async for kind, value in parts:
            if kind == "part" and isinstance(value, Part) and value.filename is not None:
                name = validate_file_name(value.filename, (".csv",))
                if any(f.name == name for f in done):
                    raise InvalidArgument(f"file {name!r} is in the request twice")
                current = FileUpload(ctx.objects, ctx.unfinished, name, prefix + name, limit)
            elif kind == "data" and current is not None and isinstance(value, bytes):
                await current.write(value)
            elif kind == "end" and current is not None:
                done.append(await current.finish())
                current = None
        if not done:
            raise InvalidArgument("the request has no file (multipart field 'files')")
    except BaseException as exc:
        if current is not None:
            await current.abort(exc if isinstance(exc, Exception) else RuntimeError("aborted"))
        if done:
            with anyio.CancelScope(shield=True):
                await run_in_threadpool(ctx.objects.delete_keys, [f.key for f in done])
        if isinstance(exc, FlowForgeError) and not isinstance(exc, RequestTimeout):
            await drain(body)
        raise
    return Uploaded(workflow_id=workflow_id, job_id=job_id, files=done)


async def drain(body: AsyncIterator[bytes]) -> None:
    """Reads the rest of a refused body so the client gets the answer, not a reset."""
    with contextlib.suppress(Exception):
        async for _ in body:
            pass
