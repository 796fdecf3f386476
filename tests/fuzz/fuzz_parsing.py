"""atheris fuzz target over bronze's CSV reading.

Run: python tests/fuzz/fuzz_parsing.py -max_total_time=20. Any exception escaping the
code under test other than a clean InvalidArgument is a finding; so is a row both kept
and rejected.
"""

from __future__ import annotations

import contextlib
import io
import sys
from datetime import UTC, datetime

import atheris

from flowforge.errors import InvalidArgument

with atheris.instrument_imports(include=["services.bronze"]):
    from services.bronze.convert import BronzeBatch, bronze_batches
    from services.bronze.options import CsvOptions
    from services.bronze.parse import Restart
    from services.bronze.sniff import SAMPLE_BYTES, sniff
    from services.bronze.transform import Audit, unique_column_names

AUDIT = Audit(datetime(2026, 1, 1, tzinfo=UTC), "landing/w/j/f.csv", "e", "r", "w", "j")
DELIMITERS = ["", ",", ";", "\t", "|"]
ENCODINGS = ["", "latin-1", "utf-16"]


def read_csv(data: bytes, options: CsvOptions, block: int) -> None:
    dialect, records = sniff(data[:SAMPLE_BYTES], options, complete=len(data) <= SAMPLE_BYTES)
    if not records:
        return
    names, _ = unique_column_names(records[0])
    kept: set[int] = set()
    rejected: set[int] = set()
    for batch in bronze_batches(
        lambda: contextlib.nullcontext(io.BytesIO(data)), dialect, names, block, AUDIT, ()
    ):
        if isinstance(batch, Restart):
            kept, rejected = set(), set()
            continue
        assert isinstance(batch, BronzeBatch)
        numbers = set(batch.frame["_row_number"].to_list())
        assert not numbers & kept, "a row number was kept twice"
        kept |= numbers
        rejected |= {r.row_number for r in batch.rejects}
    assert not kept & rejected, "a row was both kept and rejected"


def test_one_input(data: bytes) -> None:
    provider = atheris.FuzzedDataProvider(data)
    delimiter = DELIMITERS[provider.ConsumeIntInRange(0, len(DELIMITERS) - 1)]
    encoding = ENCODINGS[provider.ConsumeIntInRange(0, len(ENCODINGS) - 1)]
    header = [None, True, False][provider.ConsumeIntInRange(0, 2)]
    block = [512, 4096, 1 << 20][provider.ConsumeIntInRange(0, 2)]
    body = provider.ConsumeBytes(provider.remaining_bytes())
    options = CsvOptions.validated(delimiter=delimiter, header=header, encoding=encoding)
    try:
        read_csv(body, options, block)
    except InvalidArgument as refused:  # a clear refusal is a correct answer
        assert "cannot be read as" in refused.message or "not readable" in refused.message


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
