"""What every request handler reads: settings, the executions store, the object store, and
the token check. Path IDs are validated here, before any handler touches SQL or S3."""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field
from typing import Annotated

import anyio
from fastapi import Depends, Path, Request

from flowforge.errors import Unauthenticated
from flowforge.ids import ID_PATTERN, validate_id
from flowforge.settings import Settings
from flowforge.storage import ObjectStore
from orchestrator.api.activity import Activity
from orchestrator.api.errors import Busy, TooManyRequests
from orchestrator.api.limits import Slots
from orchestrator.api.reconciling import Reconciler
from orchestrator.api.unfinished import UnfinishedUploads
from orchestrator.automation import Automation
from orchestrator.runner import InProcessRunner
from orchestrator.store import Store
from orchestrator.trigger import prefect_api_configured


@dataclass
class ApiContext:
    settings: Settings
    store: Store
    objects: ObjectStore
    reconciler: Reconciler = field(init=False)
    # Without a Prefect API (PREFECT_API_URL), triggered flows run in this process.
    runner: InProcessRunner | None = field(init=False)
    unfinished: UnfinishedUploads = field(init=False)
    # Upload triggers, the landing scan, schedule sync and notifications (automation.py).
    automation: Automation = field(init=False)
    uploads: Slots = field(init=False)
    streams: Slots = field(init=False)
    client_streams: Slots = field(init=False)
    # Workflow documents parsed at once, each in a worker thread: parsing holds the GIL, and
    # the event loop must still get it between them.
    parses: anyio.CapacityLimiter = field(default_factory=lambda: anyio.CapacityLimiter(2))
    # Wakes the event streams and the reconciler when this API starts or cancels a run.
    activity: Activity = field(default_factory=Activity)

    def __post_init__(self) -> None:
        self.reconciler = Reconciler(self.settings, self.store)
        self.runner = (
            None if prefect_api_configured() else InProcessRunner(self.settings, self.store)
        )
        self.unfinished = UnfinishedUploads(self.objects)
        self.automation = Automation(self.settings, self.store, self.objects, self.runner)
        settings = self.settings
        self.uploads = Slots(
            settings.api_max_concurrent_uploads,
            lambda n: Busy(
                f"{n} uploads are in progress, as many as the API takes at once "
                "(FLOWFORGE_API_MAX_CONCURRENT_UPLOADS); retry shortly"
            ),
        )
        self.streams = Slots(
            settings.api_max_event_streams,
            lambda n: Busy(
                f"{n} event streams are open, as many as the API serves "
                "(FLOWFORGE_API_MAX_EVENT_STREAMS); retry shortly"
            ),
        )
        self.client_streams = Slots(
            settings.api_max_event_streams_per_client,
            lambda n: TooManyRequests(
                f"this client has {n} event streams open, as many as one client may "
                "(FLOWFORGE_API_MAX_EVENT_STREAMS_PER_CLIENT); close one first"
            ),
        )


def context(request: Request) -> ApiContext:
    return request.app.state.context  # type: ignore[no-any-return]


Context = Annotated[ApiContext, Depends(context)]


def require_token(request: Request) -> None:
    """Authorization: Bearer <FLOWFORGE_API_TOKEN> when a token is set (constant-time check).
    The events stream also takes ?access_token=, since browsers' EventSource sends no headers."""
    token = context(request).settings.api_token
    if token is None:
        return
    header = request.headers.get("authorization", "")
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer" or not given:
        given = request.query_params.get("access_token", "") if _takes_query_token(request) else ""
    if not given:
        raise Unauthenticated("this endpoint needs 'Authorization: Bearer <token>'")
    if not hmac.compare_digest(given.strip().encode(), token.get_secret_value().encode()):
        raise Unauthenticated("the bearer token is not valid")


def _takes_query_token(request: Request) -> bool:
    return request.url.path == "/api/events"


def _id_param(field: str, description: str) -> object:
    """A path parameter that is an ID: documented with its pattern, checked in the handler."""
    # The pattern is documented, and checked by ids() so the answer is a 400 naming it.
    return Path(
        description=f"{description}: 1-64 letters, digits, '_' or '-'",
        json_schema_extra={"pattern": f"^{ID_PATTERN}$"},
    )


WorkflowId = Annotated[str, _id_param("workflow_id", "Workflow id")]
JobId = Annotated[str, _id_param("job_id", "Job id")]
ExecutionId = Annotated[str, _id_param("execution_id", "Execution id")]
DimensionName = Annotated[str, _id_param("name", "Dimension name")]


def ids(**values: str) -> None:
    """Raises InvalidArgument (400) naming the first path ID that is not a valid ID."""
    for name, value in values.items():
        validate_id(value, name)
