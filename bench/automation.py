"""What the automation loop costs an idle installation, and a landing scan per job.

    python -m bench.automation [--jobs 50] [--files 20]

Puts `--files` CSVs into the landing of `--jobs` jobs with trigger.on_upload (an embedded
S3, a SQLite store), then times, each as the median of 5 rounds:

  * the first scan (every file new: one listing and one manifest read per job, the
    triggers marked pending), then a scan with nothing new (one listing per job);
  * an idle tick of the trigger loop (no trigger due) and of the notification loop (no
    execution ended): what the API spends every second with nothing to do.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from bench.common import start_s3
from flowforge.layout import JobKey, landing_prefix
from flowforge.storage import ObjectStore
from orchestrator.automation_spec import Trigger
from orchestrator.notify import deliver_due, notice_ended
from orchestrator.store import Store
from orchestrator.store.database import open_engine
from orchestrator.store.models import utcnow
from orchestrator.triggers import fire_due, scan_landing
from orchestrator.workflows import Job, Workflow

ROUNDS = 5
SECOND = timedelta(seconds=1)


def median_ms(work: Callable[[], object], before: Callable[[], object] = lambda: None) -> float:
    times = []
    for _ in range(ROUNDS):
        before()
        start = time.perf_counter()
        work()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=50)
    parser.add_argument("--files", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        s3, settings = start_s3(Path(folder))
        try:
            objects = ObjectStore(settings)
            store = Store(open_engine(f"sqlite:///{Path(folder) / 'flowforge.db'}"))
            trigger = Trigger(on_upload=True, debounce_seconds=3600)
            jobs = [Job(id=f"job{j}", trigger=trigger) for j in range(args.jobs)]
            workflow = Workflow(id="bench", jobs=jobs)
            store.save_workflow(workflow)
            for job in jobs:
                for f in range(args.files):
                    key = landing_prefix(JobKey(workflow.id, job.id)) + f"file-{f}.csv"
                    objects.put_bytes(key, b"a,b\n1,2\n", content_type="text/csv")

            def forget() -> None:  # every file new again
                for job in jobs:
                    seen = store.landing_seen(workflow.id, job.id)
                    store.forget_landing(workflow.id, job.id, list(seen), utcnow() + SECOND)

            first = median_ms(lambda: scan_landing(settings, store, objects), before=forget)
            scan_landing(settings, store, objects)
            again = median_ms(lambda: scan_landing(settings, store, objects))
            for job in jobs:
                store.drop_trigger(workflow.id, job.id)
            idle_triggers = median_ms(lambda: fire_due(settings, store))
            idle_notify = median_ms(
                lambda: (notice_ended(settings, store), deliver_due(settings, store))
            )
        finally:
            s3.stop()
    print(f"{args.jobs} jobs x {args.files} files, medians of {ROUNDS}:")
    print(f"  first scan (all new):    {first:8.1f} ms  ({first / args.jobs:.2f} ms a job)")
    print(f"  scan, nothing new:       {again:8.1f} ms  ({again / args.jobs:.2f} ms a job)")
    print(f"  idle trigger tick:       {idle_triggers:8.2f} ms")
    print(f"  idle notification tick:  {idle_notify:8.2f} ms")


if __name__ == "__main__":
    main()
