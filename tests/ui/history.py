"""A job's past, written into the executions store as the flow writes it: each run's
durations, counts, silver rule results and schema drift drawn from a seeded generator
whose record is the oracle the job page is checked against."""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import update
from sqlalchemy.orm import Session

from orchestrator.store import ExecutionStatus, StepStatus, Store
from orchestrator.store.models import ExecutionRow, StepRow

LAYERS = ("bronze", "silver", "gold")
# (rule_id, rule, column, action) as the sample's silver spec names them
RULES = [
    ("cast_lifetime_value", "cast", "lifetime_value", "drop"),
    ("regex_email", "regex", "email", "drop"),
    ("accepted_values_status", "accepted_values", "status", "warn"),
]


@dataclass(frozen=True)
class Run:
    id: str
    created: datetime
    seconds: dict[str, float]  # per layer
    bronze: tuple[int, int, int]  # rows in, out, rejected
    silver: tuple[int, int, int]  # rows in, out, quarantined
    failed: dict[str, int]  # rule_id -> rows failing (of silver rows in)
    drift: list[str]  # columns added in this run

    @property
    def reject_percent(self) -> float:
        return 100 * self.bronze[2] / self.bronze[0]

    @property
    def quarantine_percent(self) -> float:
        return 100 * self.silver[2] / self.silver[0]


def generate(count: int, seed: int = 21) -> list[Run]:
    """`count` runs a minute apart, oldest first; two of them with schema drift."""
    rng = random.Random(seed)
    prefix = uuid.uuid4().hex[:8]  # execution ids are unique in the store
    start = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
    drifting = {count // 3, 2 * count // 3}
    runs = []
    for i in range(count):
        rows_in = rng.randint(900, 1200)
        rejected = rng.randint(0, 30)
        failed = {rule_id: rng.randint(0, 40 * (k + 1)) for k, (rule_id, *_) in enumerate(RULES)}
        quarantined = failed["cast_lifetime_value"] + failed["regex_email"]  # the drop rules
        kept = rows_in - rejected
        runs.append(
            Run(
                id=f"hist-{prefix}-{i:03d}",
                created=start + timedelta(minutes=i),
                seconds={layer: round(rng.uniform(0.2, 4.0), 2) for layer in LAYERS},
                bronze=(rows_in, kept, rejected),
                silver=(kept, kept - quarantined, quarantined),
                failed=failed,
                drift=["loyalty_tier"] if i in drifting else [],
            )
        )
    return runs


def record(store: Store, workflow_id: str, job_id: str, runs: list[Run]) -> None:
    """Each run as a COMPLETED execution, then its times set to the generator's."""
    for run in runs:
        store.create_execution(workflow_id, job_id, list(LAYERS), execution_id=run.id)
        store.start_execution(run.id)
        for layer in LAYERS:
            store.start_step(run.id, layer, f"{run.id}-{layer}")
        rejected = {"rejected_by_reason": {"wrong_field_count": run.bronze[2]}}
        store.finish_step(run.id, "bronze", StepStatus.COMPLETED, rows_in=run.bronze[0],
                          rows_out=run.bronze[1], rows_rejected=run.bronze[2],
                          quality=rejected)  # fmt: skip
        rules = [
            {"rule_id": rule_id, "rule": rule, "column": column, "action": action,
             "checked": run.silver[0], "passed": run.silver[0] - run.failed[rule_id],
             "failed": run.failed[rule_id]}
            for rule_id, rule, column, action in RULES
        ]  # fmt: skip
        drift = {"added": run.drift, "removed": [], "retyped": []}
        store.finish_step(run.id, "silver", StepStatus.COMPLETED, rows_in=run.silver[0],
                          rows_out=run.silver[1], rows_rejected=run.silver[2],
                          quality={"rules": rules, "drift": drift})  # fmt: skip
        store.finish_step(run.id, "gold", StepStatus.COMPLETED, rows_in=run.silver[1],
                          rows_out=12, rows_rejected=0)  # fmt: skip
        store.finish_execution(run.id, ExecutionStatus.COMPLETED)
        _set_times(store, run)


def _set_times(store: Store, run: Run) -> None:
    began = run.created + timedelta(seconds=1)
    with Session(store.engine) as session, session.begin():
        at = began
        for layer in LAYERS:
            ended = at + timedelta(seconds=run.seconds[layer])
            session.execute(
                update(StepRow)
                .where(StepRow.execution_id == run.id, StepRow.layer == layer)
                .values(started_at=at, finished_at=ended)
            )
            at = ended
        session.execute(
            update(ExecutionRow)
            .where(ExecutionRow.id == run.id)
            .values(created_at=run.created, started_at=began, finished_at=at)
        )
