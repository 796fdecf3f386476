"""What `flowforge up` costs while nothing runs: CPU of each of its processes over 60 s.

    python -m bench.idle                     # settle 20 s, then measure 60 s
    python -m bench.idle --seconds 120 --settle 30 --no-sample
    python -m bench.idle --code /path/to/other/checkout   # that checkout's `flowforge up`
    python -m bench.idle --watch             # with the web UI's event stream open meanwhile

Starts `flowforge up` in a fresh state directory, waits until it has printed its addresses
(everything is started and the deployment is served), lets it settle, then reads each
process's CPU time (user + system) from /proc through psutil at the start and the end of
the window, every process of the tree (`up`, SeaweedFS, the Prefect server, the served
deployment, its fork server, the API). Prints each one's share of one core, then the sum:
the aim is under 5 % of one core in all. Ctrl-C (SIGINT) stops `up` at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil

from bench.common import ROOT

READY = "In another shell"  # `flowforge up`'s last line once everything is up


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="the measured window")
    parser.add_argument("--settle", type=float, default=20.0, help="wait after start-up")
    parser.add_argument("--no-sample", action="store_true", help="flowforge up --no-sample")
    parser.add_argument("--code", type=Path, default=ROOT, help="the checkout to run")
    parser.add_argument(
        "--watch", action="store_true", help="hold /api/events open, as a web UI tab does"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ff-idle-") as folder:
        work = Path(folder)
        up, log = start_up(work, args.code, args.no_sample)
        try:
            print(f"flowforge up is serving (log {log}); settling {args.settle:g} s ...")
            with watching(log if args.watch else None):
                time.sleep(args.settle)
                shares = measure(up.pid, args.seconds)
        finally:
            stop_up(up)
    print(f"\nCPU over {args.seconds:g} s idle, % of one core:")
    for label, share in sorted(shares.items(), key=lambda kv: -kv[1]):
        print(f"  {share:6.2f} %  {label}")
    print(f"  {sum(shares.values()):6.2f} %  in all (aim: under 5 %)")


def start_up(work: Path, code: Path, no_sample: bool) -> tuple[subprocess.Popen[bytes], Path]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("FLOWFORGE_", "PREFECT_"))}
    env = clean | {
        "FLOWFORGE_STATE_DIR": str(work / "state"),
        "PYTHONPATH": str(code),
        "COLUMNS": "200",
    }
    log = work / "up.log"
    command = [sys.executable, "-m", "cli", "up"] + (["--no-sample"] if no_sample else [])
    with log.open("wb") as out:
        up = subprocess.Popen(command, env=env, cwd=work, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 240
    while READY not in log.read_text(errors="replace"):
        if up.poll() is not None or time.monotonic() > deadline:
            stop_up(up)
            raise SystemExit(f"flowforge up did not come up:\n{log.read_text()[-3000:]}")
        time.sleep(0.5)
    return up, log


@contextlib.contextmanager
def watching(log: Path | None) -> Iterator[None]:
    """With `log` (up's output): the web UI's event stream held open meanwhile."""
    if log is None:
        yield
        return
    found = re.search(r"FlowForge UI\s+(\S+)", log.read_text())
    assert found, "no FlowForge UI address printed"
    url = found.group(1).rstrip("/") + "/api/events"
    stop = threading.Event()

    def read() -> None:
        with httpx.stream("GET", url, timeout=None) as events:
            for _ in events.iter_lines():
                if stop.is_set():
                    return

    reader = threading.Thread(target=read, daemon=True)  # ends with the server at the latest
    reader.start()
    try:
        yield
    finally:
        stop.set()


def measure(root: int, seconds: float) -> dict[str, float]:
    """Each process's CPU seconds over the window / the window, in percent. Processes that
    start during the window count from zero; ones that end count until last seen."""
    first: dict[int, float] = {}
    last: dict[int, float] = {}
    labels: dict[int, str] = {}
    started = time.monotonic()
    end = started + seconds
    while True:
        for process in tree(root):
            try:
                with process.oneshot():
                    used = sum(process.cpu_times()[:2])
                    labels.setdefault(process.pid, label_of(process))
            except psutil.Error:
                continue
            first.setdefault(process.pid, used if time.monotonic() - started < 1 else 0.0)
            last[process.pid] = used
        if time.monotonic() >= end:
            break
        time.sleep(min(5.0, max(0.0, end - time.monotonic())))
    window = time.monotonic() - started
    shares: dict[str, float] = {}
    for pid, used in last.items():
        label = f"{labels[pid]} [{pid}]"
        shares[label] = 100 * (used - first[pid]) / window
    return shares


def tree(root: int) -> list[psutil.Process]:
    try:
        parent = psutil.Process(root)
        return [parent, *parent.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


LABELS = {  # a piece of the command line -> what the process is
    "cli up": "flowforge up (and the gRPC services in it)",
    "prefect server": "Prefect server",
    "cli serve deployment": "served deployment (Prefect runner)",
    "cli serve api": "executions API and web UI",
    "forkserver": "flow-run fork server",
    "resource_tracker": "its resource tracker",
    "weed": "SeaweedFS",
    "services.gold.worker": "gold build worker",
}


def label_of(process: psutil.Process) -> str:
    text = " ".join(process.cmdline())
    return next((label for key, label in LABELS.items() if key in text), text[:80])


def stop_up(up: subprocess.Popen[bytes]) -> None:
    if up.poll() is None:
        up.send_signal(signal.SIGINT)
        try:
            up.wait(60)
        except subprocess.TimeoutExpired:
            up.kill()
            up.wait(10)


if __name__ == "__main__":
    main()
