"""Hostile workflow YAML (what `flowforge workflows apply` and the API read): refused with
INVALID_ARGUMENT naming the file, never a RecursionError or an exhausted machine.
Found by the spec fuzz target (tests/fuzz/fuzz_specs.py)."""

from __future__ import annotations

import time

import pytest

from flowforge.errors import InvalidArgument
from orchestrator.workflows import parse_workflow
from orchestrator.yamlsource import MAX_VALUES

ALIAS_BOMB = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{name}: &{name} [{', '.join(['*' + previous] * 10)}]\n"
    for previous, name in zip("abcdefgh", "bcdefghi", strict=True)
)  # nine lines, 10^9 values once expanded

CASES = {
    "deep-sequences": ("id: w\njobs: " + "[" * 5000 + "]" * 5000, "nested more than 64 levels"),
    "deep-mappings": ("id: w\njobs: " + "{a: " * 3000 + "1" + "}" * 3000, "nested more than"),
    "self-alias": ("id: w\njobs: &j [*j]\n", "an alias refers to a value that contains it"),
    "alias-bomb": (ALIAS_BOMB, f"more than {MAX_VALUES} values once aliases are expanded"),
    # Refused as the parser reaches value 20 001, not once the whole megabyte is parsed.
    "too-many-values": (
        "id: w\njobs: [" + ", ".join(["x"] * 100_000) + "]\n",
        f"more than {MAX_VALUES} values (the most a document may hold)",
    ),
    "not-a-mapping": ("- just\n- a list\n", "a workflow is a mapping"),
    "binary": ("\x00\x01\x02", "not valid YAML"),
}


@pytest.mark.parametrize(("text", "expected"), list(CASES.values()), ids=list(CASES))
def test_hostile_workflow_yaml_is_refused(text: str, expected: str) -> None:
    started = time.monotonic()
    with pytest.raises(InvalidArgument) as refused:
        parse_workflow(text, "hostile.yaml")
    assert refused.value.message.startswith("hostile.yaml"), refused.value.message
    assert expected in refused.value.message, refused.value.message
    assert time.monotonic() - started < 5
