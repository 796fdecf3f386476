"""prefect.yaml against the code: `prefect deploy --all` registers the deployment
`flowforge run` and the API trigger, its entrypoint is the flow, its parameters are the
flow's, and its pull step finds the code in the image and in a checkout; the maintenance
deployment is the one `flowforge serve deployment` serves, on the same schedule."""

from __future__ import annotations

import importlib
import inspect
import os
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from flowforge.settings import Settings
from orchestrator.deployment import FULL_NAME, MAINTENANCE_NAME, WORKFLOW_NAME, maintenance_cron
from orchestrator.flow import medallion
from orchestrator.maintenance_flow import maintenance
from orchestrator.workflow_flow import workflow_run
from tests.deploy.compose import ROOT
from tests.deploy.test_files import DOCKERFILE, stages

PREFECT_YAML = ROOT / "prefect.yaml"


def project() -> dict[str, Any]:
    return yaml.safe_load(PREFECT_YAML.read_text())  # type: ignore[no-any-return]


def deployment(name: str = "customer-data", flow_file: str | None = None) -> dict[str, Any]:
    """The deployment `name` (of the flow in `flow_file`: a job's flow and a workflow's
    flow each have a customer-data; the job's by default)."""
    if flow_file is None and name == "customer-data":
        flow_file = "orchestrator/flow.py"
    (found,) = [
        d
        for d in project()["deployments"]
        if d["name"] == name and (flow_file is None or d["entrypoint"].startswith(flow_file))
    ]
    return found  # type: ignore[no-any-return]


def entrypoint_object(entrypoint: str) -> Any:
    """What `path/to/file.py:name` names, imported as the package module it is."""
    path, name = entrypoint.split(":")
    assert (ROOT / path).is_file(), f"{path} does not exist"
    module = importlib.import_module(Path(path).with_suffix("").as_posix().replace("/", "."))
    return getattr(module, name)


def test_the_deployment_is_the_one_flowforge_triggers() -> None:
    flow = entrypoint_object(deployment()["entrypoint"])
    assert flow is medallion
    assert f"{flow.name}/{deployment()['name']}" == FULL_NAME == "flowforge-medallion/customer-data"
    assert Settings(_env_file=None).deployment_name == FULL_NAME  # type: ignore[call-arg]


def test_the_workflow_deployment_is_the_one_a_workflow_run_triggers() -> None:
    found = deployment(flow_file="orchestrator/workflow_flow.py")
    flow = entrypoint_object(found["entrypoint"])
    assert flow is workflow_run
    assert f"{flow.name}/{found['name']}" == WORKFLOW_NAME == "flowforge-workflow/customer-data"
    assert Settings(_env_file=None).workflow_deployment_name == WORKFLOW_NAME  # type: ignore[call-arg]
    required = {
        n for n, p in inspect.signature(workflow_run.fn).parameters.items() if p.default is p.empty
    }
    assert required == {"workflow_id"}
    workflow_run.validate_parameters({**(found["parameters"] or {}), "workflow_id": "x"})


def test_the_maintenance_deployment_is_the_served_one() -> None:
    assert len(project()["deployments"]) == 3
    tables = deployment("tables")
    flow = entrypoint_object(tables["entrypoint"])
    assert flow is maintenance
    assert f"{flow.name}/{tables['name']}" == MAINTENANCE_NAME
    (schedule,) = tables["schedules"]
    default = Settings(_env_file=None)  # type: ignore[call-arg]
    assert schedule == {"cron": maintenance_cron(default), "timezone": "UTC"}
    assert tables["concurrency_limit"] == 1  # two at once would race each other's commits
    assert not set(tables["parameters"] or {}) - set(inspect.signature(maintenance.fn).parameters)
    maintenance.validate_parameters(tables["parameters"] or {})


def test_the_prefect_version_is_the_installed_one() -> None:
    import prefect

    assert str(project()["prefect-version"]) == prefect.__version__


def test_parameters_match_the_flow_signature() -> None:
    signature = inspect.signature(medallion.fn)
    given = deployment()["parameters"] or {}
    assert set(given) <= set(signature.parameters), "a parameter the flow does not take"
    # A flow run of the deployment gets these plus what the trigger sends: the required
    # ones (workflow_id, job_id) must be left to it, and the result must validate.
    required = {n for n, p in signature.parameters.items() if p.default is p.empty}
    assert required == {"workflow_id", "job_id"} and not required & set(given)
    medallion.validate_parameters({**given, **dict.fromkeys(required, "x")})


def _pull() -> Path:
    """Runs prefect.yaml's pull steps as a flow run does: `{{ $VAR }}` placeholders filled
    from the environment by Prefect's templating (an unset one becomes empty), then
    the step's function called. Returns the working directory they leave."""
    from prefect.utilities.templating import apply_values

    for step in project()["pull"]:
        ((name, inputs),) = step.items()
        module, function = name.rsplit(".", 1)
        getattr(importlib.import_module(module), function)(**apply_values(inputs, os.environ))
    return Path.cwd()


def test_the_pull_step_goes_where_flowforge_workdir_says(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A process worker starts each flow run in a temporary folder; the pull step then
    moves to the checkout named by FLOWFORGE_WORKDIR, where the entrypoint resolves."""
    (step,) = project()["pull"]
    assert step == {
        "prefect.deployments.steps.set_working_directory": {"directory": "{{ $FLOWFORGE_WORKDIR }}"}
    }
    monkeypatch.chdir(tmp_path)  # and back afterwards
    monkeypatch.setenv("FLOWFORGE_WORKDIR", str(ROOT))
    there = _pull()
    assert there == ROOT
    assert (there / deployment()["entrypoint"].split(":")[0]).is_file()


def test_without_flowforge_workdir_the_pull_step_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An unset variable becomes an empty directory: the flow run fails at its pull step
    rather than look for the code wherever it happens to start."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("FLOWFORGE_WORKDIR", raising=False)
    with pytest.raises(FileNotFoundError):
        _pull()


def test_the_image_sets_flowforge_workdir_to_where_its_code_is() -> None:
    """Docker and kubernetes pools (and process workers in the image) need no setting."""
    final = stages()[-1]
    env = " ".join(line for line in final if line.upper().startswith("ENV "))
    workdir = re.search(r"\bFLOWFORGE_WORKDIR=(\S+)", env)
    assert workdir, "the image does not set FLOWFORGE_WORKDIR"
    workdirs = [line.split()[1] for line in final if line.upper().startswith("WORKDIR ")]
    assert workdirs[-1] == workdir.group(1), "FLOWFORGE_WORKDIR is not the image's WORKDIR"
    # The final stage has the builder's /app: the code and prefect.yaml, copied relative to
    # the builder's WORKDIR, which is the same folder.
    assert any(
        re.fullmatch(rf"COPY --from=build (?:--\S+ )*{workdir.group(1)} {workdir.group(1)}", ln)
        for ln in final
    )
    builder_workdirs = [ln.split()[1] for ln in stages()[0] if ln.upper().startswith("WORKDIR ")]
    assert builder_workdirs == [workdir.group(1)]
    text = DOCKERFILE.read_text()
    for source in ("orchestrator", "prefect.yaml"):
        assert re.search(rf"^COPY {source} \./", text, re.M), f"the image lacks {source}"


def test_the_comment_names_the_image_job_variable() -> None:
    """Docker and kubernetes pools need the image; prefect.yaml says how to name it."""
    text = PREFECT_YAML.read_text()
    assert "--job-variable image=" in text and "FLOWFORGE_WORKDIR=$PWD" in text
    assert deployment()["work_pool"]["name"] == "flowforge"
