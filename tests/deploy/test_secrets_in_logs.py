"""Secrets stay out of logs even with every debug switch on: FlowForge's own loggers,
botocore's request logging and Prefect's client secrets from the environment."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
from pydantic import SecretStr

from flowforge.embedded import EmbeddedS3
from flowforge.errors import FlowForgeError
from flowforge.logs import MASK, configure_logging
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


def botocore_lines(text: str, level: str | None = None) -> list[dict[str, str]]:
    lines = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    return [
        line
        for line in lines
        if line["logger"].startswith("botocore") and level in (None, line["level"])
    ]


def test_botocore_stays_at_info_with_flowforge_log_level_debug(
    settings: Settings, captured: io.StringIO, monkeypatch: pytest.MonkeyPatch
) -> None:
    """FLOWFORGE_LOG_LEVEL=DEBUG (from the environment, as in a container) turns FlowForge's
    loggers to DEBUG, not botocore's: its DEBUG lines (headers, signing) never show."""
    monkeypatch.setenv("FLOWFORGE_LOG_LEVEL", "DEBUG")
    monkeypatch.setenv("FLOWFORGE_LOG_FORMAT", "json")
    fields = settings.model_dump(exclude={"log_level", "log_format"})
    debug = Settings(_env_file=None, **fields)  # type: ignore[call-arg]
    assert debug.log_level == "DEBUG"
    configure_logging(debug, stream=captured)
    logging.getLogger("flowforge.canary").debug("FlowForge's own debug line")
    store = ObjectStore(debug)
    store.put_bytes("canary/capped.txt", b"hello")
    assert store.get_bytes("canary/capped.txt") == b"hello"
    text = captured.getvalue()
    assert "FlowForge's own debug line" in text
    assert not botocore_lines(text, "debug"), botocore_lines(text)[:3]


def test_botocore_debug_lines_carrying_the_secret_are_masked(
    s3: EmbeddedS3, settings: Settings, captured: io.StringIO
) -> None:
    """Someone turns botocore's request logging on anyway: a request whose key and body
    hold the secret (botocore logs both at DEBUG) shows it masked."""
    configure_logging(
        settings.model_copy(update={"log_level": "DEBUG", "log_format": "json"}), stream=captured
    )
    logging.getLogger("botocore").setLevel(logging.DEBUG)
    store = ObjectStore(settings)
    key = f"canary/{s3.secret_key}.txt"
    store.put_bytes(key, f"body {s3.secret_key}".encode())
    assert store.get_bytes(key) == f"body {s3.secret_key}".encode()
    text = captured.getvalue()
    assert s3.secret_key not in text
    masked = [line for line in botocore_lines(text, "debug") if MASK in line["msg"]]
    assert masked, "botocore logged no request with the secret in it"


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
