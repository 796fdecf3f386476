"""Dimension tables: upload (CSV or Parquet) as a Delta table, versions, list, the CLI."""

from __future__ import annotations

import csv
import hashlib
import io
import uuid
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from cli.main import app
from flowforge import tables
from flowforge.dimensions import list_dimensions, upload_dimension
from flowforge.errors import InvalidArgument
from flowforge.settings import Settings, get_settings
from flowforge.storage import ObjectStore
from flowforge.tables import TableRef


def unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


def stored(store: ObjectStore, name: str, version: int | None = None) -> pl.DataFrame:
    """The dimension table's rows, read by deltalake as any reader would."""
    uri = f"s3://{store.bucket}/dimensions/{name}"
    options = tables.polars_options(store.settings)
    return pl.read_delta(uri, version=version, storage_options=options)


def test_csv_is_typed_but_codes_keep_their_text(store: ObjectStore) -> None:
    name = unique("zones")
    csv = "code,zip,name,rate,since\n01,02139,Zoë,1.5,2024-01-02\n10,10115,Łódź,2,2023-05-06\n"
    info = upload_dimension(store, name, csv.encode(), "zones.csv")
    frame = stored(store, name)
    assert frame.to_dicts()[0] == {
        "code": "01",
        "zip": "02139",
        "name": "Zoë",
        "rate": 1.5,
        "since": pl.Series(["2024-01-02"]).str.to_date()[0],
    }
    assert info.rows == 2 and info.columns[0] == ("code", "String")
    assert dict(info.columns)["rate"] == "Float64"


def test_numbers_that_would_not_read_back_keep_their_text_with_a_warning(
    store: ObjectStore,
) -> None:
    """The same inference as silver without a spec (flowforge.casting.infer_types)."""
    rows = [
        ["zip", "phone", "isbn", "product", "population", "share"],
        ["00501", "0049301234", "0306406152", "007", "0", "0.25"],
        ["01001", "+1 555 0100", "9783161484100", "0042A", "28438", "1.50"],
        ["10001", "4930123456", "0345391802", "042", "21102", "3"],
    ]
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    name = unique("places")
    info = upload_dimension(store, name, buffer.getvalue().encode(), "places.csv")
    frame = stored(store, name)
    columns = list(zip(*rows[1:], strict=True))
    for header, values in zip(rows[0][:4], columns[:4], strict=True):
        assert frame[header].to_list() == list(values)  # the text, as the csv module reads it
    assert frame["population"].to_list() == [int(v) for v in columns[4]]
    assert frame["share"].to_list() == [float(v) for v in columns[5]]
    assert info.warnings == [
        "column 'zip' kept as text: '00501' would lose its leading zero as integer",
        "column 'isbn' kept as text: '0306406152' would lose its leading zero as integer",
    ]  # phone and product hold values that are no number at all: text, nothing to say


def test_a_new_upload_replaces_the_old_version_atomically(store: ObjectStore) -> None:
    name = unique("rates")
    buffer = io.BytesIO()
    pl.DataFrame({"currency": ["EUR"], "rate": [1.0]}).write_parquet(buffer)
    first = upload_dimension(store, name, buffer.getvalue(), "rates.parquet")
    second = upload_dimension(store, name, b"currency,rate\nEUR,1.0\nUSD,1.1\n", "rates.csv")
    assert (first.version, second.version) == (0, 1)  # one commit per upload
    assert stored(store, name)["currency"].to_list() == ["EUR", "USD"]
    assert stored(store, name, version=first.version)["currency"].to_list() == ["EUR"]
    assert first.run_id != second.run_id
    listed = {d.name: d for d in list_dimensions(store)}
    assert listed[name].rows == 2 and listed[name].source == "rates.csv"
    assert (listed[name].version, listed[name].run_id) == (1, second.run_id)
    table = tables.require(store.settings, TableRef.dimension(name), "dimension")
    assert (
        tables.history(table)[0].inputs["sha256"]
        == hashlib.sha256(b"currency,rate\nEUR,1.0\nUSD,1.1\n").hexdigest()
    )


def test_parquet_types_delta_cannot_hold_are_widened_exactly(store: ObjectStore) -> None:
    name = unique("codes")
    frame = pl.DataFrame(
        {
            "small": pl.Series([200, 7], dtype=pl.UInt8),
            "big": pl.Series([2**64 - 1, 0], dtype=pl.UInt64),
            "nothing": pl.Series([None, None], dtype=pl.Null),
        }
    )
    buffer = io.BytesIO()
    frame.write_parquet(buffer)
    info = upload_dimension(store, name, buffer.getvalue(), "codes.parquet")
    assert dict(info.columns) == {
        "small": "Int16",
        "big": "Decimal(precision=20, scale=0)",
        "nothing": "String",
    }
    back = stored(store, name)
    assert back["small"].to_list() == frame["small"].to_list()
    assert [int(v) for v in back["big"].to_list()] == frame["big"].to_list()
    assert back["nothing"].to_list() == [None, None]


def test_a_listing_shows_only_tables(store: ObjectStore) -> None:
    """A folder under dimensions/ without a _delta_log/ (an old manifest, stray files) is
    not a dimension."""
    name = unique("stray")
    store.put_bytes(f"dimensions/{name}/_manifest.json", b"{}")
    assert name not in {d.name for d in list_dimensions(store)}


@pytest.mark.parametrize(
    ("name", "data", "filename", "message"),
    [
        ("../etc", b"a\n1\n", "x.csv", "dimension '../etc' is not a valid ID"),
        ("ok", b"a\n1\n", "x.xlsx", "must end with .csv or .parquet"),
        ("ok", b"not parquet", "x.parquet", "is not readable parquet"),
        ("ok", b"", "x.csv", "x.csv"),
        ("ok", b"a,b\n", "x.csv", "'x.csv' has no rows"),
    ],
)
def test_bad_uploads_are_refused(
    store: ObjectStore, name: str, data: bytes, filename: str, message: str
) -> None:
    with pytest.raises(InvalidArgument) as caught:
        upload_dimension(store, name, data, filename)
    assert message in caught.value.message


def test_cli_uploads_and_lists(
    settings: Settings, store: ObjectStore, tmp_path: Path, monkeypatch
) -> None:
    env = {
        "FLOWFORGE_S3_ENDPOINT_URL": settings.s3_endpoint_url,
        "FLOWFORGE_S3_BUCKET": settings.s3_bucket,
        "FLOWFORGE_S3_ACCESS_KEY_ID": settings.s3_access_key_id,
        "FLOWFORGE_S3_SECRET_ACCESS_KEY": settings.s3_secret_access_key.get_secret_value(),  # type: ignore[union-attr]
        "FLOWFORGE_LOG_FORMAT": "text",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    name = unique("countries")
    source = tmp_path / "countries.csv"
    source.write_text("code,name,dial\nFI,Finland,+358\nJP,Japan,+81\n")
    runner = CliRunner()
    try:
        uploaded = runner.invoke(app, ["dimensions", "upload", name, str(source)])
        listed = runner.invoke(app, ["dimensions", "list"])
        refused = runner.invoke(app, ["dimensions", "upload", "bad/name", str(source)])
    finally:
        get_settings.cache_clear()
    assert uploaded.exit_code == 0, uploaded.output
    assert f"dimension {name}: 2 rows" in uploaded.output
    assert "warning: column 'dial' kept as text: '+358' would lose its '+' sign" in (
        uploaded.output
    )
    assert any(line.startswith(f"{name}\tversion 0\t2 rows") for line in listed.output.splitlines())
    assert refused.exit_code == 1
    assert "not a valid ID" in refused.output
    assert stored(store, name)["name"].to_list() == ["Finland", "Japan"]
