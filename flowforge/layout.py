"""The bucket layout the product promises, built only from validated IDs.

landing/{workflow_id}/{job_id}/         raw CSV uploads
silver|gold/{workflow_id}/{job_id}/_manifest.json      the committed output
silver|gold/{workflow_id}/{job_id}/run={run_id}/...    one run's objects
Bronze and the dimensions are Delta tables: see flowforge/tables.py.
"""

from __future__ import annotations

from dataclasses import dataclass

from flowforge.ids import validate_id

LAYERS = ("bronze", "silver", "gold")
MANIFEST_NAME = "_manifest.json"


@dataclass(frozen=True)
class JobKey:
    workflow_id: str
    job_id: str

    @classmethod
    def of(cls, workflow_id: str, job_id: str, field: str = "job") -> JobKey:
        return cls(
            validate_id(workflow_id, f"{field}.workflow_id"),
            validate_id(job_id, f"{field}.job_id"),
        )

    def __str__(self) -> str:
        return f"{self.workflow_id}/{self.job_id}"


def landing_prefix(job: JobKey) -> str:
    return f"landing/{job.workflow_id}/{job.job_id}/"


@dataclass(frozen=True)
class Dataset:
    """A committed-by-manifest dataset: silver's or gold's output for a job."""

    prefix: str  # ends with "/"

    @classmethod
    def for_layer(cls, layer: str, job: JobKey) -> Dataset:
        if layer not in LAYERS:
            raise ValueError(f"unknown layer {layer!r}")
        return cls(f"{layer}/{job.workflow_id}/{job.job_id}/")

    @property
    def manifest_key(self) -> str:
        return self.prefix + MANIFEST_NAME

    def run_prefix(self, run_id: str) -> str:
        return f"{self.prefix}run={validate_id(run_id, 'run_id')}/"
