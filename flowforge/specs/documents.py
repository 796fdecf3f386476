"""A spec written as a document (YAML or JSON) read into its proto message, field by field.

Unlike protobuf's json_format, every error is a SpecError at the field's own path, with
the proto's snake_case names only: `columns[0]: unknown key 'format' (did you mean
'formats'?)`, `dedupe.keys: must be a list, not a string`.
"""

from __future__ import annotations

import difflib
import math
from typing import Any

from google.protobuf import struct_pb2
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from flowforge.errors import SpecError
from flowforge.fieldpath import FieldPath
from flowforge.v1 import gold_pb2, silver_pb2

# Fields a document never sets: the reader fills them in.
_INTERNAL = frozenset({"null_markers_set"})
_INTEGER_TYPES = {
    FieldDescriptor.TYPE_INT32,
    FieldDescriptor.TYPE_INT64,
    FieldDescriptor.TYPE_UINT32,
    FieldDescriptor.TYPE_UINT64,
    FieldDescriptor.TYPE_SINT32,
    FieldDescriptor.TYPE_SINT64,
}
_FLOAT_TYPES = {FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT}


def silver_spec_from_document(data: Any) -> silver_pb2.SilverSpec:
    """The `silver:` part of a workflow as a SilverSpec. `null_markers: []` means "no
    value is null", which the proto says with `null_markers_set`."""
    spec = silver_pb2.SilverSpec()
    fill(spec, data, ())
    for given, column in zip((data or {}).get("columns") or [], spec.columns, strict=False):
        if isinstance(given, dict) and "null_markers" in given:
            column.null_markers_set = True
    return spec


def gold_spec_from_document(data: Any) -> gold_pb2.GoldSpec:
    spec = gold_pb2.GoldSpec()
    fill(spec, data, ())
    return spec


def known_keys(descriptor: Descriptor) -> list[str]:
    return [f.name for f in descriptor.fields if f.name not in _INTERNAL]


def unknown_key(key: str, known: list[str]) -> str:
    """`unknown key 'format' (did you mean 'formats'?)`, or the keys there are."""
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    hint = f"did you mean {close[0]!r}?" if close else f"known keys: {', '.join(known)}"
    return f"unknown key {key!r} ({hint})"


class UnknownKey(SpecError):
    """A key the spec does not have; `key` is its name (a YAML error points at its line)."""

    def __init__(self, path: FieldPath, key: str, known: list[str]) -> None:
        self.key = key
        super().__init__(path, f": {unknown_key(key, known)}", root="")


def fill(message: Message, data: Any, path: FieldPath) -> None:
    """Sets `message` from a mapping; raises SpecError at the offending field."""
    if data is None:
        return
    if not isinstance(data, dict):
        raise SpecError(path, f"must be a mapping of keys, not {_kind(data)}", root="")
    descriptor = message.DESCRIPTOR
    known = known_keys(descriptor)
    for key, value in data.items():
        field = descriptor.fields_by_name.get(str(key))
        if field is None or field.name in _INTERNAL:
            raise UnknownKey(path, str(key), known)
        where = (*path, field.name)
        if field.is_repeated:
            if value is None:
                continue
            if not isinstance(value, list):
                raise SpecError(where, f"must be a list, not {_kind(value)}", root="")
            target = getattr(message, field.name)
            for index, item in enumerate(value):
                if field.type == FieldDescriptor.TYPE_MESSAGE:
                    fill_message(target.add(), item, (*where, index))
                else:
                    target.append(_scalar(field, item, (*where, index)))
        elif field.type == FieldDescriptor.TYPE_MESSAGE:
            if value is None:
                continue
            fill_message(getattr(message, field.name), value, where)
        elif value is not None:
            setattr(message, field.name, _scalar(field, value, where))


def fill_message(message: Message, value: Any, path: FieldPath) -> None:
    if isinstance(message, struct_pb2.Value):
        _set_value(message, value, path)
    else:
        fill(message, value, path)


def _set_value(message: struct_pb2.Value, value: Any, path: FieldPath) -> None:
    """google.protobuf.Value holds YAML scalars: text, numbers and booleans."""
    if isinstance(value, bool):
        message.bool_value = value
    elif isinstance(value, int | float) and math.isfinite(value):
        message.number_value = float(value)
    elif isinstance(value, str):
        message.string_value = value
    else:
        raise SpecError(path, f"must be a number, text or a boolean, not {_kind(value)}", root="")


def _scalar(field: FieldDescriptor, value: Any, path: FieldPath) -> Any:
    if field.type == FieldDescriptor.TYPE_STRING:
        if isinstance(value, str):
            return value
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)  # `target: 2024` means the text "2024"
        raise SpecError(path, f"must be text, not {_kind(value)}", root="")
    if field.type == FieldDescriptor.TYPE_BOOL:
        if isinstance(value, bool):
            return value
        raise SpecError(path, f"must be true or false, not {_kind(value)}", root="")
    if field.type in _INTEGER_TYPES:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise SpecError(path, f"must be a whole number, not {_kind(value)}", root="")
    if field.type in _FLOAT_TYPES:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        raise SpecError(path, f"must be a number, not {_kind(value)}", root="")
    raise SpecError(path, "cannot be set in a document", root="")


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, str):
        return f"the text {value[:40]!r}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    if value is None:
        return "empty"
    return f"the number {value}" if isinstance(value, int | float) else type(value).__name__
