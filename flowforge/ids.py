"""Validation of every ID that becomes part of an object key, before it touches one."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime

from flowforge.errors import InvalidArgument, UnsupportedMediaType

ID_PATTERN = r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}"
_ID = re.compile(ID_PATTERN)
# The stem of a file name that becomes the last part of an object key: letters, digits,
# '_', '-' and single dots; no path, no '..'. Each dot is followed by a letter, digit, '_' or
# '-', so neither the stem nor the name ("x..csv": stem "x.") holds two in a row.
_FILE_STEM = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9_-]|\.(?=[A-Za-z0-9_-])){0,63}")


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


def validate_file_name(name: str | None, suffixes: tuple[str, ...]) -> str:
    """Returns name when it may end an object key and has one of `suffixes` (lower case,
    with the dot); InvalidArgument (UnsupportedMediaType for the suffix) otherwise."""
    if not name:
        raise InvalidArgument("every file needs a file name (filename=...)")
    shown = name if len(name) <= 80 else name[:77] + "..."
    stem, dot, suffix = name.rpartition(".")
    if not dot or f".{suffix.lower()}" not in suffixes:
        kinds = " or ".join(suffixes)
        raise UnsupportedMediaType(f"file {shown!r}: only {kinds} files are accepted here")
    if _FILE_STEM.fullmatch(stem) is None:
        raise InvalidArgument(
            f"file name {shown!r} is not allowed: use letters, digits, '_', '-' and single "
            f"dots, ending in {' or '.join(suffixes)} (no paths)"
        )
    return name


def new_run_id() -> str:
    """A sortable, unique run id such as 20261126T155501Z-3f2a9c1d."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{stamp}-{uuid.uuid4().hex[:8]}"


def run_id_or_new(value: str, field: str = "run_id") -> str:
    return validate_id(value, field) if value else new_run_id()
