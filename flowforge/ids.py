"""Validation of every ID that becomes part of an object key, before it touches one."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime

from flowforge.errors import InvalidArgument

ID_PATTERN = r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}"
_ID = re.compile(ID_PATTERN)


def validate_id(value: object, field: str) -> str:
    """Returns value when it is a valid ID; raises InvalidArgument naming the field otherwise."""
    if not isinstance(value, str) or not value:
        raise InvalidArgument(f"{field} is required")
    if _ID.fullmatch(value) is None:
        shown = value if len(value) <= 80 else value[:77] + "..."
        raise InvalidArgument(
            f"{field} {shown!r} is not a valid ID: use 1-64 letters, digits, '_' or '-', "
            "starting with a letter or digit"
        )
    return value


def new_run_id() -> str:
    """A sortable, unique run id such as 20261126T155501Z-3f2a9c1d."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{stamp}-{uuid.uuid4().hex[:8]}"


def run_id_or_new(value: str, field: str = "run_id") -> str:
    return validate_id(value, field) if value else new_run_id()
