"""Webhook notifications from the store's outbox to a real HTTP receiver on loopback, on
SQLite and PostgreSQL, with the clock of deliver_due() given (retries without waiting)."""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from flowforge.settings import Settings
from orchestrator.automation_spec import Notify, Webhook
from orchestrator.notify import deliver_due, mask_url, notice_ended
from orchestrator.store import ExecutionRecord, ExecutionStatus, StepStatus, Store
from orchestrator.store.database import open_engine, upgrade
from orchestrator.store.models import utcnow
from orchestrator.workflows import Workflow
from tests.orchestrator.conftest import workflow_named
from tests.receiver import Receiver

TOKEN = "xoxb-" + uuid.uuid4().hex  # what a webhook URL hides
REASONS = {
    "range_lifetime_value": 3,
    "regex_email": 7,
    "cast_signup_date": 7,
    "a": 1,
    "b": 1,
    "c": 1,
}


@pytest.fixture
def receiver() -> Any:
    with Receiver() as running:
        yield running


def quick(settings: Settings, **changes: Any) -> Settings:
    return settings.model_copy(
        update={"public_url": "http://flowforge.example:8000/", "notify_timeout_seconds": 1.0}
        | changes
    )


def notifying(store: Store, sample: Workflow, url: str, **notify: Any) -> Workflow:
    hooks = [
        Webhook(url=f"{url}/hook?token={TOKEN}"),
        Webhook(url=f"{url}/services/{TOKEN}", format="slack"),
    ]
    workflow = workflow_named(sample, f"nt-{uuid.uuid4().hex[:8]}")
    workflow = workflow.model_copy(update={"notify": Notify(webhooks=hooks, **notify)})
    store.save_workflow(workflow)
    return workflow


def ended(
    store: Store, workflow: Workflow, status: ExecutionStatus, rejected: int = 20
) -> ExecutionRecord:
    """An execution of `customers` as the flow records one: bronze and silver completed
    (silver quarantining `rejected` of 100 rows for REASONS), gold running when it ends."""
    execution = store.create_execution(workflow.id, "customers", ["bronze", "silver", "gold"])
    store.start_execution(execution.id)
    store.start_step(execution.id, "bronze", execution.id)
    store.finish_step(
        execution.id, "bronze", StepStatus.COMPLETED, rows_in=100, rows_out=100, rows_rejected=0
    )
    store.start_step(execution.id, "silver", execution.id)
    store.finish_step(
        execution.id, "silver", StepStatus.COMPLETED, rows_in=100, rows_out=100 - rejected,
        rows_rejected=rejected, quality={"rejected_by_reason": REASONS},
    )  # fmt: skip
    store.start_step(execution.id, "gold", execution.id)
    error = (
        "gold: model 'by_country': Binder Error: column 'nope' not found"
        if status != ExecutionStatus.COMPLETED
        else None
    )
    if status == ExecutionStatus.COMPLETED:
        store.finish_step(
            execution.id, "gold", StepStatus.COMPLETED, rows_in=80, rows_out=5, rows_rejected=0
        )
    store.finish_execution(execution.id, status, error=error)
    return store.get_execution(execution.id)


def test_a_failed_execution_calls_each_webhook_once_with_its_event(
    any_store: Store, sample_workflow: Workflow, settings: Settings, receiver: Receiver
) -> None:
    workflow = notifying(any_store, sample_workflow, receiver.url)
    execution = ended(any_store, workflow, ExecutionStatus.FAILED)
    settings = quick(settings)
    notice_ended(settings, any_store)
    assert notice_ended(settings, any_store) == 0  # considered once
    assert deliver_due(settings, any_store) == 2
    assert deliver_due(settings, any_store, now=utcnow() + timedelta(days=1)) == 0
    generic, slack = sorted(receiver.wait_for(2), key=lambda r: r.path)
    assert generic.path == f"/hook?token={TOKEN}" and slack.path == f"/services/{TOKEN}"
    assert generic.headers["Content-Type"] == "application/json"
    top = sorted(REASONS.items(), key=lambda kv: (-kv[1], kv[0]))[:5]
    assert generic.body == {
        "event": "execution.failed",
        "workflow_id": workflow.id,
        "job_id": "customers",
        "execution_id": execution.id,
        "status": "FAILED",
        "cause": "manual",
        "url": f"http://flowforge.example:8000/#/executions/{execution.id}",
        "failed_layer": "gold",
        "error": execution.error,
        "quarantine_percent": 20.0,
        "max_quarantine_percent": None,
        "top_quarantine_reasons": [{"reason": r, "rows": n} for r, n in top],
        "started_at": execution.started_at.isoformat() if execution.started_at else None,
        "finished_at": execution.finished_at.isoformat() if execution.finished_at else None,
    }
    lines = slack.body["text"].splitlines()
    assert set(slack.body) == {"text"}
    assert (
        lines[0] == f"FlowForge {workflow.id}/customers: FAILED at gold (execution {execution.id})"
    )
    assert execution.error in lines and lines[-1] == generic.body["url"]
    assert "cast_signup_date (7), regex_email (7), range_lifetime_value (3)" in lines[-2]
    calls = any_store.notifications_of(execution.id)
    assert [(c.status, c.attempts, c.event) for c in calls] == [("sent", 1, "failed")] * 2


@pytest.mark.parametrize(
    ("status", "threshold", "rejected", "events"),
    [
        (ExecutionStatus.CRASHED, None, 0, ["crashed"]),
        (ExecutionStatus.CANCELLED, None, 0, []),
        (ExecutionStatus.COMPLETED, 10.0, 12, ["quality"]),
        (ExecutionStatus.COMPLETED, 10.0, 10, []),  # at the threshold is not over it
        (ExecutionStatus.COMPLETED, None, 90, []),  # no threshold set
    ],
)
def test_what_an_ending_announces(
    any_store: Store,
    sample_workflow: Workflow,
    settings: Settings,
    status: ExecutionStatus,
    threshold: float | None,
    rejected: int,
    events: list[str],
) -> None:
    workflow = notifying(
        any_store, sample_workflow, "http://127.0.0.1:9", max_quarantine_percent=threshold
    )
    execution = ended(any_store, workflow, status, rejected=rejected)
    notice_ended(quick(settings), any_store)
    calls = any_store.notifications_of(execution.id)
    assert [c.event for c in calls] == events * 2  # one call per webhook


def test_a_failing_webhook_is_retried_with_backoff_and_its_token_never_shown(
    any_store: Store,
    sample_workflow: Workflow,
    settings: Settings,
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = quick(settings, notify_retry_delays_seconds=[5.0, 60.0])
    with Receiver([503, 503, 200, 404]) as receiver:
        workflow = notifying(any_store, sample_workflow, receiver.url)
        workflow = workflow.model_copy(
            update={"notify": Notify(webhooks=workflow.notify.webhooks[:1])}
        )  # type: ignore[union-attr]
        any_store.save_workflow(workflow)
        execution = ended(any_store, workflow, ExecutionStatus.FAILED)
        caplog.set_level(logging.DEBUG)
        notice_ended(settings, any_store)
        start = utcnow()
        assert deliver_due(settings, any_store, now=start) == 0
        (call,) = any_store.notifications_of(execution.id)
        assert (call.status, call.attempts) == ("pending", 1)
        assert (
            start + timedelta(seconds=5) <= call.next_attempt_at <= utcnow() + timedelta(seconds=5)
        )
        assert deliver_due(settings, any_store, now=start + timedelta(seconds=4)) == 0  # not yet
        assert len(receiver.received) == 1
        assert deliver_due(settings, any_store, now=call.next_attempt_at) == 0  # 503 again
        (call,) = any_store.notifications_of(execution.id)
        assert call.next_attempt_at >= start + timedelta(seconds=60)
        assert deliver_due(settings, any_store, now=call.next_attempt_at) == 1
        (call,) = any_store.notifications_of(execution.id)
        assert (call.status, call.attempts) == ("sent", 3) and len(receiver.received) == 3
    url = workflow.notify.webhooks[0].url  # type: ignore[union-attr]
    assert mask_url(url) in caplog.text and "answered 503" in caplog.text
    assert TOKEN not in caplog.text


def test_a_refusing_webhook_is_not_retried_and_a_silent_one_times_out(
    any_store: Store, sample_workflow: Workflow, settings: Settings
) -> None:
    settings = quick(settings, notify_retry_delays_seconds=[1.0], notify_timeout_seconds=0.5)
    with Receiver([404, "hang", "hang"]) as receiver:
        workflow = notifying(any_store, sample_workflow, receiver.url)
        execution = ended(any_store, workflow, ExecutionStatus.FAILED)
        notice_ended(settings, any_store)
        later = utcnow()
        for _ in range(3):  # each call's first attempt, then the silent one's retry
            later += timedelta(seconds=2)
            deliver_due(settings, any_store, now=later)
        calls = {c.format: c for c in any_store.notifications_of(execution.id)}
    refused, silent = calls["json"], calls["slack"]  # sent in that order
    assert (refused.status, refused.attempts) == ("failed", 1)
    # The receiver's answer quoted the URL: its path and query are masked in the error.
    assert refused.last_error == "answered 404: answer 404 to ***"
    assert (silent.status, silent.attempts) == ("failed", 2)
    assert silent.last_error is not None and "timed out" in silent.last_error
    assert TOKEN not in refused.last_error + silent.last_error


def test_mask_url_keeps_the_host_and_hides_path_and_query() -> None:
    masked = mask_url(f"https://hooks.slack.com/services/T0/B0/{TOKEN}")
    assert masked.startswith("https://hooks.slack.com/*** (") and TOKEN not in masked
    assert mask_url(f"http://user:{TOKEN}@10.0.0.1:8080/?k={TOKEN}").startswith(
        "http://10.0.0.1:8080/*** ("
    )
    assert mask_url("https://example.com").startswith("https://example.com (")
    assert mask_url("https://example.com/a?t=1") != mask_url("https://example.com/a?t=2")


def test_executions_that_ended_before_the_upgrade_are_not_announced(tmp_path: Path) -> None:
    """Migration 0003 marks every ended execution noticed: enabling notifications does not
    replay an installation's history."""
    from alembic import command

    from orchestrator.store.database import alembic_config

    engine = open_engine(f"sqlite:///{tmp_path / 'old.db'}", migrate=False)
    config = alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0002")
        connection.execute(
            text("INSERT INTO workflows VALUES ('w', '', '{}', NULL, '2026-01-01', '2026-01-01')")
        )
        connection.execute(text("INSERT INTO jobs VALUES ('w', 'j', 0, '', '{}')"))
        connection.execute(text(
            "INSERT INTO executions (id, workflow_id, job_id, status, layers, full_refresh, "
            "created_at, finished_at, error) VALUES ('old', 'w', 'j', 'FAILED', '[]', 0, "
            "'2026-01-01', '2026-01-01', 'boom')"
        ))  # fmt: skip
    upgrade(engine)
    store = Store(engine)
    try:
        assert store.unnoticed_executions() == []
        assert store.get_execution("old").cause == "manual"
    finally:
        store.close()


def test_a_store_error_never_shows_the_values_it_was_writing(
    postgres_schema_url: str, sample_workflow: Workflow
) -> None:
    """A statement the database refuses (PostgreSQL: an event name over its column's 16
    characters) fails without the webhook URL in its text, which reaches logs."""
    store = Store(open_engine(postgres_schema_url))
    try:
        workflow = notifying(store, sample_workflow, "http://127.0.0.1:9")
        execution = ended(store, workflow, ExecutionStatus.FAILED)
        url = f"https://hooks.example/{TOKEN}"
        call = {"event": "x" * 17, "url": url, "format": "json", "body": {}}
        with pytest.raises(DBAPIError) as raised:
            store.notice(execution.id, [call])
    finally:
        store.close()
    assert "value too long" in str(raised.value) and TOKEN not in str(raised.value)
