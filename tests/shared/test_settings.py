"""Settings: names operators rely on, .env.example in step, secrets kept secret."""

from __future__ import annotations

from pathlib import Path

from pydantic import SecretStr

from flowforge import envfile
from flowforge.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def test_object_store_keys_have_their_documented_names(monkeypatch) -> None:
    env = {
        "FLOWFORGE_S3_ENDPOINT_URL": "http://s3.example:8333",
        "FLOWFORGE_S3_REGION": "eu-west-1",
        "FLOWFORGE_S3_BUCKET": "data",
        "FLOWFORGE_S3_ACCESS_KEY_ID": "AKIA123",
        "FLOWFORGE_S3_SECRET_ACCESS_KEY": "very-secret-value",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.s3_endpoint_url == "http://s3.example:8333"
    assert (settings.s3_region, settings.s3_bucket) == ("eu-west-1", "data")
    assert isinstance(settings.s3_secret_access_key, SecretStr)
    assert "very-secret-value" not in repr(settings) + str(settings.model_dump())
    assert Settings(_env_file=None).s3_bucket == "data"  # type: ignore[call-arg]


def test_default_bucket(monkeypatch) -> None:
    monkeypatch.delenv("FLOWFORGE_S3_BUCKET", raising=False)
    assert Settings(_env_file=None).s3_bucket == "flowforge-data"  # type: ignore[call-arg]


def test_env_example_lists_every_setting() -> None:
    assert (ROOT / ".env.example").read_text() == envfile.render(), (
        ".env.example is stale: run `python -m flowforge.envfile`"
    )


def test_dotenv_file_is_read(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("FLOWFORGE_S3_BUCKET", raising=False)
    env = tmp_path / ".env"
    env.write_text("FLOWFORGE_S3_BUCKET=from-dotenv\n")
    assert Settings(_env_file=env).s3_bucket == "from-dotenv"  # type: ignore[call-arg]
