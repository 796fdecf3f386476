"""Whether a refine merges bronze's changes into silver (incremental) or rebuilds silver from
all of bronze (full), and why: decided from silver's last commit and bronze's log alone.

Incremental only when every bronze commit since the version silver last read is an append
(or changes no rows), the spec and bronze's columns are the ones silver last used, and
bronze's log still holds that version as the commit silver read. Later, while it runs,
an incremental refine can still find that it needs a rebuild (NeedsFullRebuild).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from deltalake import DeltaTable

from flowforge import tables
from flowforge.settings import Settings
from flowforge.tables import RUN_ID_KEY, Commit

INCREMENTAL, FULL = "incremental", "full"
# Commits that change no rows (the change data feed holds nothing for them).
NO_ROW_CHANGES = frozenset(
    {"OPTIMIZE", "VACUUM START", "VACUUM END", "SET TBLPROPERTIES", "ADD FEATURE"}
)


class NeedsFullRebuild(Exception):  # noqa: N818 (a decision, not a failure)
    """An incremental refine found that only a rebuild gives the right silver."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Refresh:
    mode: str
    reason: str
    since: int | None = None  # incremental: the bronze version silver last read
    commits: list[dict[str, Any]] = field(default_factory=list)  # bronze's after it, oldest first


def spec_hash(spec_json: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(spec_json, sort_keys=True).encode()).hexdigest()


def choose(
    settings: Settings,
    previous: Commit | None,
    bronze: DeltaTable,
    sources: list[str],
    spec_sha: str,
    full_refresh: bool,
) -> Refresh:
    if previous is None:
        return Refresh(FULL, "silver has no table yet")
    if full_refresh:
        return Refresh(FULL, "full_refresh was requested")
    read = previous.inputs.get("bronze") or {}
    since = read.get("version")
    if not isinstance(since, int):
        return Refresh(
            FULL,
            f"silver's last commit (run {previous.run_id}) does not say which bronze "
            "version it read",
        )
    if previous.inputs.get("spec") != spec_sha:
        return Refresh(FULL, f"the silver spec changed since run {previous.run_id}")
    if read.get("columns") != sources:
        return Refresh(
            FULL,
            f"bronze's columns changed since version {since}: "
            + changed(read.get("columns") or [], sources),
        )
    version = bronze.version()
    if since > version:
        return Refresh(
            FULL,
            f"bronze is at version {version}, before version {since} that silver read "
            "last: bronze was re-created",
        )
    entries = tables.raw_history(settings, bronze, version - since + 1)
    by_version = {int(e["version"]): e for e in entries}
    start = by_version.get(since)
    if start is None or any(v not in by_version for v in range(since, version + 1)):
        return Refresh(FULL, f"bronze's log no longer holds version {since} and the ones after it")
    if start.get(RUN_ID_KEY, "") != read.get("run_id", ""):
        return Refresh(
            FULL,
            f"bronze version {since} is no longer run {read.get('run_id')!r}'s commit, "
            "which silver read last: bronze was re-created",
        )
    commits = [by_version[v] for v in range(since + 1, version + 1)]
    for commit in commits:
        change = row_change(commit)
        if change:
            run = commit.get(RUN_ID_KEY, "")
            return Refresh(FULL, f"bronze version {commit['version']} (run {run!r}) {change}")
    if not commits:
        return Refresh(INCREMENTAL, f"bronze has not changed since version {since}", since)
    return Refresh(INCREMENTAL, f"only appends to bronze since version {since}", since, commits)


def row_change(commit: dict[str, Any]) -> str:
    """What a bronze commit did to existing rows, or "" when it only added rows. Its own
    actions decide first (tables.commit_info counts them): a commit that removed files
    changed rows whatever its operation says."""
    operation = str(commit.get("operation", ""))
    parameters = commit.get("operationParameters") or {}
    removed = int(commit.get(tables.REMOVED_FILES) or 0)
    if operation == "WRITE" and parameters.get("predicate"):
        return f"replaced the rows where {parameters['predicate']} (a re-uploaded file)"
    if removed and operation not in NO_ROW_CHANGES:
        return f"removed {removed} files' rows (a re-uploaded or forgotten landing file)"
    if operation in NO_ROW_CHANGES or (operation == "WRITE" and parameters.get("mode") == "Append"):
        return ""
    if operation == "WRITE":
        return f"rewrote the whole table (mode {parameters.get('mode', '?')})"
    return f"made a {operation} commit, which changes rows"


def changed(old: list[str], new: list[str]) -> str:
    added = [c for c in new if c not in old]
    removed = [c for c in old if c not in new]
    parts = [f"added {', '.join(added)}"] if added else []
    parts += [f"removed {', '.join(removed)}"] if removed else []
    return "; ".join(parts) or "reordered"
