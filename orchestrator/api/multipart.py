"""A streaming multipart/form-data reader: yields each part's headers and data as the body
arrives, so an uploaded file never has to be held (or spooled) whole."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from python_multipart.multipart import MultipartParser

from flowforge.errors import InvalidArgument, UnsupportedMediaType

_BOUNDARY = re.compile(r'boundary=(?:"([^"]+)"|([^;\s]+))', re.I)
_PARAM = r'{name}=(?:"((?:[^"\\]|\\.)*)"|([^;\s]*))'


@dataclass
class Part:
    field: str = ""
    filename: str | None = None


@dataclass
class _Events:
    items: list[tuple[str, object]] = field(default_factory=list)
    header: bytearray = field(default_factory=bytearray)
    value: bytearray = field(default_factory=bytearray)
    headers: dict[str, str] = field(default_factory=dict)

    def callbacks(self) -> dict[str, object]:
        def data(buffer: bytes, start: int, end: int) -> None:
            self.items.append(("data", bytes(buffer[start:end])))

        def header_end() -> None:
            self.headers[self.header.decode("latin-1").lower()] = self.value.decode(
                "utf-8", "replace"
            )
            self.header.clear()
            self.value.clear()

        def headers_done() -> None:
            self.items.append(("part", part_of(self.headers.get("content-disposition", ""))))
            self.headers = {}

        return {
            "on_part_data": data,
            "on_part_end": lambda: self.items.append(("end", None)),
            "on_header_field": lambda b, s, e: self.header.extend(b[s:e]),
            "on_header_value": lambda b, s, e: self.value.extend(b[s:e]),
            "on_header_end": header_end,
            "on_headers_finished": headers_done,
        }


def boundary_of(content_type: str) -> str:
    if not content_type.lower().startswith("multipart/form-data"):
        raise UnsupportedMediaType(
            f"send the files as multipart/form-data, not {content_type or 'no content type'!r}"
        )
    found = _BOUNDARY.search(content_type)
    if found is None:
        raise UnsupportedMediaType("the multipart/form-data content type has no boundary")
    return found.group(1) or found.group(2)


def part_of(disposition: str) -> Part:
    """Field name and file name of a part, taken literally (no path stripping: a name
    with a path in it is refused later, not silently shortened)."""
    part = Part()
    for name in ("name", "filename"):
        match = re.search(r"(?:^|;)\s*" + _PARAM.format(name=name), disposition, re.I)
        if match:
            value = match.group(1) if match.group(1) is not None else match.group(2)
            value = re.sub(r"\\(.)", r"\1", value)
            if name == "name":
                part.field = value
            else:
                part.filename = value
    return part


async def read_parts(
    stream: AsyncIterator[bytes], content_type: str
) -> AsyncIterator[tuple[str, object]]:
    """("part", Part) when a part's headers are read, ("data", bytes) as its content arrives,
    ("end", None) when it ends."""
    events = _Events()
    parser = MultipartParser(boundary_of(content_type), events.callbacks())  # type: ignore[arg-type]
    async for chunk in stream:
        try:
            parser.write(chunk)
        except Exception as exc:  # python-multipart's parse errors
            raise InvalidArgument(f"the multipart body is malformed: {exc}") from None
        items, events.items = events.items, []
        for item in items:
            yield item
    try:
        parser.finalize()
    except Exception as exc:
        raise InvalidArgument(f"the multipart body is malformed: {exc}") from None
    for item in events.items:
        yield item
