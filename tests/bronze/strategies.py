"""Hypothesis strategies for hostile CSV files whose correct reading is known by construction."""

from __future__ import annotations

import codecs
import csv
import io
from dataclasses import dataclass, field

from hypothesis import strategies as st

INVALID_MARKER = "\u2603"  # replaced by an undecodable byte after encoding
SPECIALS = [",", ";", "\t", "|", '"', "'", "\n", "\r", " ", "\\", "\x00", "\ufeff"]

field_text = st.text(
    alphabet=st.one_of(
        st.characters(codec="utf-8", exclude_categories=("Cs",), exclude_characters=INVALID_MARKER),
        st.sampled_from(SPECIALS),
    ),
    max_size=24,
)


@dataclass
class CsvDocument:
    data: bytes
    delimiter: str
    header: list[str]
    rows: dict[int, list[str]] = field(default_factory=dict)  # row number -> fields
    ragged: list[int] = field(default_factory=list)
    undecodable: list[int] = field(default_factory=list)


def _encode(record: list[str], delimiter: str, terminator: str) -> bytes:
    # With "\r\n" as the writer's terminator, fields holding \r or \n are always quoted.
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=delimiter, lineterminator="\r\n").writerow(record)
    return (buffer.getvalue()[:-2] + terminator).encode("utf-8")


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
    terminators = draw(st.lists(st.sampled_from(["\n", "\r\n"]), min_size=1, max_size=2))
    document = CsvDocument(b"", delimiter, header)
    chunks = [codecs.BOM_UTF8] if draw(st.booleans()) else []
    chunks.append(_encode(header, delimiter, terminators[0]))
    count = draw(st.integers(0, 25 if width < 100 else 3))
    for number in range(1, count + 1):
        kind = draw(st.sampled_from(["ok", "ok", "ok", "ragged", "undecodable", "huge"]))
        terminator = draw(st.sampled_from(terminators))
        if kind == "ragged":
            size = draw(st.integers(1, width + 3).filter(lambda n: n != width))
            record = [draw(field_text) for _ in range(size)]
            if size == 1 and record == [""]:
                record = ["x"]  # a lone empty field would be a blank line, not a row
            document.ragged.append(number)
            chunks.append(_encode(record, delimiter, terminator))
            continue
        record = [draw(field_text) if width < 100 else "v" for _ in range(width)]
        if kind == "huge":
            record[0] = "x" * draw(st.integers(70_000, 300_000))
        if kind == "undecodable":
            column = draw(st.integers(0, width - 1))
            record[column] = record[column] + INVALID_MARKER
            encoded = _encode(record, delimiter, terminator)
            chunks.append(encoded.replace(INVALID_MARKER.encode(), b"\xff"))
            document.undecodable.append(number)
            continue
        if width == 1 and record == [""]:
            record = [""]  # csv.writer writes "" so the row is not blank
        document.rows[number] = record
        chunks.append(_encode(record, delimiter, terminator))
    document.data = b"".join(chunks)
    return document
