"""Hypothesis strategies for hostile CSV files whose correct reading is known by construction:
random quoting, delimiters, quotes and line breaks inside fields, LF/CRLF/CR mixes, BOMs,
invalid UTF-8, ragged rows, huge fields, thousands of columns, empty and repeated headers,
blank lines between rows."""

from __future__ import annotations

import codecs
from dataclasses import dataclass, field

from hypothesis import strategies as st

INVALID_MARKER = "\u2603"  # replaced by an undecodable byte after encoding
SPECIALS = [",", ";", "\t", "|", '"', "'", "\n", "\r", " ", "\\", "\x00", "\ufeff"]

_text = st.text(
    alphabet=st.one_of(
        st.characters(codec="utf-8", exclude_categories=("Cs",), exclude_characters=INVALID_MARKER),
        st.sampled_from(SPECIALS),
    ),
    max_size=24,
)
field_text = st.one_of(_text, st.tuples(_text, _text).map("\r\n".join))  # CRLF inside, too


@dataclass
class CsvDocument:
    data: bytes
    delimiter: str
    header: list[str]
    rows: dict[int, list[str]] = field(default_factory=dict)  # row number -> fields
    ragged: list[int] = field(default_factory=list)
    undecodable: list[int] = field(default_factory=list)
    lines: dict[int, int] = field(default_factory=dict)  # row number -> line it starts on
    blank_lines: int = 0  # between rows


def line_breaks(data: bytes) -> int:
    """CRLF, LF and a lone CR: one line break each."""
    return data.count(b"\n") + data.count(b"\r") - data.count(b"\r\n")


def _encode(
    record: list[str], delimiter: str, terminator: str, quoted: list[bool] | None = None
) -> bytes:
    """One record; fields holding the delimiter, a quote, \r or \n are always quoted, and
    `quoted[i]` quotes field i even when it need not be (random quoting)."""
    forced = quoted or [False] * len(record)
    if len(record) == 1 and record[0] == "":
        forced = [True]  # a lone empty field would be a blank line, not a row
    fields = []
    for value, force in zip(record, forced, strict=True):
        if force or any(c in value for c in (delimiter, '"', "\r", "\n")):
            value = '"' + value.replace('"', '""') + '"'
        fields.append(value)
    return (delimiter.join(fields) + terminator).encode("utf-8")


@st.composite
def csv_documents(draw: st.DrawFn) -> CsvDocument:
    width = draw(st.one_of(st.integers(1, 8), st.just(2000)))
    delimiter = draw(st.sampled_from([",", ";", "\t", "|"]))
    # Header names: sometimes empty, sometimes repeated.
    header = [
        draw(
            st.one_of(
                st.just(""), st.just("name"), st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True)
            )
        )
        for _ in range(min(width, 8))
    ] + [f"c{i}" for i in range(8, width)]
    # One or two line terminators per file: LF, CRLF and CR, mixed.
    terminators = draw(st.lists(st.sampled_from(["\n", "\r\n", "\r"]), min_size=1, max_size=2))
    quoting = draw(st.sampled_from(["minimal", "random", "all"]))

    def quotes(n: int) -> list[bool]:
        if quoting == "minimal":
            return [False] * n
        return (
            [True] * n
            if quoting == "all"
            else draw(st.lists(st.booleans(), min_size=n, max_size=n))
        )

    document = CsvDocument(b"", delimiter, header)
    chunks = [codecs.BOM_UTF8] if draw(st.booleans()) else []
    chunks.append(_encode(header, delimiter, terminators[0]))
    blank_lines = draw(st.booleans())
    count = draw(st.integers(0, 25 if width < 100 else 3))
    for number in range(1, count + 1):
        if blank_lines and draw(st.integers(0, 4)) == 0:
            # LF after a CR would make a CRLF, not a blank line.
            chunks.append(b"\r\n" if chunks[-1].endswith(b"\r") else b"\n")
            document.blank_lines += 1
        # Each chunk is whole lines: the row starts on the line after the breaks so far.
        document.lines[number] = 1 + sum(line_breaks(c) for c in chunks)
        kind = draw(st.sampled_from(["ok", "ok", "ok", "ragged", "undecodable", "huge"]))
        terminator = draw(st.sampled_from(terminators))
        if kind == "ragged":
            size = draw(st.integers(1, width + 3).filter(lambda n: n != width))
            record = [draw(field_text) for _ in range(size)]
            document.ragged.append(number)
            chunks.append(_encode(record, delimiter, terminator, quotes(size)))
            continue
        record = [draw(field_text) if width < 100 else "v" for _ in range(width)]
        if kind == "huge":
            record[0] = "x" * draw(st.integers(70_000, 300_000))
        if kind == "undecodable":
            column = draw(st.integers(0, width - 1))
            record[column] = record[column] + INVALID_MARKER
            encoded = _encode(record, delimiter, terminator, quotes(width))
            chunks.append(encoded.replace(INVALID_MARKER.encode(), b"\xff"))
            document.undecodable.append(number)
            continue
        document.rows[number] = record
        chunks.append(_encode(record, delimiter, terminator, quotes(width)))
    document.data = b"".join(chunks)
    return document
