"""Sniffing a CSV file's dialect and header from its first bytes (pure functions)."""

from __future__ import annotations

import codecs
import csv
import io
import re
from dataclasses import dataclass

from flowforge.errors import InvalidArgument
from services.bronze.options import CsvOptions

SAMPLE_BYTES = 256 * 1024
_CANDIDATE_DELIMITERS = ",;\t|"
_DATA_LIKE = re.compile(
    r"""^\s*(
        [-+]?(\d+([.,]\d*)?|[.,]\d+)([eE][-+]?\d+)?%?   # numbers
      | \d{1,4}[-/.]\d{1,2}[-/.]\d{1,4}([ T].*)?        # dates and timestamps
      | [^@\s]+@[^@\s]+                               # emails
      | true|false
    )\s*$""",
    re.VERBOSE | re.IGNORECASE,
)
_BOMS = [
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
]


@dataclass(frozen=True)
class Dialect:
    delimiter: str
    quote: str
    escape: str
    header: bool
    encoding: str  # a Python codec name
    bom_bytes: int  # bytes to skip at the start of the file
    line_terminator: str  # "LF", "CRLF", "CR" or ""
    sniffed: bool


def detect_bom(sample: bytes) -> tuple[str | None, int]:
    for bom, encoding in _BOMS:
        if sample.startswith(bom):
            return encoding, len(bom)
    return None, 0


def detect_line_terminator(text: str) -> str:
    index = next((i for i, ch in enumerate(text) if ch in "\r\n"), -1)
    if index < 0:
        return ""
    if text[index] == "\n":
        return "LF"
    return "CRLF" if text[index + 1 : index + 2] == "\n" else "CR"


def decode_sample(sample: bytes, encoding: str, complete: bool) -> str:
    """Decodes a sample that may end mid-character; undecodable bytes become U+FFFD."""
    decoder = codecs.getincrementaldecoder(encoding)(errors="replace")
    try:
        return decoder.decode(sample, final=complete)
    except UnicodeError as exc:  # e.g. "UTF-16 stream does not start with BOM"
        raise InvalidArgument(f"the file cannot be read as {encoding}: {exc}") from None


def sniff_delimiter(text: str, quote: str) -> str:
    lines = [line for line in text.splitlines()[:50] if line.strip()]
    if not lines:
        return ","
    try:
        found = csv.Sniffer().sniff("\n".join(lines), delimiters=_CANDIDATE_DELIMITERS).delimiter
        if found in _CANDIDATE_DELIMITERS:
            return found
    except csv.Error:
        pass
    # Fall back to the candidate that appears most consistently outside quotes.
    best, best_score = ",", 0
    for candidate in _CANDIDATE_DELIMITERS:
        counts = [_count_outside_quotes(line, candidate, quote) for line in lines]
        score = min(counts) if counts else 0
        if score > best_score:
            best, best_score = candidate, score
    return best


def _count_outside_quotes(line: str, char: str, quote: str) -> int:
    count, quoted = 0, False
    for ch in line:
        if ch == quote:
            quoted = not quoted
        elif ch == char and not quoted:
            count += 1
    return count


def first_records(
    text: str, delimiter: str, quote: str, escape: str, n: int = 20
) -> list[list[str]]:
    reader = csv.reader(
        io.StringIO(text, newline=""),
        delimiter=delimiter,
        quotechar=quote,
        escapechar=escape or None,
        doublequote=True,
        strict=False,
    )
    records: list[list[str]] = []
    try:
        for record in reader:
            if record:
                records.append(record)
            if len(records) >= n:
                break
    except csv.Error:
        pass
    return records


def looks_like_header(first: list[str]) -> bool:
    """A first record is a header unless one of its values looks like data."""
    return bool(first) and not any(_DATA_LIKE.match(value) for value in first if value)


def sniff(sample: bytes, options: CsvOptions, complete: bool) -> tuple[Dialect, list[list[str]]]:
    """The dialect of a file and its first records, from the file's first bytes."""
    bom_encoding, bom_bytes = detect_bom(sample)
    encoding = options.encoding or bom_encoding or "utf-8"
    if options.encoding and bom_encoding and options.encoding.replace("_", "-") != bom_encoding:
        bom_bytes = 0  # the caller chose an encoding; keep the bytes as data
    text = decode_sample(sample[bom_bytes:], encoding, complete)
    delimiter = options.delimiter or sniff_delimiter(text, options.quote)
    records = first_records(text, delimiter, options.quote, options.escape)
    header = (
        options.header
        if options.header is not None
        else looks_like_header(records[0] if records else [])
    )
    dialect = Dialect(
        delimiter=delimiter,
        quote=options.quote,
        escape=options.escape,
        header=header,
        encoding=encoding,
        bom_bytes=bom_bytes,
        line_terminator=detect_line_terminator(text),
        sniffed=not options.delimiter or options.header is None,
    )
    return dialect, records
