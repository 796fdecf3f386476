"""CSV options as the bronze layer understands them, validated field by field."""

from __future__ import annotations

import codecs
from dataclasses import dataclass, field

from flowforge.errors import InvalidArgument

_ESCAPES = {"\\t": "\t", "tab": "\t", "\\|": "|"}


@dataclass(frozen=True)
class CsvOptions:
    delimiter: str = ""  # "" = sniff
    quote: str = '"'
    escape: str = ""  # "" = quotes are escaped by doubling
    header: bool | None = None  # None = sniff
    encoding: str = ""  # "" = UTF-8, BOM honoured
    null_markers: tuple[str, ...] = field(default_factory=tuple)

    @classmethod
    def validated(
        cls,
        delimiter: str = "",
        quote: str = "",
        escape: str = "",
        header: bool | None = None,
        encoding: str = "",
        null_markers: tuple[str, ...] | list[str] = (),
    ) -> CsvOptions:
        delimiter = _ESCAPES.get(delimiter, delimiter)
        quote = quote or '"'
        _one_char("csv.delimiter", delimiter, allow_empty=True)
        _one_char("csv.quote", quote, allow_empty=False)
        _one_char("csv.escape", escape, allow_empty=True)
        if delimiter and delimiter == quote:
            raise InvalidArgument("csv.delimiter and csv.quote must differ")
        if escape and escape == delimiter:
            raise InvalidArgument("csv.escape and csv.delimiter must differ")
        if encoding:
            try:
                info = codecs.lookup(encoding)
            except LookupError:
                raise InvalidArgument(
                    f"csv.encoding {encoding!r} is not a known encoding"
                ) from None
            encoding = info.name
        return cls(delimiter, quote, escape, header, encoding, tuple(null_markers))


def _one_char(name: str, value: str, *, allow_empty: bool) -> None:
    if not value and allow_empty:
        return
    if len(value) != 1:
        raise InvalidArgument(f"{name} must be a single character, got {value!r}")
    if value in "\r\n":
        raise InvalidArgument(f"{name} cannot be a line break")
