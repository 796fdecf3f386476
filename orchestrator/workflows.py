"""Workflow definitions: a YAML file naming a workflow's jobs, their specs and dimensions.

    id: customer-data
    name: Customer data
    dimensions: [countries]
    jobs:
      - id: customers
        csv: {delimiter: ","}
        silver: {columns: [...], expectations: [...], dedupe: {...}}   # a SilverSpec
        gold: {models: [{name: by_country, sql_file: models/by_country.sql}]}
        trigger: {on_upload: true, debounce_seconds: 30}                 # optional
        schedule: {cron: "0 6 * * *", timezone: Europe/Berlin}           # optional
    gold:                      # the workflow's own models, over all of its jobs
      dimensions: [countries]
      models: [{name: revenue, sql_file: models/revenue.sql}]   # reads silver.<job>, ...
    schedule: {cron: "0 7 * * *", timezone: Europe/Berlin}  # optional: a whole workflow run
    notify: {webhooks: [{url: https://..., format: slack}]}             # optional
    landing_retention_days: 30                                          # optional

Every error names the field and the line: `customer-data.yaml:14: jobs[0].silver.columns[2].type
'integr' is not a type; ...`; a workflow model's also the table and the line of its SQL:
`customer-data.yaml:97: gold.models[1].sql: line 3: silver.refunds is not a job of workflow
'customer-data' (jobs: customers, orders, products)`. SQL files are read relative to the
YAML file, at load time, so the stored definition is self-contained.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from flowforge.errors import InvalidArgument, SpecError
from flowforge.ids import validate_id
from flowforge.specs.documents import UnknownKey, silver_spec_from_document, unknown_key
from flowforge.specs.gold import parse_gold_spec, parse_workflow_gold_spec
from flowforge.v1 import bronze_pb2, gold_pb2, silver_pb2
from orchestrator.automation_spec import Notify, Schedule, Trigger
from orchestrator.yamlsource import Path as YamlPath
from orchestrator.yamlsource import SourceMap, dotted, load_yaml

_STRICT = ConfigDict(extra="forbid", frozen=True)


def _id(value: str) -> str:
    try:
        return validate_id(value, "id")
    except InvalidArgument as exc:
        raise ValueError(exc.message.removeprefix("id ")) from None


class CsvSettings(BaseModel):
    """Bronze CSV options; empty values mean sniff (delimiter, header) or the default."""

    model_config = _STRICT
    delimiter: str = ""
    quote: str = ""
    escape: str = ""
    header: bool | None = None
    encoding: str = ""
    null_markers: list[str] = Field(default_factory=list)

    def to_proto(self) -> bronze_pb2.CsvOptions:
        return bronze_pb2.CsvOptions(**self.model_dump(exclude_none=True))


class GoldModel(BaseModel):
    model_config = _STRICT
    name: str
    sql: str | None = None
    sql_file: str | None = None

    _name = field_validator("name")(_id)

    @model_validator(mode="after")
    def _one_source(self) -> GoldModel:
        if (self.sql is None) == (self.sql_file is None):
            raise ValueError("give exactly one of sql and sql_file")
        return self


def _once_each(values: list[str], what: str) -> None:
    seen: set[str] = set()
    for value in values:
        if value in seen:
            raise ValueError(f"{what} {value!r} is used twice")
        seen.add(value)


class GoldSettings(BaseModel):
    model_config = _STRICT
    models: list[GoldModel] = Field(default_factory=list)
    skip_profile: bool = False
    preview_rows: int = Field(default=0, ge=0, le=100)

    @field_validator("models")
    @classmethod
    def _unique(cls, models: list[GoldModel]) -> list[GoldModel]:
        _once_each([m.name for m in models], "model name")
        return models


class WorkflowGoldSettings(BaseModel):
    """The workflow's own gold models: they read `silver.<job_id>` of its jobs,
    `gold.<model>` of each other and `dim_<name>` of the dimensions listed here."""

    model_config = _STRICT
    models: list[GoldModel] = Field(min_length=1)
    dimensions: list[str] = Field(default_factory=list)
    preview_rows: int = Field(default=0, ge=0, le=100)

    @field_validator("models")
    @classmethod
    def _unique(cls, models: list[GoldModel]) -> list[GoldModel]:
        _once_each([m.name for m in models], "model name")
        return models

    @field_validator("dimensions")
    @classmethod
    def _dimension_ids(cls, names: list[str]) -> list[str]:
        return [_id(name) for name in names]


class Job(BaseModel):
    model_config = _STRICT
    id: str
    name: str = ""
    description: str = ""
    csv: CsvSettings = Field(default_factory=CsvSettings)
    silver: dict[str, Any] = Field(default_factory=dict)
    gold: GoldSettings = Field(default_factory=GoldSettings)
    trigger: Trigger = Field(default_factory=Trigger)
    schedule: Schedule | None = None

    _job_id = field_validator("id")(_id)

    def silver_spec(self) -> silver_pb2.SilverSpec:
        return silver_spec_from_dict(self.silver)

    def gold_spec(self, dimensions: list[str]) -> gold_pb2.GoldSpec:
        return gold_pb2.GoldSpec(
            models=[gold_pb2.Model(name=m.name, sql=m.sql or "") for m in self.gold.models],
            dimensions=dimensions,
            skip_profile=self.gold.skip_profile,
            preview_rows=self.gold.preview_rows,
        )


class Workflow(BaseModel):
    model_config = _STRICT
    id: str
    name: str = ""
    description: str = ""
    dimensions: list[str] = Field(default_factory=list)
    jobs: list[Job] = Field(min_length=1)
    gold: WorkflowGoldSettings | None = None
    schedule: Schedule | None = None  # a whole workflow run on a cron
    notify: Notify | None = None
    landing_retention_days: float | None = Field(default=None, gt=0)

    _workflow_id = field_validator("id")(_id)

    @field_validator("dimensions")
    @classmethod
    def _dimension_ids(cls, names: list[str]) -> list[str]:
        return [_id(name) for name in names]

    @field_validator("jobs")
    @classmethod
    def _unique_jobs(cls, jobs: list[Job]) -> list[Job]:
        _once_each([j.id for j in jobs], "job id")
        return jobs

    def workflow_gold_spec(self) -> gold_pb2.WorkflowGoldSpec | None:
        """The spec of the workflow's own gold, for GoldService.BuildWorkflow (None: none)."""
        if self.gold is None:
            return None
        return gold_pb2.WorkflowGoldSpec(
            models=[gold_pb2.Model(name=m.name, sql=m.sql or "") for m in self.gold.models],
            dimensions=self.gold.dimensions,
            preview_rows=self.gold.preview_rows,
        )

    def job(self, job_id: str) -> Job:
        for job in self.jobs:
            if job.id == job_id:
                return job
        known = ", ".join(j.id for j in self.jobs)
        raise InvalidArgument(f"workflow {self.id!r} has no job {job_id!r} (jobs: {known})")


def silver_spec_from_dict(data: dict[str, Any]) -> silver_pb2.SilverSpec:
    """The YAML/JSON form of a SilverSpec (proto field names) as the proto message."""
    return silver_spec_from_document(data)


def parse_workflow(
    text: str, name: str = "workflow.yaml", base_dir: Path | None = None
) -> Workflow:
    """Validates a workflow YAML document, reading each `sql_file` relative to base_dir."""
    data, source = load_yaml(text, name)
    return workflow_of(data, source, base_dir)


def workflow_of(data: Any, source: SourceMap, base_dir: Path | None = None) -> Workflow:
    """Validates a parsed workflow document (load_yaml's data and source map)."""
    if not isinstance(data, dict):
        raise InvalidArgument(f"{source.where(())}: a workflow is a mapping with id and jobs")
    _check_unique_ids(data, source)
    try:
        workflow = Workflow.model_validate(data)
    except ValidationError as exc:
        raise _first_error(exc, source) from None
    jobs = []
    for j, job in enumerate(workflow.jobs):
        _check_silver(job, ("jobs", j, "silver"), source)
        models = []
        for m, model in enumerate(job.gold.models):
            if model.sql_file is not None:
                path = ("jobs", j, "gold", "models", m, "sql_file")
                sql = _read_sql((base_dir or Path.cwd()) / model.sql_file, path, source)
                model = model.model_copy(update={"sql": sql, "sql_file": None})
            models.append(model)
        gold = job.gold.model_copy(update={"models": models})
        job = job.model_copy(update={"gold": gold})
        _check_gold(job, workflow.dimensions, ("jobs", j, "gold"), source)
        jobs.append(job)
    workflow = workflow.model_copy(update={"jobs": jobs})
    if workflow.gold is not None:
        workflow = _with_workflow_gold(workflow, base_dir, source)
    return workflow


def load_workflow_file(path: Path) -> Workflow:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidArgument(f"{path}: cannot read the workflow file ({exc})") from None
    return parse_workflow(text, str(path), path.parent)


def _check_unique_ids(data: dict[str, Any], source: SourceMap) -> None:
    """Names the second of two jobs (or models) sharing an id, with its line."""

    def check(items: Any, key: str, at: YamlPath) -> None:
        seen: set[Any] = set()
        for i, item in enumerate(items if isinstance(items, list) else []):
            value = item.get(key) if isinstance(item, dict) else None
            if value is not None and value in seen:
                path = (*at, i, key)
                raise InvalidArgument(
                    f"{source.where(path)}: {dotted(path)} {value!r} is used twice"
                )
            seen.add(value)

    jobs = data.get("jobs")
    check(jobs, "id", ("jobs",))
    for j, job in enumerate(jobs if isinstance(jobs, list) else []):
        gold = job.get("gold") if isinstance(job, dict) else None
        if isinstance(gold, dict):
            check(gold.get("models"), "name", ("jobs", j, "gold", "models"))
    gold = data.get("gold")
    if isinstance(gold, dict):
        check(gold.get("models"), "name", ("gold", "models"))


def _first_error(exc: ValidationError, source: SourceMap) -> InvalidArgument:
    error = exc.errors()[0]
    path = tuple(p for p in error["loc"] if not str(p).startswith("function-"))
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        known = _keys_at(path[:-1])
        return _at(source, path[:-1], f": {unknown_key(str(path[-1]), known)}", key=path)
    if error["type"] == "missing":
        message = "is required"
    elif error["type"] in ("list_type", "dict_type", "model_type", "string_type", "bool_type"):
        message = f"must be {_EXPECTED[error['type']]}"
    return _at(source, path, message)


_EXPECTED = {
    "list_type": "a list",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "string_type": "text",
    "bool_type": "true or false",
}


def _keys_at(path: YamlPath) -> list[str]:
    """The keys the workflow schema allows at `path` (for a misspelled key's hint)."""
    model: type[BaseModel] = Workflow
    for part in path:
        if isinstance(part, int):
            continue
        annotation = model.model_fields[str(part)].annotation
        inner = next((a for a in get_args(annotation) if isinstance(a, type)), annotation)
        if not (isinstance(inner, type) and issubclass(inner, BaseModel)):
            return []
        model = inner
    return list(model.model_fields)


def _at(
    source: SourceMap, path: YamlPath, detail: str, key: YamlPath | None = None
) -> InvalidArgument:
    """`file.yaml:LINE: jobs[0].silver.columns[2].type DETAIL`, at the line of `key` (the
    offending key itself) or else of `path`."""
    where = source.where(key or path)
    if not path and detail.startswith(": "):
        return InvalidArgument(f"{where}: {detail[2:]}")
    text = dotted(path) or "workflow"
    return InvalidArgument(f"{where}: {text}{'' if detail.startswith(':') else ' '}{detail}")


def _check_silver(job: Job, at: YamlPath, source: SourceMap) -> None:
    """One validation for the orchestrator and the service: the document read into the
    proto, then silver's own parse_spec; each error carries its path inside the spec."""
    from flowforge.specs.silver import parse_spec  # polars: imported only when validating

    try:
        parse_spec(silver_spec_from_document(job.silver))
    except SpecError as exc:
        path = (*at, *exc.path)
        key = (*path, exc.key) if isinstance(exc, UnknownKey) else path
        raise _at(source, path, exc.detail, key=key) from None


def _check_gold(job: Job, dimensions: list[str], at: YamlPath, source: SourceMap) -> None:
    """The gold service's own validation of the spec the job will send it."""
    try:
        parse_gold_spec(job.gold_spec(dimensions))
    except SpecError as exc:
        path = exc.path if exc.path[:1] == ("dimensions",) else (*at, *exc.path)
        raise _at(source, path, exc.detail) from None


def _with_workflow_gold(workflow: Workflow, base_dir: Path | None, source: SourceMap) -> Workflow:
    """The workflow with its own models' SQL files read, checked as GoldService checks
    them: every `silver.<job>`, `gold.<model>` and `dim_<name>` known, no cycle."""
    assert workflow.gold is not None
    models, files = [], {}
    for m, model in enumerate(workflow.gold.models):
        if model.sql_file is not None:
            path = ("gold", "models", m, "sql_file")
            sql = _read_sql((base_dir or Path.cwd()) / model.sql_file, path, source)
            files[m] = model.sql_file
            model = model.model_copy(update={"sql": sql, "sql_file": None})
        models.append(model)
    workflow = workflow.model_copy(
        update={"gold": workflow.gold.model_copy(update={"models": models})}
    )
    spec = workflow.workflow_gold_spec()
    assert spec is not None
    try:
        parse_workflow_gold_spec(spec, workflow.id, [j.id for j in workflow.jobs])
    except SpecError as exc:
        at: YamlPath = ("gold", *exc.path)
        detail = exc.detail
        if len(exc.path) == 3 and exc.path[2] == "sql" and exc.path[1] in files:
            # The SQL came from a file: point at the file's key and name it.
            at = ("gold", "models", exc.path[1], "sql_file")
            detail = f"{files[int(exc.path[1])]!r}{detail}"
        raise _at(source, at, detail) from None
    return workflow


def _read_sql(file: Path, path: YamlPath, source: SourceMap) -> str:
    try:
        return file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise InvalidArgument(
            f"{source.where(path)}: {dotted(path)} {str(file)!r} cannot be read: {reason}"
        ) from None


def reads_dimension(workflow: Workflow, name: str) -> bool:
    """Whether the workflow lists dimension `name` (for its jobs or its own models)."""
    own = workflow.gold.dimensions if workflow.gold is not None else []
    return name in workflow.dimensions or name in own
