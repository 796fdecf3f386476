"""Dimension tables over HTTP: upload, list, replace; a refused upload keeps the old one."""

from __future__ import annotations

import io

import polars as pl

from tests.api.conftest import UPLOAD_MAX_MB, Api
from tests.api.test_errors import error_of


def put(api: Api, name: str, filename: str, data: bytes) -> dict:  # type: ignore[type-arg]
    response = api.client.put(f"/api/dimensions/{name}", files={"file": (filename, data)})
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def test_upload_list_and_replace_a_dimension(api: Api) -> None:
    first = put(api, "currencies", "currencies.csv", b"code,rate,digits\nEUR,1.0,007\nUSD,1.1,2\n")
    assert (first["name"], first["rows"], first["source"]) == ("currencies", 2, "currencies.csv")
    assert first["columns"] == [["code", "String"], ["rate", "Float64"], ["digits", "String"]]
    listed = {d["name"]: d for d in api.client.get("/api/dimensions").json()}
    assert listed["currencies"]["run_id"] == first["run_id"]
    assert listed["currencies"]["version"] == first["version"]

    buffer = io.BytesIO()
    pl.DataFrame({"code": ["EUR", "USD", "GBP"], "rate": [1.0, 1.1, 0.9]}).write_parquet(buffer)
    second = put(api, "currencies", "rates.parquet", buffer.getvalue())
    assert (second["rows"], second["source"]) == (3, "rates.parquet")
    assert second["run_id"] != first["run_id"]
    assert second["version"] == first["version"] + 1  # one commit per upload
    listed = {d["name"]: d for d in api.client.get("/api/dimensions").json()}
    assert (listed["currencies"]["run_id"], listed["currencies"]["version"]) == (
        second["run_id"],
        second["version"],
    )


def test_refused_uploads_name_the_file_and_keep_the_committed_version(api: Api) -> None:
    kept = put(api, "regions", "regions.csv", b"region\nnorth\nsouth\n")
    big = b"region\n" + b"x" * ((UPLOAD_MAX_MB << 20) + 10)
    message = error_of(
        api.client.put("/api/dimensions/regions", files={"file": ("big.csv", big)}), 413
    )
    assert "'big.csv'" in message and f"{UPLOAD_MAX_MB} MB" in message
    broken = api.client.put(
        "/api/dimensions/regions", files={"file": ("regions.parquet", b"PAR1 not parquet")}
    )
    assert "'regions.parquet' is not readable parquet" in error_of(broken, 400)
    wrong_kind = api.client.put("/api/dimensions/regions", files={"file": ("r.txt", b"a\n")})
    assert "'r.txt'" in error_of(wrong_kind, 415)
    listed = {d["name"]: d for d in api.client.get("/api/dimensions").json()}
    assert listed["regions"]["run_id"] == kept["run_id"] and listed["regions"]["rows"] == 2
    assert listed["regions"]["version"] == kept["version"]
    assert api.client.get("/healthz").status_code == 200


def test_an_invalid_dimension_name_is_400_naming_it(api: Api) -> None:
    before = api.client.get("/api/dimensions").json()
    for name in ("bad name!", "-rf", "a.b", "x" * 65):
        response = api.client.put(f"/api/dimensions/{name}", files={"file": ("d.csv", b"a\n1\n")})
        message = error_of(response, 400)
        assert f"name {name!r} is not a valid ID" in message, message
    assert api.client.get("/api/dimensions").json() == before  # nothing stored
