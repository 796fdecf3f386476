"""Secrets stay out of logs even with every debug switch on: FlowForge's own loggers,
botocore's request logging and Prefect's client secrets from the environment."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest
from pydantic import SecretStr

from flowforge.embedded import EmbeddedS3
from flowforge.errors import FlowForgeError
from flowforge.logs import configure_logging
from flowforge.settings import Settings
from flowforge.storage import ObjectStore


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    yield stream
    for handler in [h for h in root.handlers if h not in handlers]:
        root.removeHandler(handler)
    root.setLevel(level)
    for name in ("botocore", "boto3", "urllib3", "websockets"):
        logging.getLogger(name).setLevel(logging.NOTSET)


def test_botocore_debug_logging_shows_no_secret(
    s3: EmbeddedS3, settings: Settings, captured: io.StringIO
) -> None:
    configure_logging(settings.model_copy(update={"log_level": "DEBUG"}), stream=captured)
    # Someone turns botocore's request logging on anyway (headers, bodies, signing steps).
    logging.getLogger("botocore").setLevel(logging.DEBUG)
    store = ObjectStore(settings)
    store.put_bytes("canary/object.txt", b"hello")
    assert store.get_bytes("canary/object.txt") == b"hello"
    text = captured.getvalue()
    assert "botocore" in text  # the debug lines are there ...
    assert s3.secret_key not in text  # ... without the secret


def test_a_wrong_secret_fails_without_showing_it(settings: Settings, captured: io.StringIO) -> None:
    canary = "CANARY-wrong-secret-0123456789"
    wrong = settings.model_copy(
        update={"s3_secret_access_key": SecretStr(canary), "log_level": "DEBUG"}
    )
    configure_logging(wrong, stream=captured)
    logging.getLogger("botocore").setLevel(logging.DEBUG)
    with pytest.raises(FlowForgeError) as info:
        ObjectStore(wrong).get_bytes("canary/object.txt")
    assert canary not in str(info.value) and canary not in repr(info.value)
    assert canary not in captured.getvalue()
    assert canary not in repr(wrong) and canary not in str(wrong.model_dump())


def test_prefect_client_secrets_from_the_environment_are_masked(
    settings: Settings, captured: io.StringIO, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PREFECT_API_KEY", "pnu_CANARYprefectkey")
    monkeypatch.setenv("PREFECT_API_AUTH_STRING", "admin:CANARY-auth")
    configure_logging(settings.model_copy(update={"log_level": "DEBUG"}), stream=captured)
    logging.getLogger("flowforge.test").debug(
        "key %s auth admin:CANARY-auth", "pnu_CANARYprefectkey"
    )
    logging.getLogger("websockets.client").debug('> TEXT \'{"token": "admin:CANARY-auth"}\'')
    text = captured.getvalue()
    assert "CANARY" not in text and "***" in text
