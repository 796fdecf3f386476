"""Logging: one JSON object per line, even for exceptions Python can only report."""

from __future__ import annotations

import gc
import io
import json
import logging

from flowforge.logs import configure_logging
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
