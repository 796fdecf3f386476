"""The gold specs of a job and of a workflow, validated field by field (SpecError naming the
field's path; a workflow model's SQL also by the line of what it reads)."""

from __future__ import annotations

from dataclasses import dataclass, field

from flowforge.errors import InvalidArgument, SpecError
from flowforge.ids import validate_id
from flowforge.sqlrefs import SqlRefused, TableName, parse_query, tables_read
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


# -- a workflow's own gold ------------------------------------------------------------

SILVER_SCHEMA, GOLD_SCHEMA, DIMENSION_PREFIX = "silver", "gold", "dim_"


@dataclass(frozen=True)
class WorkflowModel:
    """A workflow model and what its SQL reads (names as the workflow spells them)."""

    name: str
    sql: str
    jobs: list[str] = field(default_factory=list)  # silver.<job>
    models: list[str] = field(default_factory=list)  # gold.<model>
    dimensions: list[str] = field(default_factory=list)  # dim_<name>


@dataclass(frozen=True)
class WorkflowGold:
    """The models in the order they run: each after every model it reads."""

    models: list[WorkflowModel]
    dimensions: list[str]
    preview_rows: int = DEFAULT_PREVIEW_ROWS


def parse_workflow_gold_spec(
    message: gold_pb2.WorkflowGoldSpec, workflow_id: str, jobs: list[str]
) -> WorkflowGold:
    """Validates the spec against the workflow's jobs; the references come from DuckDB's
    parse of each model's SQL (flowforge/sqlrefs.py), errors name the model's field and
    the line of its SQL: `models[1].sql: line 3: silver.refunds is not a job of ...`."""
    dimensions: list[str] = []
    for i, name in enumerate(message.dimensions):
        if _id(name, ("dimensions", i)) not in dimensions:
            dimensions.append(name)
    if not 0 <= message.preview_rows <= MAX_PREVIEW_ROWS:
        raise SpecError(("preview_rows",), f"must be between 0 and {MAX_PREVIEW_ROWS}")
    if not message.models:
        raise SpecError(("models",), "is empty: a workflow's gold needs at least one model")
    names: dict[str, str] = {}
    for i, model in enumerate(message.models):
        name = _id(model.name, ("models", i, "name"))
        if name.lower() in names:
            raise SpecError(("models", i, "name"), f"{name!r} is used by another model")
        names[name.lower()] = name
    scope = _Scope(workflow_id, jobs, names, dimensions)
    models = [scope.model(i, m.name, m.sql) for i, m in enumerate(message.models)]
    return WorkflowGold(
        models=dependency_order(models, scope.lines),
        dimensions=dimensions,
        preview_rows=message.preview_rows or DEFAULT_PREVIEW_ROWS,
    )


class _Scope:
    """What a workflow model may name: the workflow's jobs, models and listed dimensions."""

    def __init__(
        self, workflow_id: str, jobs: list[str], models: dict[str, str], dimensions: list[str]
    ) -> None:
        self.workflow_id = workflow_id
        self.jobs = {j.lower(): j for j in jobs}
        self.job_list = ", ".join(jobs) or "none"
        self.models = models
        self.dimensions = {d.lower(): d for d in dimensions}
        # (model, model it reads) -> where: for the message about a cycle.
        self.lines: dict[tuple[str, str], tuple[int, str]] = {}

    def model(self, index: int, name: str, sql: str) -> WorkflowModel:
        path = ("models", index, "sql")
        try:
            read = tables_read(parse_query(sql))
        except SqlRefused as exc:
            raise SpecError(path, f": {exc.detail}") from None
        found = WorkflowModel(name, sql)
        for table in read:
            kind, target = self.resolve(name, table)
            bucket = {"job": found.jobs, "model": found.models, "dimension": found.dimensions}
            if target not in bucket[kind]:
                bucket[kind].append(target)
            if kind == "model":
                self.lines.setdefault((name, target), (index, table.where))
        return found

    def resolve(self, model: str, table: TableName) -> tuple[str, str]:
        """("job" | "model" | "dimension", its name); SpecError when it is none of them."""
        schema, lowered = table.schema.lower(), table.name.lower()
        where = f": {table.where}: {table.shown}"
        if not table.catalog and schema == SILVER_SCHEMA:
            if lowered in self.jobs:
                return "job", self.jobs[lowered]
            raise self._error(model, f"{where} is not a job of workflow {self.workflow_id!r} "
                              f"(jobs: {self.job_list})")  # fmt: skip
        if not table.catalog and schema == GOLD_SCHEMA:
            if lowered == model.lower():
                raise self._error(model, f"{where} is the model itself: a model cannot read "
                                  "its own output")  # fmt: skip
            if lowered in self.models:
                return "model", self.models[lowered]
            known = ", ".join(self.models.values())
            raise self._error(model, f"{where} is not a model of this gold (models: {known})")
        if not table.catalog and not schema and lowered.startswith(DIMENSION_PREFIX):
            dimension = lowered.removeprefix(DIMENSION_PREFIX)
            if dimension in self.dimensions:
                return "dimension", self.dimensions[dimension]
            raise self._error(model, f"{where} reads dimension {dimension!r}, which the "
                              "gold's dimensions do not list")  # fmt: skip
        raise self._error(
            model,
            f"{where}: a workflow model reads only silver.<job> (the workflow's jobs), "
            "gold.<model> (its other models) and dim_<dimension> (the listed dimensions)",
        )

    def _error(self, model: str, detail: str) -> SpecError:
        index = list(self.models.values()).index(model)
        return SpecError(("models", index, "sql"), detail)


def dependency_order(
    models: list[WorkflowModel], lines: dict[tuple[str, str], tuple[int, str]]
) -> list[WorkflowModel]:
    """The models, each after the models it reads (else in the spec's order); a cycle is a
    SpecError at the reference that closes it."""
    done: list[WorkflowModel] = []
    waiting = list(models)
    while waiting:
        ready = next(
            (m for m in waiting if all(d in {x.name for x in done} for d in m.models)), None
        )
        if ready is None:
            raise _cycle(waiting, lines)
        done.append(ready)
        waiting.remove(ready)
    return done


def _cycle(
    waiting: list[WorkflowModel], lines: dict[tuple[str, str], tuple[int, str]]
) -> SpecError:
    by_name = {m.name: m for m in waiting}
    path = [waiting[0].name]
    while True:
        following = next(d for d in by_name[path[-1]].models if d in by_name)
        if following in path:
            cycle = [*path[path.index(following) :], following]
            index, where = lines[(cycle[-2], following)]
            return SpecError(
                ("models", index, "sql"),
                f": {where}: gold.{following} closes a cycle ({' -> '.join(cycle)}): "
                "a model cannot read, directly or not, its own output",
            )
        path.append(following)
