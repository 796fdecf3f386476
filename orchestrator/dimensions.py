"""Deleting a dimension: refused while a stored workflow lists it."""

from __future__ import annotations

from flowforge.dimensions import delete_dimension
from flowforge.errors import FailedPrecondition
from flowforge.ids import validate_id
from flowforge.storage import ObjectStore
from orchestrator.store import Store
from orchestrator.workflows import reads_dimension


def delete_unused_dimension(store: Store, objects: ObjectStore, name: str) -> int:
    """Deletes dimension `name` (every version); FailedPrecondition (409) naming the
    workflows that list it, NotFound when there is none. Returns how many objects went."""
    validate_id(name, "dimension")
    users = [
        record.id
        for record in store.list_workflows()
        if reads_dimension(store.get_workflow(record.id), name)
    ]
    if users:
        raise FailedPrecondition(
            f"dimension {name!r} is listed by workflow(s) {', '.join(sorted(users))}: "
            "remove it from their dimensions first"
        )
    return delete_dimension(objects, name)
