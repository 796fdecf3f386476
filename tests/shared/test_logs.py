"""Logging: one JSON object per line, even for exceptions Python can only report; every
secret the settings hold masked, whichever logger the record comes through."""

from __future__ import annotations

import gc
import io
import json
import logging
import secrets
from collections.abc import Iterator

import pytest
from pydantic import SecretStr

from flowforge.logs import _CHATTY, MASK, SecretMasker, configure_logging, secret_values
from flowforge.settings import Settings


def test_an_exception_python_can_only_report_is_one_json_line() -> None:
    stream = io.StringIO()
    configure_logging(Settings(_env_file=None, log_format="json"), stream)  # type: ignore[call-arg]
    try:

        class Finaliser:  # like a C library calling back into Python, it cannot raise
            def __del__(self) -> None:
                raise ValueError("callback failed on row 7")

        Finaliser()
        gc.collect()
        lines = [json.loads(line) for line in stream.getvalue().splitlines()]
        assert [line["msg"] for line in lines] == ["exception ignored"]
        assert lines[0]["error"] == "ValueError: callback failed on row 7"
        assert "Finaliser.__del__" in lines[0]["where"]
        assert "Traceback" not in stream.getvalue()
    finally:
        for handler in [h for h in logging.getLogger().handlers if getattr(h, "_flowforge", 0)]:
            logging.getLogger().removeHandler(handler)


def secret_fields() -> list[str]:
    return [n for n, f in Settings.model_fields.items() if "SecretStr" in str(f.annotation)]


@pytest.fixture
def canaries() -> dict[str, str]:
    """A recognisable value for every SecretStr setting (new ones included)."""
    tag = secrets.token_hex(6)
    return {name: f"CANARY-{name}-{tag}" for name in secret_fields()}


@pytest.fixture
def logged(canaries: dict[str, str], request: pytest.FixtureRequest) -> Iterator[io.StringIO]:
    """FlowForge's logging at DEBUG, every secret set to its canary, into a string."""
    stream = io.StringIO()
    fmt = getattr(request, "param", "json")
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        log_level="DEBUG",
        log_format=fmt,
        **{name: SecretStr(value) for name, value in canaries.items()},
    )
    root = logging.getLogger()
    level = root.level
    configure_logging(settings, stream)
    yield stream
    for handler in [h for h in root.handlers if getattr(h, "_flowforge", 0)]:
        root.removeHandler(handler)
    root.setLevel(level)
    for name in _CHATTY:
        logging.getLogger(name).setLevel(logging.NOTSET)


def test_secret_values_holds_every_secret_setting(canaries: dict[str, str]) -> None:
    assert {"s3_secret_access_key", "grpc_token", "database_url", "api_token"} <= set(canaries)
    settings = Settings(_env_file=None, **{n: SecretStr(v) for n, v in canaries.items()})  # type: ignore[call-arg]
    assert set(canaries.values()) <= set(secret_values(settings))


@pytest.mark.parametrize("logged", ["json", "text"], indirect=True)
def test_every_secret_is_masked_in_flowforge_loggers(
    canaries: dict[str, str], logged: io.StringIO
) -> None:
    logger = logging.getLogger("flowforge.canary")
    for name, value in canaries.items():
        logger.debug("%s is %s", name, value)  # in the arguments
        logger.info(f"{name} is {value}")  # in the message
        logger.warning("with an extra", extra={"detail": f"<{value}>"})  # in a field
        try:
            raise ValueError(f"cannot parse {value!r}")
        except ValueError:
            logger.exception("in a traceback")
    text = logged.getvalue()
    assert len(text.splitlines()) >= 4 * len(canaries)  # everything got logged ...
    assert "CANARY" not in text  # ... masked
    assert text.count(MASK) >= 4 * len(canaries)
    assert "in a traceback" in text and "ValueError: cannot parse '***'" in text


def test_botocore_stays_at_info_when_flowforge_logs_debug(logged: io.StringIO) -> None:
    """botocore logs request headers and signing steps at DEBUG: never below INFO."""
    for name in _CHATTY:
        assert logging.getLogger(name).getEffectiveLevel() == logging.INFO, name
    logging.getLogger("botocore.auth").debug("StringToSign: a debug line")
    logging.getLogger("botocore.endpoint").info("an info line")
    text = logged.getvalue()
    assert "StringToSign" not in text and "an info line" in text


def test_botocore_debug_lines_are_masked_when_turned_on_anyway(
    canaries: dict[str, str], logged: io.StringIO
) -> None:
    logging.getLogger("botocore").setLevel(logging.DEBUG)
    for value in canaries.values():
        logging.getLogger("botocore.auth").debug("Calculating signature using %s", value)
        logging.getLogger("botocore.endpoint").debug(
            "Making request with params: %r", {"headers": {"x-secret": value}}
        )
    text = logged.getvalue()
    assert "Calculating signature" in text and "botocore.endpoint" in text
    assert "CANARY" not in text and MASK in text


def test_short_values_are_not_masked() -> None:
    """A one- to three-letter value would mask ordinary words all over the logs."""
    masker = SecretMasker(["abc", "", "long-enough"])
    assert masker.mask("abc long-enough") == f"abc {MASK}"
