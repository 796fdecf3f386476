"""Domain errors, each tagged with the gRPC status (and HTTP status) a caller should see.

Terminal errors (bad input, missing upstream commit) fail at once; transient ones
(object store, network) are worth retrying. Services raise these; the gRPC runtime
and the HTTP API turn them into statuses, so no layer maps errors by hand.
"""

from __future__ import annotations

from flowforge.fieldpath import FieldPath, dotted


class FlowForgeError(Exception):
    """Base class. `status` is a grpc.StatusCode name; `http_status` the API's answer.

    `retryable` is the class's default for its status; an error that will not go away
    however often it is repeated (a model over its memory or time limit) says so with
    `retryable=False`, and the gRPC runtime passes that on to the caller.
    """

    status = "INTERNAL"
    http_status = 500
    retryable = False

    def __init__(self, message: str, *, retryable: bool | None = None) -> None:
        super().__init__(message)
        self.message = message
        if retryable is not None:
            self.retryable = retryable


class InvalidArgument(FlowForgeError):
    status, http_status = "INVALID_ARGUMENT", 400


class SpecError(InvalidArgument):
    """A spec field that does not validate. `path` names the field inside the spec
    (('columns', 2, 'type')) so that a caller can point at its own source of the spec, a
    YAML line for instance, without reading the message; `detail` says what is wrong."""

    def __init__(self, path: FieldPath, detail: str, root: str = "spec") -> None:
        self.path = tuple(path)
        self.detail = detail
        where = dotted((root, *self.path)) if root else dotted(self.path)
        if not where:
            super().__init__(detail.removeprefix(": "))
        else:
            super().__init__(f"{where}{'' if detail.startswith(':') else ' '}{detail}")


class UnsupportedMediaType(InvalidArgument):
    """A file of a kind that is not accepted here (not .csv, binary content)."""

    http_status = 415


class NotFound(FlowForgeError):
    status, http_status = "NOT_FOUND", 404


class FailedPrecondition(FlowForgeError):
    status, http_status = "FAILED_PRECONDITION", 409


class Conflict(FlowForgeError):
    """Someone else committed first (a lost manifest race) or a run is already going."""

    status, http_status = "ABORTED", 409


class Unavailable(FlowForgeError):
    status, http_status, retryable = "UNAVAILABLE", 503, True


class DeadlineExceeded(FlowForgeError):
    status, http_status, retryable = "DEADLINE_EXCEEDED", 504, True


class ResourceExhausted(FlowForgeError):
    status, http_status, retryable = "RESOURCE_EXHAUSTED", 507, True


class Cancelled(FlowForgeError):
    status, http_status = "CANCELLED", 499


class Unauthenticated(FlowForgeError):
    status, http_status = "UNAUTHENTICATED", 401


class PermissionDenied(FlowForgeError):
    """A valid credential without the right for this action (the message names the scope
    needed, never the credential)."""

    status, http_status = "PERMISSION_DENIED", 403
