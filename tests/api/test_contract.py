"""Every endpoint of the OpenAPI document, fuzzed by schemathesis over real HTTP: no
request, however malformed, gets a 5xx. Bounded: a few examples per endpoint and a time
budget for the whole run.

/api/events, a stream that runs until the client leaves, is fuzzed with `once` set (a
hook, tests/api/schemathesis_hooks.py). Schemathesis's pytest plugin does not run under
pytest 9, so its command line runs here, as CI would run it against a deployment."""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

from tests.api.conftest import ROOT, Api

METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}


def test_no_endpoint_answers_with_a_server_error(api: Api, tmp_path: Path) -> None:
    schemathesis = Path(sys.executable).parent / "schemathesis"
    result = subprocess.run(
        [
            *(str(schemathesis), "run", f"{api.url}/openapi.json"),
            *("--checks", "not_a_server_error", "--phases", "examples,coverage,fuzzing"),
            *("--max-examples", "6", "--max-time", "35", "--seed", "6"),
            *("--workers", "1"),  # hypothesis's lambda descriptions are not thread-safe
            *("--request-timeout", "30"),
            *("--header", f"Authorization: {api.client.headers['Authorization']}"),
            *("--report", "junit", "--report-dir", str(tmp_path)),
            *("--no-color", "--output-truncate", "true"),
        ],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=tmp_path,
        env={
            **os.environ,
            "SCHEMATHESIS_HOOKS": "tests.api.schemathesis_hooks",
            "PYTHONPATH": str(ROOT),
        },
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-12000:]
    assert " selected / " in output and "Fuzzing" in output, output[-3000:]
    # Every operation of the document was run, none skipped: an endpoint the fuzzer could
    # not generate a request for would pass the check above by never being called.
    document = api.client.get("/openapi.json").json()
    operations = {
        f"{method.upper()} {path}"
        for path, item in document["paths"].items()
        for method in item
        if method in METHODS
    }
    assert len(operations) >= 17, sorted(operations)  # the README table's 17, at least
    reports = list(tmp_path.glob("**/junit*.xml"))
    assert reports, f"no junit report in {list(tmp_path.iterdir())}"
    cases = [case for path in reports for case in ET.parse(path).getroot().iter("testcase")]
    run = {case.get("name") for case in cases if case.find("skipped") is None}
    assert operations - run == set(), f"not exercised: {sorted(operations - run)}"
    assert "GET /api/events" in run, "the event stream was not fuzzed"
