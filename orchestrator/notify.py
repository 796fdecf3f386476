"""Webhook notifications: a workflow's `notify.webhooks` are called when one of its
executions fails, crashes, or completes with more rows quarantined than
`notify.max_quarantine_percent`.

The automation loop (in the API process) calls notice_ended(), which queues one call per
webhook for each execution that ended (in the store: an outbox, decided by one write per
execution, so a restart or a second API replica never sends twice), and deliver_due(),
which POSTs them: a generic JSON event, or Slack's `{"text": ...}`. A failed call (network
error, 5xx, 408, 429) is retried after FLOWFORGE_NOTIFY_RETRY_DELAYS_SECONDS; the run
itself never waits for any of it. Webhook URLs carry their secret in the path or query:
logs, errors and API answers show mask_url()'s form only.
"""

from __future__ import annotations

import hashlib
import json
import logging
import urllib.error
import urllib.request
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from flowforge.errors import NotFound
from flowforge.settings import Settings
from orchestrator.automation_spec import Notify
from orchestrator.store import ExecutionRecord, Notification, Store
from orchestrator.store.models import utcnow

log = logging.getLogger(__name__)
TOP_REASONS = 5


def mask_url(url: str) -> str:
    """Scheme, host and port, then *** for the path and query (where webhooks keep their
    token), and a fingerprint that tells two webhooks of one host apart."""
    parts = urlsplit(url)
    host = parts.hostname or "?"
    port = f":{parts.port}" if parts.port else ""
    rest = "/***" if parts.path.strip("/") or parts.query else ""
    return f"{parts.scheme}://{host}{port}{rest} ({hashlib.sha256(url.encode()).hexdigest()[:6]})"


def quarantine_percent(execution: ExecutionRecord) -> float | None:
    silver = next((s for s in execution.steps if s.layer == "silver"), None)
    if silver is None or not silver.rows_in or silver.rows_rejected is None:
        return None
    return round(100.0 * silver.rows_rejected / silver.rows_in, 2)


def events_of(execution: ExecutionRecord, notify: Notify) -> list[str]:
    """What the execution's end announces to this workflow's webhooks (at most one)."""
    if execution.status == "FAILED" and "failed" in notify.on:
        return ["failed"]
    if execution.status == "CRASHED" and "crashed" in notify.on:
        return ["crashed"]
    share = quarantine_percent(execution)
    if (
        execution.status == "COMPLETED"
        and "quality" in notify.on
        and notify.max_quarantine_percent is not None
        and share is not None
        and share > notify.max_quarantine_percent
    ):
        return ["quality"]
    return []


def body_of(
    settings: Settings, execution: ExecutionRecord, event: str, notify: Notify
) -> dict[str, Any]:
    """The generic JSON event: what happened, where, why, and the link to it."""
    failed = next((s for s in execution.steps if s.status == "FAILED"), None)
    silver = next((s for s in execution.steps if s.layer == "silver"), None)
    reasons = (silver.quality.get("rejected_by_reason") if silver else None) or {}
    top = sorted(reasons.items(), key=lambda item: (-int(item[1]), item[0]))[:TOP_REASONS]
    return {
        "event": f"execution.{event}",
        "workflow_id": execution.workflow_id,
        "job_id": execution.job_id,
        "execution_id": execution.id,
        "status": execution.status,
        "cause": execution.cause,
        "url": f"{settings.public_url.rstrip('/')}/#/executions/{execution.id}",
        "failed_layer": failed.layer if failed else None,
        "error": execution.error,
        "quarantine_percent": quarantine_percent(execution),
        "max_quarantine_percent": notify.max_quarantine_percent,
        "top_quarantine_reasons": [{"reason": r, "rows": int(n)} for r, n in top],
        "started_at": _iso(execution.started_at),
        "finished_at": _iso(execution.finished_at),
    }


def slack_text(body: dict[str, Any]) -> str:
    where = f" at {body['failed_layer']}" if body.get("failed_layer") else ""
    lines = [f"FlowForge {body['workflow_id']}/{body['job_id']}: {body['status']}{where} "
             f"(execution {body['execution_id']})"]  # fmt: skip
    if body["event"] == "execution.quality":
        lines.append(f"{body['quarantine_percent']}% of the rows quarantined, over "
                     f"{body['max_quarantine_percent']}%")  # fmt: skip
    if body.get("error"):
        lines.append(str(body["error"])[:1000])
    if body.get("top_quarantine_reasons"):
        reasons = ", ".join(f"{r['reason']} ({r['rows']})" for r in body["top_quarantine_reasons"])
        lines.append(f"Top quarantine reasons: {reasons}")
    lines.append(body["url"])
    return "\n".join(lines)


def notice_ended(settings: Settings, store: Store) -> int:
    """Queues the webhook calls of every execution that ended since the last look; returns
    how many calls it queued."""
    queued = 0
    for execution in store.unnoticed_executions():
        try:
            notify = store.get_workflow(execution.workflow_id).notify
        except NotFound:
            notify = None
        calls = []
        for event in events_of(execution, notify) if notify else []:
            assert notify is not None
            body = body_of(settings, execution, event, notify)
            calls += [
                {"event": event, "url": hook.url, "format": hook.format, "body": body}
                for hook in notify.webhooks
            ]
        if store.notice(execution.id, calls):
            queued += len(calls)
    return queued


def deliver_due(settings: Settings, store: Store, now: datetime | None = None) -> int:
    """Sends the calls that are due; returns how many succeeded."""
    delays = settings.notify_retry_delays_seconds
    lease = timedelta(seconds=settings.notify_timeout_seconds * 3 + 5)
    sent = 0
    for call in store.due_notifications(now or utcnow()):
        if not store.claim_notification(call, lease):
            continue  # another process has it
        error, retryable = post(call, settings.notify_timeout_seconds)
        attempt = call.attempts + 1
        target = mask_url(call.url)
        if error is None:
            store.notification_done(call.id, None, None)
            log.info("notified %s of %s (%s)", target, call.execution_id, call.event)
            sent += 1
        elif retryable and attempt <= len(delays):
            retry_at = utcnow() + timedelta(seconds=delays[attempt - 1])
            store.notification_done(call.id, error, retry_at)
            log.warning("webhook %s: %s; retry %d at %s", target, error, attempt, retry_at)
        else:
            store.notification_done(call.id, error, None)
            log.error("webhook %s: %s; gave up after %d attempts", target, error, attempt)
    return sent


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # a redirect is an answer like any other: not followed


# urllib, not httpx: httpx logs every request's full URL (the webhook's token with it).
_OPENER = urllib.request.build_opener(_NoRedirects)


def post(call: Notification, timeout: float) -> tuple[str | None, bool]:
    """POSTs one call: (None, _) when it was answered 2xx, else (why, whether to retry)."""
    if urlsplit(call.url).scheme not in ("http", "https"):  # checked on apply; never file:
        return "not an http(s) URL", False
    payload = {"text": slack_text(call.body)} if call.format == "slack" else call.body
    request = urllib.request.Request(
        call.url,
        data=json.dumps(payload).encode(),
        headers={"Content-Type": "application/json", "User-Agent": "FlowForge"},
        method="POST",
    )
    try:
        with _OPENER.open(request, timeout=timeout) as answer:
            answer.read(4096)
        return None, False
    except urllib.error.HTTPError as exc:
        detail = _scrub(exc.read(200).decode("utf-8", "replace"), call.url)
        retry = exc.code >= 500 or exc.code in (408, 429)
        return f"answered {exc.code}{': ' + detail if detail else ''}", retry
    except (urllib.error.URLError, OSError) as exc:  # refused, reset, timed out, DNS
        reason = getattr(exc, "reason", exc)
        return _scrub(f"{type(reason).__name__}: {reason}", call.url), True


def _scrub(text: str, url: str) -> str:
    """The text with the URL's secret parts (path, query) masked, on one short line."""
    parts = urlsplit(url)
    whole = f"{parts.path}?{parts.query}" if parts.query else ""
    for secret in (url, whole, parts.path if len(parts.path) > 1 else "", parts.query):
        if secret:
            text = text.replace(secret, "***")
    return " ".join(text.split())[:200]


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None
