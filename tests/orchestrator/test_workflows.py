"""Workflow YAML: the sample parses into the specs the services take; errors name field and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from flowforge.errors import InvalidArgument
from orchestrator.workflows import Workflow, load_workflow_file, parse_workflow
from tests.orchestrator.conftest import ROOT

GOOD_JOB = """\
id: wf
name: A workflow
jobs:
  - id: things
    silver:
      columns:
        - {source: id, type: integer}
"""


def error_of(text: str, base_dir: Path | None = None) -> str:
    with pytest.raises(InvalidArgument) as caught:
        parse_workflow(text, "wf.yaml", base_dir)
    return caught.value.message


def test_sample_workflow_gives_each_service_its_spec(sample_workflow: Workflow) -> None:
    assert sample_workflow.id == "customer-data"
    assert [j.id for j in sample_workflow.jobs] == ["customers", "orders", "products"]
    customers = sample_workflow.job("customers")
    assert customers.csv.to_proto().delimiter == ","
    spec = customers.silver_spec()
    assert [c.source for c in spec.columns][:2] == ["customer_id", "first_name"]
    assert list(spec.dedupe.keys) == ["customer_id"]
    gold = customers.gold_spec(sample_workflow.dimensions)
    assert list(gold.dimensions) == ["countries"]
    by_country = ROOT / "examples/models/customer-data/customers/customers_by_country.sql"
    assert gold.models[0].sql == by_country.read_text()  # read relative to the YAML file
    assert all(m.sql_file is None for j in sample_workflow.jobs for m in j.gold.models)


def test_round_trip_through_json(sample_workflow: Workflow) -> None:
    again = Workflow.model_validate(sample_workflow.model_dump(mode="json"))
    assert again == sample_workflow
    assert again.job("orders").silver_spec() == sample_workflow.job("orders").silver_spec()


def test_explicit_empty_null_markers_mean_no_nulls() -> None:
    workflow = parse_workflow(GOOD_JOB.replace("integer}", "integer, null_markers: []}"))
    assert workflow.jobs[0].silver_spec().columns[0].null_markers_set


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            GOOD_JOB.replace("name: A", "nmae: A"),
            "wf.yaml:2: unknown key 'nmae' (did you mean 'name'?)",
        ),
        (GOOD_JOB.replace("id: wf", "id: 'w f'"), "wf.yaml:1: id 'w f' is not a valid ID"),
        (GOOD_JOB.replace("id: things", "id: ../x"), "wf.yaml:4: jobs[0].id '../x' is not a valid"),
        (
            GOOD_JOB.replace("type: integer", "type: integr"),
            "wf.yaml:7: jobs[0].silver.columns[0].type 'integr' is not a type",
        ),
        (
            GOOD_JOB.replace("type: integer", "typ: integer"),
            "wf.yaml:7: jobs[0].silver.columns[0]: unknown key 'typ' (did you mean 'type'?)",
        ),
        (
            GOOD_JOB + "      dedupe: {keys: [nope]}\n",
            "wf.yaml:8: jobs[0].silver.dedupe.keys[0] 'nope' is not a silver column",
        ),
        (
            GOOD_JOB + "    gold: {models: [{name: m}]}\n",
            "wf.yaml:8: jobs[0].gold.models[0] give exactly one of sql and sql_file",
        ),
        (
            GOOD_JOB + "    gold: {models: [{name: m, sql_file: missing.sql}]}\n",
            "wf.yaml:8: jobs[0].gold.models[0].sql_file",
        ),
        (
            GOOD_JOB + "  - id: things\n",
            "wf.yaml:8: jobs[1].id 'things' is used twice",
        ),
        (
            GOOD_JOB + "    gold: {models: [{name: m, sql: SELECT 1}, {name: m, sql: SELECT 2}]}\n",
            "wf.yaml:8: jobs[0].gold.models[1].name 'm' is used twice",
        ),
        ("id: wf\njobs: []\n", "wf.yaml:2: jobs List should have at least 1 item"),
        ("id: wf\njobs:\n  - {id: a\n", "wf.yaml:4: not valid YAML"),
        ("- just a list\n", "wf.yaml:1: a workflow is a mapping"),
    ],
)
def test_errors_name_the_field_and_line(text: str, expected: str, tmp_path: Path) -> None:
    assert expected in error_of(text, tmp_path)


MULTILINE = """\
id: wf
jobs:
  - id: things
    silver:
      columns:
        - source: when
          type: date
          format: ["%d.%m.%Y"]
      dedupe:
        keys: when
    gold:
      models: []
"""


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            MULTILINE,
            "wf.yaml:8: jobs[0].silver.columns[0]: unknown key 'format' (did you mean 'formats'?)",
        ),
        (
            MULTILINE.replace("format:", "formats:"),
            "wf.yaml:10: jobs[0].silver.dedupe.keys must be a list, not the text 'when'",
        ),
        (
            MULTILINE.replace("models:", "modles:"),
            "wf.yaml:12: jobs[0].gold: unknown key 'modles' (did you mean 'models'?)",
        ),
    ],
)
def test_a_misspelled_key_or_a_wrong_shape_is_named_at_its_own_line(
    text: str, expected: str
) -> None:
    message = error_of(text)
    assert message == expected
    # snake_case names only: nothing internal, nothing from the proto's JSON mapping
    assert "Set" not in message and "null_markers_set" not in message


def test_an_unknown_key_far_from_any_known_one_lists_the_known_keys() -> None:
    message = error_of(GOOD_JOB.replace("type: integer", "zzzz: integer"))
    assert "unknown key 'zzzz' (known keys: source, target, type, formats" in message
    assert "null_markers_set" not in message


def test_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument, match="cannot read the workflow file"):
        load_workflow_file(tmp_path / "nope.yaml")
