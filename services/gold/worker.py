"""A gold build's own process: all models of one build, under the build's OS memory limit.

sandbox.py starts it as `python -m services.gold.worker` before a build needs it, so
Python and DuckDB have loaded by then. It reads one job, a JSON line on stdin (the store's
secret travels only there: not on the command line, not in the environment), limits its
address space, runs the models and reports on stdout as JSON lines:
{"event": "step", "model": name} as each model starts, {"event": "built", "run": ...}
when it is written, then {"event": "done"}, or {"event": "error", ...} naming what failed.
It serves one build, then exits.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import traceback
from dataclasses import asdict
from pathlib import Path
from typing import IO, Any

import duckdb

from flowforge.duckdb_s3 import open_database
from flowforge.errors import FlowForgeError
from flowforge.settings import Settings
from flowforge.specs.gold import PROFILE_MODEL
from services.gold.duckdb_errors import process_out_of_memory
from services.gold.engine import GoldSession, Inputs, Source
from services.gold.profile import profile_sql


def run(
    job: dict[str, Any],
    settings: Settings,
    database: duckdb.DuckDBPyConnection,
    report: IO[str],
    step: list[str],
) -> None:
    """Runs the job's models in one session; `step` holds what is running, for errors."""
    views = {
        name: Source(list(view["keys"]), [(str(n), str(t)) for n, t in view["columns"]])
        for name, view in job["views"].items()
    }
    models = [(str(m["name"]), str(m["sql"]), str(m["key"])) for m in job["models"]]
    outputs = [key for _, _, key in models] + ([job["profile_key"]] if job["profile_key"] else [])
    schema = job["model_schema"]
    with GoldSession(settings, Inputs(views, outputs), Path(job["spill"]), database) as session:
        if job["profile_key"]:
            # FlowForge's own SQL: it does not go through the guard or its length limit.
            models.append(
                (PROFILE_MODEL, profile_sql(session.columns("silver")), job["profile_key"])
            )
        for name, sql, key in models:
            step[0] = f"model {name!r}"
            send(report, {"event": "step", "model": name})
            view = f"{schema}.{name}" if schema else None
            built = session.run_model(name, sql, key, job["preview_rows"], view)
            send(report, {"event": "built", "run": asdict(built)})
    send(report, {"event": "done"})


def send(report: IO[str], event: dict[str, Any]) -> None:
    report.write(json.dumps(event) + "\n")
    report.flush()


def main() -> None:
    report = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)  # anything else written to stdout goes to the log, not among the reports
    database = open_database()  # while the build is not there yet
    line = sys.stdin.readline()
    if not line:
        return  # the service stopped before a build came
    job = json.loads(line)
    limit = int(job["process_memory_limit"])
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    settings = Settings(_env_file=None, **job["settings"])  # type: ignore[call-arg]
    step = ["setting up the inputs"]
    try:
        run(job, settings, database, report, step)
    except FlowForgeError as exc:
        send(report, failure(exc))
    except MemoryError:
        send(report, failure(process_out_of_memory(step[0], settings)))
    except BaseException:
        traceback.print_exc()
        send(report, {"event": "crash", "step": step[0]})
    report.close()
    sys.stderr.flush()
    # Skip interpreter teardown: after an allocation failure it may crash on the way out.
    os._exit(0)


def failure(exc: FlowForgeError) -> dict[str, Any]:
    return {
        "event": "error",
        "status": exc.status,
        "message": exc.message,
        "retryable": exc.retryable,
    }


if __name__ == "__main__":
    main()
