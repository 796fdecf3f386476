"""The deployment files, checked without a container engine: the Compose Specification
schema, hadolint, and what the Dockerfile promises (pinned base, non-root, multi-stage)."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

from tests.deploy.compose import COMPOSE_FILE, ROOT

BIN = Path(sys.executable).parent
DOCKERFILE = ROOT / "Dockerfile"


def test_compose_file_matches_the_compose_specification() -> None:
    result = subprocess.run(
        [BIN / "check-jsonschema", "--builtin-schema", "vendor.compose-spec", COMPOSE_FILE],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_finds_nothing_above_warning() -> None:
    result = subprocess.run(
        [BIN / "hadolint", "--failure-threshold", "warning", "--no-color", DOCKERFILE],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_would_catch_a_bad_dockerfile(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN apt-get update && apt-get install -y gcc\n")
    result = subprocess.run(
        [BIN / "hadolint", "--failure-threshold", "warning", "--no-color", bad],
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0 and "DL3007" in result.stdout  # the linter really runs


def stages() -> list[list[str]]:
    """The Dockerfile's instructions, split per stage (continuation lines joined)."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
    found: list[list[str]] = []
    for line in lines:
        if line.upper().startswith("FROM "):
            found.append([])
        if found:
            found[-1].append(line)
    return found


def test_dockerfile_is_multi_stage_on_a_pinned_slim_python() -> None:
    all_stages = stages()
    assert len(all_stages) >= 2
    for stage in all_stages:
        image = stage[0].split()[1]
        # An exact patch version (or a digest), never `latest` or a floating 3.11.
        assert re.fullmatch(r"python:3\.11\.\d+-slim(-\w+)?(@sha256:[0-9a-f]{64})?", image), image


def test_final_stage_runs_as_non_root_without_build_tools() -> None:
    *builders, final = stages()
    users = [line.split()[1] for line in final if line.upper().startswith("USER ")]
    assert users and users[-1].split(":")[0] not in ("0", "root")
    text = " ".join(final)
    for tool in ("gcc", "g++", "build-essential", "apt-get install", "pip install"):
        assert tool not in text, f"the final stage installs {tool}"

    # The final stage takes the venv from the builder, so the builder must leave no installer
    # in it: pip, setuptools and wheel uninstalled after the last install into /opt/venv.
    copied = [line for line in final if line.upper().startswith("COPY") and "/opt/venv" in line]
    assert copied, "the final stage copies the builder's /opt/venv"
    build = " && ".join(line for stage in builders for line in stage if line.startswith("RUN "))
    installs = [m.end() for m in re.finditer(r"/opt/venv/bin/(?:pip|python -m pip) install", build)]
    removal = re.search(r"/opt/venv/bin/python -m pip uninstall (?:--yes|-y) ([\w\s-]+)", build)
    assert installs and removal, "the builder does not remove the installer from /opt/venv"
    assert removal.start() > max(installs), "the builder installs into /opt/venv after removing pip"
    assert {"pip", "setuptools", "wheel"} <= set(removal.group(1).split())
    # The base image's own pip goes too, before anything else runs in the final stage.
    assert re.search(r"RUN python -m pip uninstall (?:--yes|-y) pip setuptools wheel", text)


def test_protoc_is_a_developer_tool_only() -> None:
    """grpcio-tools (protoc) is for `make protos` and the generated-code test: in the dev
    extra, not a runtime dependency, and imported by nothing but flowforge/protogen.py."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]

    def names(requirements: list[str]) -> set[str]:
        return {re.split(r"[\s<>=!~;\[]", r, maxsplit=1)[0].lower() for r in requirements}

    assert "grpcio-tools" not in names(project["dependencies"])
    assert "grpcio-tools" in names(project["optional-dependencies"]["dev"])
    importers = {
        path.relative_to(ROOT).as_posix()
        for package in ("flowforge", "services", "orchestrator")
        for path in (ROOT / package).rglob("*.py")
        if re.search(r"^\s*(?:import|from) grpc_tools\b", path.read_text(), re.M)
    }
    assert importers == {"flowforge/protogen.py"}


def test_docker_context_leaves_out_local_state_and_secrets() -> None:
    ignore = (ROOT / ".dockerignore").read_text().splitlines()
    assert "*" in ignore and ".env" in ignore  # nothing but what is let back in
    # Everything the image copies is let back in.
    copied = re.findall(r"^COPY (?!--from)(?:--\S+ )*(.+) \S+$", DOCKERFILE.read_text(), re.M)
    for sources in copied:
        for source in sources.split():
            assert f"!{source.rstrip('/')}/" in ignore or f"!{source}" in ignore, source
