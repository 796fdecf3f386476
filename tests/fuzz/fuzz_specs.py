"""atheris fuzz target over spec parsing: a silver spec as YAML -> proto -> parse_spec, a
gold model's SQL through the guard, and a whole workflow YAML document.

Run: python tests/fuzz/fuzz_specs.py -max_total_time=10. The first byte picks the target
(modulo 3: 0 silver spec YAML, 1 gold SQL, 2 workflow YAML); the rest is the text. A clean
refusal (InvalidArgument, or the YAML loader's own parse error for a bare spec) is a
correct answer; anything else escaping, or SQL the guard passes that reads something
other than its views, is a finding.
"""

from __future__ import annotations

import sys

import atheris
import duckdb

with atheris.instrument_imports(
    include=["flowforge.specs", "services.gold.guard", "orchestrator.workflows"]
):
    import yaml

    from flowforge.errors import InvalidArgument, SpecError
    from flowforge.specs.silver import parse_spec, resolve_columns
    from orchestrator.workflows import parse_workflow, silver_spec_from_dict
    from services.gold.guard import check_model_sql

BRONZE_COLUMNS = ["customer_id", "email", "first_name", "signup_date", "lifetime_value"]
READABLE = {"silver", "dim_countries"}


def silver_yaml(text: str) -> None:
    try:
        data = yaml.safe_load(text)
    except (yaml.YAMLError, RecursionError):
        return  # the YAML library's refusal, before FlowForge sees anything
    if not isinstance(data, dict):
        return
    try:
        message = silver_spec_from_dict(data)
    except SpecError:
        return  # the document's shape refused, field named
    try:
        spec = parse_spec(message)
        resolve_columns(spec, BRONZE_COLUMNS, BRONZE_COLUMNS)
    except InvalidArgument as refused:
        assert refused.message.startswith(("spec", "bronze column")), refused.message


def gold_sql(text: str) -> None:
    try:
        query = check_model_sql("fuzzed", text, READABLE)
    except InvalidArgument as refused:
        assert refused.message.startswith("model 'fuzzed'"), refused.message
        return
    # What the guard lets through names no table but its views: binding it against a
    # catalogue holding only those views must not find anything else.
    with duckdb.connect(":memory:", config={"enable_external_access": False}) as con:
        con.execute("CREATE VIEW silver AS SELECT 1 AS x")
        con.execute("CREATE VIEW dim_countries AS SELECT 'FI' AS code")
        try:
            con.execute(f"EXPLAIN {query}")
        except duckdb.CatalogException as exc:
            # Only an unknown table is a guard escape; unknown functions or types are
            # plain bad SQL that a run reports as INVALID_ARGUMENT.
            if "Table with name" in str(exc):
                raise AssertionError(f"the guard passed a query reading elsewhere: {exc}") from None
        except duckdb.Error:
            pass  # binds fail for many reasons a run reports as INVALID_ARGUMENT


def workflow_yaml(text: str) -> None:
    try:
        parse_workflow(text, "fuzzed.yaml")
    except InvalidArgument as refused:
        assert refused.message.startswith("fuzzed.yaml"), refused.message


def test_one_input(data: bytes) -> None:
    if not data:
        return
    text = data[1:].decode("utf-8", errors="replace")
    [silver_yaml, gold_sql, workflow_yaml][data[0] % 3](text)


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
