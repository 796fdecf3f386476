"""The object store: one boto3 client behind a small API that speaks FlowForge's errors."""

from __future__ import annotations

import builtins
import contextlib
import logging
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import IO, Any

import boto3
import botocore.exceptions as bexc
from botocore.config import Config

from flowforge.errors import Conflict, FailedPrecondition, NotFound, Unavailable
from flowforge.pipes import ChunkPipe
from flowforge.settings import Settings

log = logging.getLogger(__name__)

# How long closing a PrefetchReader waits for its fetching thread to stop.
CLOSE_WAIT_SECONDS = 2.0

_NOT_FOUND = {"NoSuchKey", "404", "NotFound"}
_CONFLICT = {"PreconditionFailed", "412", "ConditionalRequestConflict", "409"}
_DENIED = {"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "403", "Forbidden"}
_TRANSIENT_NETWORK = (
    bexc.EndpointConnectionError,
    bexc.ConnectionClosedError,
    bexc.ReadTimeoutError,
    bexc.ConnectTimeoutError,
    bexc.ResponseStreamingError,
    bexc.IncompleteReadError,
    bexc.ProxyConnectionError,
    bexc.HTTPClientError,
    ConnectionError,
)


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    etag: str
    last_modified: datetime | None = None


class ObjectStore:
    """Reads and writes objects of one bucket; every failure is a FlowForgeError."""

    def __init__(self, settings: Settings, client: Any | None = None) -> None:
        self.bucket = settings.s3_bucket
        self.endpoint = settings.s3_endpoint_url or "AWS S3"
        self._settings = settings
        self._client = client or make_client(settings)
        self._conditional_writes: bool | None = None

    @property
    def settings(self) -> Settings:
        """The settings the store was made with (tables on it need the same endpoint)."""
        return self._settings

    # -- reading ---------------------------------------------------------------
    def head(self, key: str) -> ObjectInfo | None:
        try:
            with self._errors(key):
                meta = self._client.head_object(Bucket=self.bucket, Key=key)
        except NotFound:
            return None
        return ObjectInfo(key, meta["ContentLength"], meta["ETag"].strip('"'), meta["LastModified"])

    def get_bytes(self, key: str, byte_range: tuple[int, int] | None = None) -> bytes:
        """Whole object, or bytes [start, end] inclusive."""
        extra = {"Range": f"bytes={byte_range[0]}-{byte_range[1]}"} if byte_range else {}
        with self._errors(key):
            body = self._client.get_object(Bucket=self.bucket, Key=key, **extra)["Body"]
            return body.read()

    def get_with_etag(self, key: str) -> tuple[bytes, str]:
        with self._errors(key):
            response = self._client.get_object(Bucket=self.bucket, Key=key)
            return response["Body"].read(), response["ETag"].strip('"')

    def open_stream(
        self, key: str, chunk_bytes: int = 8 << 20, expires_at: float | None = None
    ) -> PrefetchReader:
        """A file-like reader that fetches the next chunks in the background; reading it
        after `expires_at` (a time.monotonic() instant) raises DeadlineExceeded."""
        with self._errors(key):
            body = self._client.get_object(Bucket=self.bucket, Key=key)["Body"]
        return PrefetchReader(
            body,
            chunk_bytes,
            on_error=lambda e: self._translate(e, key),
            expires_at=expires_at,
            name=f"s3://{self.bucket}/{key}",
        )

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        paginator = self._client.get_paginator("list_objects_v2")
        with self._errors(prefix):
            for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
                for item in page.get("Contents", []):
                    yield ObjectInfo(
                        item["Key"], item["Size"], item["ETag"].strip('"'), item["LastModified"]
                    )

    def list_prefixes(self, prefix: str) -> builtins.list[str]:
        """The 'folders' directly under prefix (which ends with '/')."""
        paginator = self._client.get_paginator("list_objects_v2")
        found: builtins.list[str] = []
        with self._errors(prefix):
            for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix, Delimiter="/"):
                found.extend(p["Prefix"] for p in page.get("CommonPrefixes", []))
        return found

    # -- writing ---------------------------------------------------------------
    def put_bytes(
        self,
        key: str,
        data: bytes | IO[bytes],
        *,
        content_type: str = "application/octet-stream",
        if_match: str | None = None,
        if_none_match: bool = False,
    ) -> str:
        """Writes one object; with if_match/if_none_match it is a conditional write."""
        extra: dict[str, str] = {}
        if if_match is not None:
            extra["IfMatch"] = f'"{if_match}"'
        if if_none_match:
            extra["IfNoneMatch"] = "*"
        with self._errors(key):
            response = self._client.put_object(
                Bucket=self.bucket, Key=key, Body=data, ContentType=content_type, **extra
            )
        return str(response.get("ETag", "")).strip('"')

    def upload(self, key: str, stream: IO[bytes]) -> None:
        """Streams a file-like object up, in parts when it is large."""
        with self._errors(key):
            self._client.upload_fileobj(stream, self.bucket, key)

    def abort_uploads(self, key: str) -> int:
        """Aborts the multipart uploads of `key` still open (begun, neither completed nor
        aborted): a failed upload whose own abort did not reach the store leaves its parts
        stored, unseen, for ever. Returns how many there were."""
        with self._errors(key):
            found = self._client.list_multipart_uploads(Bucket=self.bucket, Prefix=key)
            open_ids = [u["UploadId"] for u in found.get("Uploads", []) if u["Key"] == key]
            for upload_id in open_ids:
                self._client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
        return len(open_ids)

    def copy(self, source: str, key: str) -> None:
        """Copies an object within the bucket, server side (up to 5 GB)."""
        with self._errors(source):
            self._client.copy_object(
                Bucket=self.bucket, Key=key, CopySource={"Bucket": self.bucket, "Key": source}
            )

    def delete_keys(self, keys: Iterable[str]) -> None:
        batch: builtins.list[str] = []
        for key in keys:
            batch.append(key)
            if len(batch) == 1000:
                self._delete_batch(batch)
                batch = []
        if batch:
            self._delete_batch(batch)

    def delete_prefix(self, prefix: str) -> int:
        """Deletes every object under prefix; returns how many there were.

        Stores with real directories (SeaweedFS's filer) keep empty folders after their
        objects go, and list them as prefixes; deleting the folder keys, deepest first,
        removes them too. On S3 those deletes are no-ops.
        """
        keys = [info.key for info in self.list(prefix)]
        self.delete_keys(keys)
        folders = {prefix} | {
            key[: i + 1] for key in keys for i in range(len(prefix), len(key)) if key[i] == "/"
        }
        for depth in sorted({f.count("/") for f in folders}, reverse=True):
            self.delete_keys(f for f in folders if f.count("/") == depth)
        return len(keys)

    def _delete_batch(self, keys: builtins.list[str]) -> None:
        with self._errors(keys[0]):
            answer = self._client.delete_objects(
                Bucket=self.bucket, Delete={"Objects": [{"Key": k} for k in keys], "Quiet": True}
            )
        # A batch delete answers 200 and lists the keys it did not delete (AccessDenied for
        # a key outside the identity's prefixes): those fail the call as a single delete would.
        errors = [e for e in answer.get("Errors", []) if e.get("Code") not in _NOT_FOUND]
        if errors:
            first = errors[0]
            error = {"Error": {"Code": first.get("Code", ""), "Message": first.get("Message", "")}}
            raise self._translate(bexc.ClientError(error, "DeleteObjects"), first.get("Key", ""))

    # -- bucket and capabilities ----------------------------------------------
    def bucket_exists(self) -> bool:
        """Whether the bucket exists. An identity scoped to some prefixes may not look at
        the bucket itself: a 403 says the bucket is there (a missing one answers 404)."""
        try:
            with self._errors(self.bucket):
                try:
                    self._client.head_bucket(Bucket=self.bucket)
                except bexc.ClientError as exc:
                    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
                    if status != 403:
                        raise
        except (NotFound, FailedPrecondition):
            return False
        return True

    def ensure_bucket(self) -> None:
        """Creates the bucket when it is missing."""
        if self.bucket_exists():
            return
        with (
            self._errors(self.bucket),
            contextlib.suppress(self._client.exceptions.BucketAlreadyOwnedByYou),
        ):
            self._client.create_bucket(Bucket=self.bucket)
        log.info("created bucket", extra={"bucket": self.bucket})

    def supports_conditional_writes(self) -> bool:
        """Probes once whether the store honours both conditions a manifest commit uses:
        If-None-Match (the first commit) and If-Match (every later one) on PUT."""
        if self._conditional_writes is None:
            key = f"_flowforge/probe/{uuid.uuid4().hex}"
            first = self.put_bytes(key, b"1", if_none_match=True)
            try:
                exists_refused = self._refuses(key, if_none_match=True)
                self.put_bytes(key, b"2", if_match=first)  # the current ETag: must pass ...
                stale_refused = self._refuses(key, if_match=first)  # ... and now is stale
                self._conditional_writes = exists_refused and stale_refused
            except Conflict:  # the current ETag refused: the store's conditions are unusable
                self._conditional_writes = False
            finally:
                self.delete_keys([key])
            log.debug(
                "object store conditional writes probed",
                extra={"conditional_writes": self._conditional_writes},
            )
        return self._conditional_writes

    def _refuses(
        self, key: str, *, if_match: str | None = None, if_none_match: bool = False
    ) -> bool:
        """Whether a conditional PUT that must fail (the object exists / the ETag is stale)
        is refused."""
        try:
            self.put_bytes(key, b"x", if_match=if_match, if_none_match=if_none_match)
        except Conflict:
            return True
        return False

    # -- error translation -----------------------------------------------------
    @contextlib.contextmanager
    def _errors(self, key: str) -> Iterator[None]:
        try:
            yield
        except (bexc.BotoCoreError, bexc.ClientError, ConnectionError) as exc:
            raise self._translate(exc, key) from None

    def _translate(self, exc: BaseException, key: str) -> Exception:
        where = f"s3://{self.bucket}/{key}"
        if isinstance(exc, bexc.ClientError):
            error = exc.response.get("Error", {})
            code = str(error.get("Code", ""))
            status = str(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", ""))
            if code in _NOT_FOUND or (not code and status == "404"):
                return NotFound(f"{where} does not exist")
            if code == "NoSuchBucket":
                return FailedPrecondition(f"bucket {self.bucket!r} does not exist")
            if code in _CONFLICT or status == "412":
                return Conflict(f"{where} was changed by another writer")
            if code in _DENIED or status == "403":
                return FailedPrecondition(
                    f"the object store at {self.endpoint} refused the configured credentials "
                    f"for {where} ({code or status})"
                )
            return Unavailable(f"the object store failed on {where}: {code or status}")
        if isinstance(exc, _TRANSIENT_NETWORK):
            return Unavailable(f"the object store at {self.endpoint} is unreachable ({where})")
        return Unavailable(f"the object store failed on {where}: {type(exc).__name__}")


def prepare_store(settings: Settings, keep_trying: bool = False) -> ObjectStore:
    """Creates the bucket when missing and probes conditional writes. A store that is not
    up yet is tolerated (requests fail with UNAVAILABLE until it is); with `keep_trying`
    (the servers) this is retried in the background until it succeeds, so a service that
    started before its object store still creates the bucket."""
    store = ObjectStore(settings)
    try:
        _prepare(store, settings)
    except Unavailable as exc:
        log.warning("object store not reachable at start-up", extra={"error": exc.message})
        if keep_trying:
            threading.Thread(
                target=_keep_preparing, args=(store, settings), name="prepare-store", daemon=True
            ).start()
    return store


def _prepare(store: ObjectStore, settings: Settings) -> None:
    if settings.s3_create_bucket:
        store.ensure_bucket()
    store.supports_conditional_writes()


def _keep_preparing(store: ObjectStore, settings: Settings) -> None:
    delay = 1.0
    while True:
        time.sleep(delay)
        try:
            _prepare(store, settings)
        except Unavailable:
            delay = min(delay * 2, 30.0)
            continue
        log.info("object store reachable: bucket ready", extra={"bucket": settings.s3_bucket})
        return


def make_client(settings: Settings) -> Any:
    secret = settings.s3_secret_access_key
    config = Config(
        region_name=settings.s3_region,
        connect_timeout=settings.s3_connect_timeout_seconds,
        read_timeout=settings.s3_read_timeout_seconds,
        retries={"total_max_attempts": settings.s3_max_attempts, "mode": "standard"},
        s3={"addressing_style": "path"} if settings.s3_endpoint_url else {},
        max_pool_connections=32,
        # S3-compatible stores do not all accept the newer default CRC checksums.
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )
    return boto3.session.Session().client(
        "s3",
        endpoint_url=settings.s3_endpoint_url,
        aws_access_key_id=settings.s3_access_key_id,
        aws_secret_access_key=secret.get_secret_value() if secret else None,
        config=config,
    )


class PrefetchReader(ChunkPipe):
    """Reads a streaming body in a background thread so parsing and network overlap.

    close() lets the fetching thread go: a put() returns False, and a read in progress is
    cut short by shutting the socket for reading (urllib3's shutdown(), the one call meant
    for another thread; closing the body would wait for the read). The fetching thread
    closes the body itself on its way out; close() waits for it at most
    CLOSE_WAIT_SECONDS, and without shutdown() (urllib3 < 2.3) its read ends at the
    store's read timeout, nobody waiting on it."""

    def __init__(
        self,
        body: Any,
        chunk_bytes: int,
        on_error: Any,
        depth: int = 4,
        expires_at: float | None = None,
        name: str = "the object",
    ) -> None:
        super().__init__(depth, on_error, expires_at, name)
        self._body = body
        self._thread = threading.Thread(
            target=self._fetch, args=(chunk_bytes,), name="s3-prefetch", daemon=True
        )
        self._thread.start()

    def _fetch(self, chunk_bytes: int) -> None:
        try:
            while True:
                chunk = self._body.read(chunk_bytes)
                if not self.put(chunk) or not chunk:
                    return  # closed, or the end handed over
        except BaseException as exc:  # handed to the reading thread
            self.put(exc)
        finally:
            with contextlib.suppress(Exception):
                self._body.close()

    def close(self) -> None:
        if self.closed:
            return
        super().close()
        if threading.current_thread() is self._thread:
            return
        # botocore's StreamingBody keeps the urllib3 response it wraps as _raw_stream.
        shutdown = getattr(getattr(self._body, "_raw_stream", None), "shutdown", None)
        if self._thread.is_alive() and shutdown is not None:
            with contextlib.suppress(Exception):  # e.g. the whole body was read already
                shutdown()
        self._thread.join(CLOSE_WAIT_SECONDS)
        if self._thread.is_alive():
            log.warning(
                "prefetch still reading after close; it ends at the store's read timeout",
                extra={"stream": self._name},
            )


def s3_url(settings: Settings, key: str) -> str:
    return f"s3://{settings.s3_bucket}/{key}"


def polars_storage_options(settings: Settings) -> dict[str, str]:
    """Credentials and endpoint for polars' native S3 reader/writer (object_store)."""
    options = {"aws_region": settings.s3_region}
    if settings.s3_endpoint_url:
        options["aws_endpoint_url"] = settings.s3_endpoint_url
        options["aws_allow_http"] = str(settings.s3_endpoint_url.startswith("http:")).lower()
        options["aws_virtual_hosted_style_request"] = "false"
    if settings.s3_access_key_id:
        options["aws_access_key_id"] = settings.s3_access_key_id
    if settings.s3_secret_access_key is not None:
        options["aws_secret_access_key"] = settings.s3_secret_access_key.get_secret_value()
    return options
