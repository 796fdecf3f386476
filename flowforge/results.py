"""Finishing and replaying a LayerReport, the one report every layer returns."""

from __future__ import annotations

import time

from flowforge.manifest import Committed, Manifest, ManifestObject
from flowforge.reports import DataObject, LayerReport, load_report


def data_object(obj: ManifestObject) -> DataObject:
    return DataObject(
        key=obj.key, size_bytes=obj.size_bytes, rows=obj.rows, source_key=obj.source_key
    )


def finish(report: LayerReport, manifest: Manifest, started: float) -> None:
    """Stamps the duration and stores the report in the manifest for later replay."""
    report.seconds = time.monotonic() - started
    manifest.result = report.stored()


def replay(committed: Committed) -> LayerReport:
    """The report of a run id that was already committed: nothing is redone."""
    report = load_report(committed.manifest.result)
    report.reused = True
    return report
