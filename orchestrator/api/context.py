"""What every request handler reads: settings, the executions store, the object store, and
the token check. Path IDs are validated here, before any handler touches SQL or S3."""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field
from typing import Annotated

import anyio
from fastapi import Depends, Path, Request

from flowforge.errors import InvalidArgument, NotFound, PermissionDenied, Unauthenticated
from flowforge.ids import ID_PATTERN, validate_id
from flowforge.settings import Settings
from flowforge.storage import ObjectStore
from flowforge.tables import TableRef
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


# Routes a `run` token may call on its workflow besides reading it; anything else but a GET
# needs an admin token.
RUN_ROUTES = frozenset(
    {
        ("POST", "/api/workflows/{workflow_id}/jobs/{job_id}/executions"),
        ("POST", "/api/workflows/{workflow_id}/jobs/{job_id}/files"),
        ("POST", "/api/executions/{execution_id}/cancel"),
        ("POST", "/api/workflows/{workflow_id}/executions"),
        ("POST", "/api/workflow-executions/{execution_id}/cancel"),
    }
)
SCOPES = {"read": {"read"}, "run": {"read", "run"}}


def require_token(request: Request) -> None:
    """Authorization: Bearer <token> when any token is set (constant-time checks): 401
    without a token or with an unknown one, 403 with a token whose scope does not cover
    the route (naming the workflow and the scope needed, never the token). The events
    stream also takes ?access_token=, since browsers' EventSource sends no headers.

    FLOWFORGE_API_TOKEN and admin entries of FLOWFORGE_API_TOKENS reach everything; a
    `read` token GETs its workflow's routes, a `run` token also starts and cancels its
    executions and uploads to its landing. Routes over no single workflow (the lists of
    every workflow, job, table, dimension, the event stream) are an admin's."""
    ctx = context(request)
    settings = ctx.settings
    known: list[tuple[str, str | None, str]] = []
    if settings.api_token is not None:
        known.append((settings.api_token.get_secret_value(), None, "admin"))
    known += [(t.token.get_secret_value(), t.workflow, t.scope) for t in settings.api_tokens]
    if not known:
        return
    header = request.headers.get("authorization", "")
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer" or not given:
        given = request.query_params.get("access_token", "") if _takes_query_token(request) else ""
    if not given:
        raise Unauthenticated("this endpoint needs 'Authorization: Bearer <token>'")
    presented = given.strip().encode()
    matched = None
    for token, workflow, scope in known:  # every one compared: no timing says which
        if hmac.compare_digest(presented, token.encode()) and matched is None:
            matched = (workflow, scope)
    if matched is None:
        raise Unauthenticated("the bearer token is not valid")
    workflow, scope = matched
    if scope == "admin":
        return
    needed = _scope_needed(request)
    target = _workflow_of(ctx, request)
    if target is None or needed == "admin":
        raise PermissionDenied(
            f"this token is scoped to workflow {workflow!r} ({scope}); "
            f"{request.method} {_route_path(request)} needs an admin token"
        )
    if target != workflow or needed not in SCOPES[scope]:
        raise PermissionDenied(
            f"this token has {scope} on workflow {workflow!r}; "
            f"{request.method} {_route_path(request)} needs {needed} on workflow {target!r}"
        )


def _route_path(request: Request) -> str:
    route = request.scope.get("route")
    return str(getattr(route, "path", request.url.path))


def _scope_needed(request: Request) -> str:
    if request.method in ("GET", "HEAD"):
        return "read"
    return "run" if (request.method, _route_path(request)) in RUN_ROUTES else "admin"


def _workflow_of(ctx: ApiContext, request: Request) -> str | None:
    """The one workflow a request is about: its path's workflow, its execution's, its
    table's, or the workflow_id filter of a list; None when it spans workflows."""
    params = request.path_params
    try:
        if "workflow_id" in params:
            return validate_id(params["workflow_id"], "workflow_id")
        if "execution_id" in params:
            execution_id = validate_id(params["execution_id"], "execution_id")
            if _route_path(request).startswith("/api/workflow-executions/"):
                return ctx.store.get_workflow_execution(execution_id).workflow_id
            return ctx.store.get_execution(execution_id).workflow_id
        if "path" in params and _route_path(request).startswith("/api/tables/"):
            return TableRef.parse(params["path"]).workflow_id
    except (InvalidArgument, NotFound):
        return None
    if "workflow_id" in request.query_params and _route_path(request) == "/api/executions":
        return request.query_params["workflow_id"]
    return None


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
