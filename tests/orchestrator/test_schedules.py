"""Job schedules without a served deployment: the next run time against the time zone's own
rules (zoneinfo), and a sync while Prefect is down noted on the job, not lost."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from flowforge.embedded import pick_ports
from flowforge.errors import Unavailable
from flowforge.settings import Settings
from orchestrator.automation_spec import Schedule
from orchestrator.schedules import next_run, sync_schedules
from orchestrator.store import Store
from orchestrator.workflows import Workflow
from tests.orchestrator.conftest import workflow_named

BERLIN = ZoneInfo("Europe/Berlin")


@pytest.mark.parametrize(
    "after",
    [
        datetime(2026, 3, 28, 12, 0, tzinfo=UTC),  # the night clocks go forward in Berlin
        datetime(2026, 10, 24, 12, 0, tzinfo=UTC),  # the night they go back
        datetime(2026, 7, 1, 4, 59, tzinfo=UTC),  # summer, a minute before 06:00 local
    ],
)
def test_the_next_run_is_six_in_the_morning_berlin_time(after: datetime) -> None:
    local = after.astimezone(BERLIN)
    day = local.date() if local.hour < 6 else local.date() + timedelta(days=1)
    expected = datetime(day.year, day.month, day.day, 6, 0, tzinfo=BERLIN)
    assert next_run(Schedule(cron="0 6 * * *", timezone="Europe/Berlin"), after) == expected


def test_a_sync_while_prefect_is_down_is_noted_on_the_job(
    any_store: Store, sample_workflow: Workflow, settings: Settings
) -> None:
    from prefect.settings import PREFECT_API_URL, temporary_settings

    jobs = [
        j.model_copy(update={"schedule": Schedule(cron="0 6 * * *")}) if j.id == "orders" else j
        for j in sample_workflow.jobs
    ]
    workflow = workflow_named(sample_workflow, f"sc-{uuid.uuid4().hex[:8]}").model_copy(
        update={"jobs": jobs}
    )
    any_store.save_workflow(workflow)
    closed = f"http://127.0.0.1:{pick_ports()['s3.port']}/api"  # nothing listens there
    with temporary_settings(updates={PREFECT_API_URL: closed}), pytest.raises(Unavailable):
        sync_schedules(settings, any_store)
    state = any_store.schedule_states()[(workflow.id, "orders")]
    assert state.error is not None and state.error.startswith("Prefect did not answer: ")
    assert state.prefect_schedule_id is None and not state.paused
