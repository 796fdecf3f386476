"""Load: 20 jobs started at once through the HTTP API on one machine; figures printed, not asserted.

    python -m bench.load               # 20 jobs (the sample jobs, cycled)
    python -m bench.load --jobs 5      # a quick run

Starts an embedded S3, the three services as `flowforge serve <layer>` subprocesses, a
Prefect server, `flowforge serve deployment` (the orchestrator, running each flow run in a
child process) and `flowforge serve api`, each with its peak RSS sampled. Through the API
it applies a workflow `load` with N+1 jobs cycling the sample jobs, uploads the countries
dimension and each job's sample CSV, runs one job alone (the baseline), then POSTs all N
triggers at once and polls GET /api/executions/{id} until they end. Prints the total time,
p50/p95 per execution (created -> finished), the trigger latency, peak RSS per process and
whether every execution completed with the same counts as the other runs of its sample job.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import psutil
import yaml
from prefect.settings import PREFECT_API_URL, temporary_settings
from pydantic import SecretStr

from bench.common import (
    ROOT,
    ServiceProcess,
    orchestrator_env,
    start_runner,
    start_s3,
    stop_process,
)
from flowforge.embedded import pick_ports
from flowforge.layout import LAYERS
from orchestrator.prefect_server import PrefectServer, flush_clients
from orchestrator.workflows import load_workflow_file

SAMPLE = ROOT / "examples" / "workflows" / "customer-data.yaml"
Execution = dict[str, Any]


class TreeRss:
    """Peak RSS of a process and all its children, summed, sampled every 100 ms."""

    def __init__(self, pid: int) -> None:
        self.pid, self.peak = pid, 0
        self._stop = threading.Event()
        threading.Thread(target=self._sample, daemon=True).start()

    def _sample(self) -> None:
        while not self._stop.wait(0.1):
            try:
                root = psutil.Process(self.pid)
                total = sum(p.memory_info().rss for p in [root, *root.children(recursive=True)])
            except psutil.Error:
                continue
            self.peak = max(self.peak, total)

    def stop(self) -> None:
        self._stop.set()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=20)
    parser.add_argument("--database-url", default="", help="Executions store (default SQLite).")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ff-bench-load-"))
    s3, settings = start_s3(work)
    services: list[ServiceProcess] = []
    processes: list[subprocess.Popen[bytes]] = []
    try:
        services = [ServiceProcess(layer, settings, work) for layer in LAYERS]
        settings = settings.model_copy(
            update={
                "state_dir": work / "state",
                **{f"{s.layer}_address": s.address for s in services},
                **({"database_url": SecretStr(args.database_url)} if args.database_url else {}),
            }
        )
        with (
            PrefectServer(work / "prefect") as prefect,
            temporary_settings(updates={PREFECT_API_URL: prefect.api_url}),
        ):
            env = orchestrator_env(settings, prefect.client_env())
            runner = start_runner(env, work / "runner.log", settings.deployment_name)
            processes.append(runner)
            port = pick_ports()["s3.port"]
            with (work / "api.log").open("wb") as log:
                api_process = subprocess.Popen(
                    [sys.executable, "-m", "cli", "serve", "api", "--port", str(port)],
                    env=env, stdout=log, stderr=subprocess.STDOUT,
                )  # fmt: skip
            processes.append(api_process)
            runner_rss, api_rss = TreeRss(runner.pid), TreeRss(api_process.pid)
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120) as api:
                wait_ready(api, api_process, work / "api.log")
                kinds = prepare(api, args.jobs + 1)
                baseline_job = next(iter(kinds))  # one job alone first: the baseline
                alone_kind = kinds.pop(baseline_job)
                alone = wait(api, trigger(api, baseline_job)[0]["id"])
                for service in services:
                    service.reset_peak()
                started = time.monotonic()
                gate = threading.Barrier(len(kinds))

                def at_once(job: str) -> tuple[Execution, float]:
                    gate.wait()  # every trigger leaves together
                    return trigger(api, job)

                with ThreadPoolExecutor(len(kinds)) as pool:
                    triggered = list(pool.map(at_once, kinds))
                done = [wait(api, execution["id"]) for execution, _ in triggered]
                total = time.monotonic() - started
            runner_rss.stop()
            api_rss.stop()
            problems = report(done, kinds, total, [s for _, s in triggered], alone, alone_kind)
            for service in services:
                print(f"peak RSS {service.layer}: {service.peak_rss / 2**20:.0f} MiB")
            print(f"peak RSS orchestrator (runner + flow runs): {runner_rss.peak / 2**20:.0f} MiB")
            print(f"peak RSS api: {api_rss.peak / 2**20:.0f} MiB")
            for process in processes:  # before the Prefect server they talk to
                stop_process(process)
            flush_clients()
            if problems:  # figures are printed, not asserted; wrong results are an error
                sys.exit("load run went wrong: " + "; ".join(problems))
    finally:
        for process in processes:
            stop_process(process)
        for service in services:
            service.stop()
        s3.stop()


def wait_ready(api: httpx.Client, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            if api.get("/healthz").status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline or process.poll() is not None:
            raise RuntimeError(log.read_text()[-3000:])
        time.sleep(0.2)


def checked(response: httpx.Response, status: int) -> Any:
    if response.status_code != status:
        raise RuntimeError(f"{response.request.method} {response.request.url.path}: "
                           f"{response.status_code} {response.text[:500]}")  # fmt: skip
    return response.json()


def prepare(api: httpx.Client, count: int) -> dict[str, str]:
    """Workflow `load` with `count` jobs cycling the sample jobs, data landed through the API;
    returns job -> sample job."""
    sample = load_workflow_file(SAMPLE)
    countries = ROOT / "examples" / "dimensions" / "countries.csv"
    with countries.open("rb") as file:
        checked(api.put("/api/dimensions/countries", files={"file": file}), 200)
    jobs, kinds = [], {}
    for i in range(count):
        base = sample.jobs[i % len(sample.jobs)]
        jobs.append(base.model_copy(update={"id": f"{base.id}-{i:02d}"}))
        kinds[f"{base.id}-{i:02d}"] = base.id
    workflow = sample.model_copy(update={"id": "load", "jobs": jobs})
    document = yaml.safe_dump(workflow.model_dump(mode="json", exclude_none=True), sort_keys=False)
    headers = {"Content-Type": "application/yaml"}
    checked(api.post("/api/workflows", content=document, headers=headers), 200)
    for job, base_id in kinds.items():
        with (ROOT / "examples" / "data" / f"{base_id}.csv").open("rb") as file:
            files = {"files": (f"{base_id}.csv", file, "text/csv")}
            checked(api.post(f"/api/workflows/load/jobs/{job}/files", files=files), 201)
    return kinds


def trigger(api: httpx.Client, job: str) -> tuple[Execution, float]:
    """POSTs a trigger; returns the execution and how long the API took to answer."""
    started = time.monotonic()
    execution = checked(api.post(f"/api/workflows/load/jobs/{job}/executions", json={}), 201)
    return execution, time.monotonic() - started


def wait(api: httpx.Client, execution_id: str, timeout: float = 1800) -> Execution:
    deadline = time.monotonic() + timeout
    while True:
        response = api.get(f"/api/executions/{execution_id}")
        if response.status_code == 200:
            execution: Execution = response.json()
            if execution["status"] not in ("PENDING", "RUNNING"):
                return execution
        if time.monotonic() > deadline:
            raise RuntimeError(f"execution {execution_id} did not end in {timeout:.0f} s")
        time.sleep(0.5)


def seconds(execution: Execution) -> float:
    created, finished = execution["created_at"], execution["finished_at"]
    if finished is None:
        return 0.0
    return (datetime.fromisoformat(finished) - datetime.fromisoformat(created)).total_seconds()


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def report(
    done: list[Execution],
    kinds: dict[str, str],
    total: float,
    trigger_seconds: list[float],
    alone: Execution,
    alone_kind: str,
) -> list[str]:
    """Prints the figures; returns what went wrong (an execution that did not complete or
    balance, runs of one sample job with different counts, or counts other than the same
    job's run alone)."""
    problems = [
        f"{e['job_id']}: {e['status']} {e['error'] or ''}".strip()
        for e in [alone, *done]
        if e["status"] != "COMPLETED" or not (e["balance"] or {}).get("balanced")
    ]
    counts: dict[str, set[tuple[object, ...]]] = {}
    for e in done:
        counts.setdefault(kinds[e["job_id"]], set()).add(step_counts(e))
    completed = sum(e["status"] == "COMPLETED" for e in done)
    print(f"executions: {len(done)} triggered at once through the API, {completed} completed")
    for problem in problems:
        print(f"  {problem}")
    for kind, seen in sorted(counts.items()):
        if len(seen) > 1:
            problems.append(f"{kind}: {len(seen)} different counts: {sorted(seen)}")
        if kind == alone_kind and seen != {step_counts(alone)}:
            problems.append(f"{kind}: counts differ from its run alone {step_counts(alone)}")
        state = "same counts in every run" if len(seen) == 1 else f"{len(seen)} DIFFERENT counts"
        print(f"  {kind}: {state}: {sorted(seen)[0]}")
    single = seconds(alone)
    print(f"baseline: one {alone['job_id']} execution alone: {single:.1f} s ({alone['status']})")
    ratio = f" = {total / single:.1f}x one execution alone" if single else ""
    print(f"total time for {len(done)} at once: {total:.1f} s{ratio} (one after another: "
          f"about {len(done)}x)")  # fmt: skip
    per_execution = [seconds(e) for e in done if e["finished_at"] is not None]
    if per_execution:
        print(f"per execution: p50 {statistics.median(per_execution):.1f} s, "
              f"p95 {percentile(per_execution, 0.95):.1f} s")  # fmt: skip
    print(f"trigger (POST answered): p50 {statistics.median(trigger_seconds):.2f} s, "
          f"p95 {percentile(trigger_seconds, 0.95):.2f} s")  # fmt: skip
    return problems


def step_counts(execution: Execution) -> tuple[object, ...]:
    return tuple(
        (s["layer"], s["rows_in"], s["rows_out"], s["rows_rejected"]) for s in execution["steps"]
    )


if __name__ == "__main__":
    main()
