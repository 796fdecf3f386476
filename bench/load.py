"""Load: 20 jobs started at once on one machine; figures printed, not asserted.

    python -m bench.load               # 20 jobs (the sample jobs, cycled)
    python -m bench.load --jobs 5      # a quick run

Starts an embedded S3, the three services as `flowforge serve <layer>` subprocesses (their
peak RSS sampled), a Prefect server and `flowforge serve deployment` (the orchestrator,
running each flow run in a child process). Lands the sample CSVs for N jobs, starts all N
executions at once through trigger_execution() — what `flowforge run` and the HTTP API's
trigger call — and waits. Prints the total time, p50/p95 per execution (created ->
finished), peak RSS per service and of the orchestrator, and checks every execution
completed with the same counts as the other runs of its sample job.
"""

from __future__ import annotations

import argparse
import contextvars
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil
from prefect.settings import PREFECT_API_URL, temporary_settings

from bench.common import ROOT, ServiceProcess, env_for, start_s3
from flowforge.dimensions import upload_dimension_file
from flowforge.layout import JobKey, landing_prefix
from flowforge.storage import ObjectStore
from orchestrator.prefect_server import PrefectServer, flush_clients
from orchestrator.store import ExecutionRecord, Store
from orchestrator.trigger import trigger_execution
from orchestrator.workflows import load_workflow_file

SAMPLE = ROOT / "examples" / "workflows" / "customer-data.yaml"


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
    runner: subprocess.Popen[bytes] | None = None
    try:
        services = [ServiceProcess(layer, settings, work) for layer in ("bronze", "silver", "gold")]
        settings = settings.model_copy(
            update={
                "state_dir": work / "state",
                "bronze_address": services[0].address,
                "silver_address": services[1].address,
                "gold_address": services[2].address,
                **({"database_url": args.database_url} if args.database_url else {}),
            }
        )
        with (
            PrefectServer(work / "prefect") as prefect,
            temporary_settings(updates={PREFECT_API_URL: prefect.api_url}),
        ):
            runner, orchestrator_rss = start_runner(settings, prefect, work)
            store = Store.open(settings)
            kinds = prepare(settings, store, args.jobs + 1)
            baseline_job = next(iter(kinds))  # one job alone first: the baseline
            kinds.pop(baseline_job)
            alone = wait(store, trigger_execution(settings, "load", baseline_job, store=store).id)
            for service in services:
                service.reset_peak()
            started = time.monotonic()
            with ThreadPoolExecutor(args.jobs) as pool:  # all at once
                # Each start carries this thread's Prefect settings (a context variable).
                started_runs = [
                    pool.submit(
                        contextvars.copy_context().run,
                        trigger_execution,
                        settings,
                        "load",
                        job,
                        store=store,
                    )
                    for job in kinds
                ]
                executions = [f.result() for f in started_runs]
            done = [wait(store, e.id) for e in executions]
            total = time.monotonic() - started
            orchestrator_rss.stop()
            report(done, kinds, total, services, orchestrator_rss.peak, alone)
            stop_runner(runner)  # before the Prefect server it talks to
            flush_clients()
    finally:
        stop_runner(runner)
        for service in services:
            service.stop()
        s3.stop()


def stop_runner(runner: subprocess.Popen[bytes] | None) -> None:
    if runner is None or runner.poll() is not None:
        return
    runner.terminate()
    try:
        runner.wait(30)
    except subprocess.TimeoutExpired:
        runner.kill()
        runner.wait(10)


def start_runner(
    settings: object, prefect: PrefectServer, work: Path
) -> tuple[subprocess.Popen[bytes], TreeRss]:
    s = settings  # the orchestrator reads the same settings from its environment
    env = {
        **env_for(s),  # type: ignore[arg-type]
        **prefect.client_env(),
        "FLOWFORGE_STATE_DIR": str(work / "state"),
        "FLOWFORGE_BRONZE_ADDRESS": s.bronze_address,  # type: ignore[attr-defined]
        "FLOWFORGE_SILVER_ADDRESS": s.silver_address,  # type: ignore[attr-defined]
        "FLOWFORGE_GOLD_ADDRESS": s.gold_address,  # type: ignore[attr-defined]
    }
    database = s.database_url  # type: ignore[attr-defined]
    if database is not None:
        env["FLOWFORGE_DATABASE_URL"] = database.get_secret_value()
    log = (work / "runner.log").open("wb")
    runner = subprocess.Popen(
        [sys.executable, "-m", "flowforge.cli", "serve", "deployment"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    deadline = time.monotonic() + 120
    with get_client(sync_client=True) as client:
        while True:
            try:
                client.read_deployment_by_name(s.deployment_name)  # type: ignore[attr-defined]
                break
            except ObjectNotFound:
                if time.monotonic() > deadline or runner.poll() is not None:
                    raise RuntimeError((work / "runner.log").read_text()[-3000:]) from None
                time.sleep(0.5)
    return runner, TreeRss(runner.pid)


def prepare(settings: object, store: Store, count: int) -> dict[str, str]:
    """A workflow `load` with `count` jobs cycling the sample jobs; returns job -> sample."""
    sample = load_workflow_file(SAMPLE)
    objects = ObjectStore(settings)  # type: ignore[arg-type]
    upload_dimension_file(objects, "countries", ROOT / "examples" / "dimensions" / "countries.csv")
    jobs, kinds = [], {}
    for i in range(count):
        base = sample.jobs[i % len(sample.jobs)]
        job_id = f"{base.id}-{i:02d}"
        jobs.append(base.model_copy(update={"id": job_id}))
        kinds[job_id] = base.id
        data = (ROOT / "examples" / "data" / f"{base.id}.csv").read_bytes()
        objects.put_bytes(landing_prefix(JobKey("load", job_id)) + f"{base.id}.csv", data)
    store.save_workflow(sample.model_copy(update={"id": "load", "jobs": jobs}))
    return kinds


def kinds_of(execution: ExecutionRecord) -> str:
    return execution.job_id.rsplit("-", 1)[0]


def wait(store: Store, execution_id: str, timeout: float = 1800) -> ExecutionRecord:
    deadline = time.monotonic() + timeout
    while True:
        execution = store.get_execution(execution_id)
        if not execution.active or time.monotonic() > deadline:
            return execution
        time.sleep(0.5)


def report(
    done: list[ExecutionRecord],
    kinds: dict[str, str],
    total: float,
    services: list[ServiceProcess],
    orchestrator_peak: int,
    alone: ExecutionRecord,
) -> None:
    seconds = sorted(
        (e.finished_at - e.created_at).total_seconds() for e in done if e.finished_at is not None
    )
    counts: dict[str, set[tuple[object, ...]]] = {}
    for e in done:
        counts.setdefault(kinds[e.job_id], set()).add(
            tuple((s.layer, s.rows_in, s.rows_out, s.rows_rejected) for s in e.steps)
        )
    completed = sum(e.status == "COMPLETED" for e in done)
    print(f"executions: {len(done)} started at once, {completed} completed")
    for e in done:
        if e.status != "COMPLETED":
            print(f"  {e.job_id}: {e.status} {e.error}")
    for kind, seen in sorted(counts.items()):
        state = "same counts in every run" if len(seen) == 1 else f"{len(seen)} DIFFERENT counts"
        print(f"  {kind}: {state}: {sorted(seen)[0]}")
    single = (alone.finished_at - alone.created_at).total_seconds() if alone.finished_at else 0
    print(f"baseline: one {kinds_of(alone)} execution alone: {single:.1f} s ({alone.status})")
    ratio = f" = {total / single:.1f}x one execution alone" if single else ""
    print(f"total time for {len(done)} at once: {total:.1f} s{ratio} (one after another: "
          f"about {len(done)}x)")  # fmt: skip
    if seconds:
        p95 = seconds[min(len(seconds) - 1, round(0.95 * (len(seconds) - 1)))]
        print(f"per execution: p50 {statistics.median(seconds):.1f} s, p95 {p95:.1f} s")
    for layer, service in zip(("bronze", "silver", "gold"), services, strict=True):
        print(f"peak RSS {layer}: {service.peak_rss / 2**20:.0f} MiB")
    print(f"peak RSS orchestrator (runner + flow runs): {orchestrator_peak / 2**20:.0f} MiB")


if __name__ == "__main__":
    main()
