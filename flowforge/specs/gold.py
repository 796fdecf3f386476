"""The gold spec of a job, validated field by field (SpecError naming the field's path)."""

from __future__ import annotations

from dataclasses import dataclass, field

from flowforge.errors import InvalidArgument, SpecError
from flowforge.ids import validate_id
from flowforge.v1 import gold_pb2

PROFILE_MODEL = "profile"
DEFAULT_PREVIEW_ROWS = 20
MAX_PREVIEW_ROWS = 100


@dataclass(frozen=True)
class Model:
    name: str
    sql: str


@dataclass(frozen=True)
class GoldSpec:
    models: list[Model] = field(default_factory=list)
    dimensions: list[str] = field(default_factory=list)
    profile: bool = True
    preview_rows: int = DEFAULT_PREVIEW_ROWS


def parse_gold_spec(message: gold_pb2.GoldSpec) -> GoldSpec:
    models, seen = [], set()
    for i, model in enumerate(message.models):
        name = _id(model.name, ("models", i, "name"))
        if name.lower() in seen:
            raise SpecError(("models", i, "name"), f"{name!r} is used by another model")
        if name.lower() == PROFILE_MODEL and not message.skip_profile:
            raise SpecError(
                ("models", i, "name"),
                f"{name!r} is the built-in profile's name: rename the model or set skip_profile",
            )
        seen.add(name.lower())
        models.append(Model(name, model.sql))
    dimensions: list[str] = []
    for i, name in enumerate(message.dimensions):
        if _id(name, ("dimensions", i)) not in dimensions:
            dimensions.append(name)
    if not 0 <= message.preview_rows <= MAX_PREVIEW_ROWS:
        raise SpecError(("preview_rows",), f"must be between 0 and {MAX_PREVIEW_ROWS}")
    if not models and message.skip_profile:
        raise SpecError((), "has no models and skip_profile is set: nothing to build")
    return GoldSpec(
        models=models,
        dimensions=dimensions,
        profile=not message.skip_profile,
        preview_rows=message.preview_rows or DEFAULT_PREVIEW_ROWS,
    )


def _id(value: str, path: tuple[str | int, ...]) -> str:
    try:
        return validate_id(value, "x")
    except InvalidArgument as exc:
        raise SpecError(path, exc.message.removeprefix("x ")) from None
