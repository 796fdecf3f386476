"""Logging: one JSON object per line, even for exceptions Python can only report; every
secret the settings hold masked, whichever logger the record comes through."""

from __future__ import annotations

import contextlib
import gc
import io
import json
import logging
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from flowforge.logs import (
    _CHATTY,
    _PER_REQUEST,
    MASK,
    RotatedOutput,
    SecretMasker,
    configure_logging,
    secret_values,
)
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
    for name in _CHATTY + _PER_REQUEST:
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


def cli_env(settings: Settings, **extra: str) -> dict[str, str]:
    """The environment of a `flowforge` command against the session's store: no log
    format set, so the command picks its own."""
    from tests.orchestrator.test_cli import env_of

    env = {k: v for k, v in os.environ.items() if not k.startswith("FLOWFORGE_")}
    env |= {k: v for k, v in env_of(settings).items() if k != "FLOWFORGE_LOG_FORMAT"}
    return env | extra


def json_lines(text: str) -> list[dict[str, object]]:
    found = []
    for line in text.splitlines():
        with contextlib.suppress(ValueError):
            value = json.loads(line)
            if isinstance(value, dict):
                found.append(value)
    return found


def test_a_cli_commands_stderr_is_for_people(settings: Settings) -> None:
    """`flowforge dimensions list` once printed a JSON line ("object store conditional
    writes probed") into the terminal: a command's stderr has no JSON unless asked for."""
    command = [sys.executable, "-m", "cli", "dimensions", "list"]
    plain = subprocess.run(command, env=cli_env(settings), capture_output=True, text=True,
                           timeout=120, check=True)  # fmt: skip
    assert json_lines(plain.stderr) == [], plain.stderr
    at_debug = subprocess.run(command, env=cli_env(settings, FLOWFORGE_LOG_LEVEL="DEBUG"),
                              capture_output=True, text=True, timeout=120, check=True)  # fmt: skip
    assert "conditional writes probed" in at_debug.stderr  # logging is on, as text
    assert json_lines(at_debug.stderr) == [], at_debug.stderr
    asked = cli_env(settings, FLOWFORGE_LOG_LEVEL="DEBUG", FLOWFORGE_LOG_FORMAT="json")
    as_json = subprocess.run(command, env=asked, capture_output=True, text=True, timeout=120,
                             check=True)  # fmt: skip
    probed = [e for e in json_lines(as_json.stderr) if "conditional writes" in str(e["msg"])]
    assert probed and probed[0]["conditional_writes"] is True


def test_a_log_file_under_the_state_folder_is_rotated(tmp_path: Path) -> None:
    """A child writes 2,000 numbered lines through RotatedOutput capped at 4 KB with two
    backups: every file stays under the cap, and what is kept is the newest lines, in order,
    up to the last one."""
    path = tmp_path / "deployment.log"
    output = RotatedOutput(path, max_bytes=4096, backups=2)
    code = "import sys\nfor i in range(2000): print(f'line {i:05d}', flush=True)"
    child = subprocess.Popen([sys.executable, "-c", code], stdout=output.fd)
    output.close()
    assert child.wait(60) == 0
    output.wait(30)
    files = [path.with_name(f"{path.name}.2"), path.with_name(f"{path.name}.1"), path]
    assert [f.exists() for f in files] == [True, True, True]
    assert not path.with_name(f"{path.name}.3").exists()
    assert all(f.stat().st_size <= 4096 for f in files)
    kept = [line for f in files for line in f.read_text().splitlines()]
    first = int(kept[0].split()[1])
    assert kept == [f"line {i:05d}" for i in range(first, 2000)]


def test_records_go_out_once_and_requests_not_at_all(logged: io.StringIO) -> None:
    """Prefect's logging setup puts its console handler on the root logger: configuring
    FlowForge's replaced it, else each record went out twice (text, then JSON). httpx logs
    every request at INFO (a served deployment's four polls a second): kept to warnings."""
    from prefect.logging.handlers import PrefectConsoleHandler

    root = logging.getLogger()
    prefects = PrefectConsoleHandler(stream=io.StringIO())
    root.addHandler(prefects)
    try:
        configure_logging(Settings(_env_file=None, log_format="json"), logged)  # type: ignore[call-arg]
        assert prefects not in root.handlers
        logging.getLogger("prefect.runner").info("a runner line")
        logging.getLogger("httpx").info('HTTP Request: POST /api/x "HTTP/1.1 200 OK"')
        logging.getLogger("httpx").warning("a request failed")
    finally:
        root.removeHandler(prefects)
    assert [json.loads(line)["msg"] for line in logged.getvalue().splitlines()][-2:] == [
        "a runner line",
        "a request failed",
    ]
    assert "HTTP Request" not in logged.getvalue()
