"""Building and replaying LayerResult messages, the one report every layer returns."""

from __future__ import annotations

import time
from datetime import timedelta

from google.protobuf import json_format

from flowforge.layout import JobKey
from flowforge.manifest import Committed, Manifest, ManifestObject
from flowforge.v1 import common_pb2


def job_ref(job: JobKey) -> common_pb2.JobRef:
    return common_pb2.JobRef(workflow_id=job.workflow_id, job_id=job.job_id)


def object_to_proto(obj: ManifestObject) -> common_pb2.DataObject:
    return common_pb2.DataObject(
        key=obj.key, size_bytes=obj.size_bytes, rows=obj.rows, source_key=obj.source_key
    )


def finish(result: common_pb2.LayerResult, manifest: Manifest, started: float) -> None:
    """Stamps the duration and stores the result in the manifest for later replay."""
    result.duration.FromTimedelta(timedelta(seconds=time.monotonic() - started))
    manifest.result = json_format.MessageToDict(result)


def replay(committed: Committed) -> common_pb2.LayerResult:
    """The result of a run id that was already committed: nothing is redone."""
    result = json_format.ParseDict(
        committed.manifest.result, common_pb2.LayerResult(), ignore_unknown_fields=True
    )
    result.reused = True
    return result
