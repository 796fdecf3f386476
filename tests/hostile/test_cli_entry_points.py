"""The CLI refuses path-like names with a clear error naming the argument, exit code 1,
and writes nothing. Values from tests/hostile/path_inputs.py."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.main import app
from flowforge.settings import Settings, get_settings
from flowforge.storage import ObjectStore
from tests.hostile.path_inputs import cases


@pytest.fixture(scope="module")
def cli_env(settings: Settings) -> Iterator[dict[str, str]]:
    secret = settings.s3_secret_access_key
    env = {
        "FLOWFORGE_S3_ENDPOINT_URL": settings.s3_endpoint_url,
        "FLOWFORGE_S3_BUCKET": settings.s3_bucket,
        "FLOWFORGE_S3_ACCESS_KEY_ID": settings.s3_access_key_id,
        "FLOWFORGE_S3_SECRET_ACCESS_KEY": secret.get_secret_value() if secret else "",
        "FLOWFORGE_LOG_FORMAT": "text",
    }
    with pytest.MonkeyPatch.context() as patch:
        for key, value in env.items():
            patch.setenv(key, value)
        get_settings.cache_clear()
        yield env
    get_settings.cache_clear()


@pytest.fixture(scope="module")
def countries(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("dims") / "countries.csv"
    path.write_text("code,name\nFI,Finland\n")
    return path


@pytest.mark.parametrize(
    "name", [pytest.param(v, id=label) for _, label, v in cases(["dimension"])]
)
def test_dimensions_upload_refuses(
    cli_env: dict[str, str], countries: Path, store: ObjectStore, name: str
) -> None:
    result = CliRunner().invoke(app, ["dimensions", "upload", "--", name, str(countries)])
    assert result.exit_code == 1, result.output
    # Refused before the object store is even contacted (no start-up probe logged).
    assert result.output.startswith("error: dimension "), result.output
    assert "Traceback" not in result.output
    if name and len(name) < 200:
        assert not [o.key for o in store.list(f"dimensions/{name}")]
