"""The embedded SeaweedFS sends nothing off the machine: telemetry is off, it binds loopback."""

from __future__ import annotations

import psutil

from flowforge.embedded import EmbeddedS3


def test_the_embedded_store_runs_without_telemetry_on_loopback(s3: EmbeddedS3) -> None:
    assert s3._process is not None
    arguments = psutil.Process(s3._process.pid).cmdline()
    assert "-master.telemetry=false" in arguments
    assert "-ip.bind=127.0.0.1" in arguments
