"""Every command, port, environment variable and healthcheck in docker-compose.yml agrees
with the code: the `flowforge` CLI (typer introspection), the Settings fields, Prefect's
settings and the gRPC services each layer registers."""

from __future__ import annotations

import json
import re
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlsplit

import pytest
import typer.main

from cli.main import app
from flowforge import envfile
from flowforge.settings import Settings
from services.layers import LAYER_SERVICES
from tests.deploy.compose import (
    COMPOSE_FILE,
    ROOT,
    environment,
    flag,
    flowforge_services,
    interpolate,
    load_compose,
    long_running,
    raw_compose,
    variables,
)

CLI = typer.main.get_command(app)
SERVICES: dict[str, dict[str, Any]] = raw_compose()["services"]
PUBLISHED = {"api", "prefect-server", "seaweedfs"}  # the API, the Prefect UI, the S3 console
GRPC_NAMES = {
    "bronze": "flowforge.v1.BronzeService",
    "silver": "flowforge.v1.SilverService",
    "gold": "flowforge.v1.GoldService",
}


def resolve(args: list[str]) -> tuple[Any, dict[str, Any]]:
    """The CLI command `args` runs and its parsed parameters; fails like the CLI would on an
    unknown command or option."""
    assert args[0] == "flowforge", args
    command, name, rest = CLI, "flowforge", args[1:]
    while hasattr(command, "commands"):  # groups: compose gives no options before a command
        name, rest = rest[0], rest[1:]
        command = command.commands.get(name)
        assert command is not None, f"no command {name!r} in {args}"
    ctx = command.make_context(name, list(rest))
    return command, ctx.params


def default_of(command: Any, option: str) -> Any:
    return next(p.default for p in command.params if p.name == option)


def prefect_setting_names() -> set[str]:
    from prefect.settings import Settings as PrefectSettings
    from pydantic import BaseModel

    def walk(model: type[BaseModel]) -> set[str]:
        names = set()
        for name, field in model.model_fields.items():
            if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel):
                names |= walk(field.annotation)
                continue
            names.add(f"{model.model_config.get('env_prefix', '')}{name}".upper())
            alias = field.validation_alias  # older names Prefect still reads
            for choice in getattr(alias, "choices", [alias]):
                if isinstance(choice, str):
                    names.add(choice.upper())
        return names

    return walk(PrefectSettings)


@pytest.mark.parametrize("service", sorted(flowforge_services(SERVICES)))
def test_each_flowforge_command_exists_in_the_cli(service: str) -> None:
    args = SERVICES[service]["command"]
    if args[0] == "prefect":
        import subprocess
        import sys
        from pathlib import Path

        assert args[:3] == ["prefect", "server", "start"]
        prefect = Path(sys.executable).parent / "prefect"
        usage = subprocess.run([prefect, *args[1:3], "--help"], capture_output=True, text=True)
        for option in (a for a in args[3:] if a.startswith("--")):
            assert option in usage.stdout, f"prefect server start has no {option}"
        return
    resolve(args)


@pytest.mark.parametrize("layer", sorted(LAYER_SERVICES))
def test_layer_services_listen_on_the_cli_default_port_in_the_network_only(layer: str) -> None:
    service = SERVICES[layer]
    command, params = resolve(service["command"])
    assert params["host"] == "0.0.0.0"  # the compose network; loopback is the local default
    assert params["port"] == default_of(command, "port") == LAYER_SERVICES[layer].default_port
    assert [str(p) for p in service["expose"]] == [str(params["port"])]
    assert "ports" not in service
    assert service["deploy"]["replicas"] >= 1  # stateless: --scale works


def test_only_the_api_the_prefect_ui_and_the_s3_console_are_published() -> None:
    published = {name for name, service in SERVICES.items() if service.get("ports")}
    assert published == PUBLISHED
    ports = {name: [str(p).rsplit(":", 2) for p in SERVICES[name]["ports"]] for name in PUBLISHED}
    for name, mappings in ports.items():
        for host, outside, inside in mappings:
            assert host == "${PUBLISH_HOST:-127.0.0.1}", f"{name} publishes on every interface"
            assert outside == inside
    assert ports["seaweedfs"] == [["${PUBLISH_HOST:-127.0.0.1}", "23646", "23646"]]
    assert "-admin.port=23646" in SERVICES["seaweedfs"]["command"]
    assert ports["prefect-server"][0][2] == _option(SERVICES["prefect-server"]["command"], "--port")


def _option(args: list[str], option: str) -> str:
    return args[args.index(option) + 1]


def test_the_api_listens_where_it_is_published() -> None:
    command, params = resolve(SERVICES["api"]["command"])
    assert params["host"] == "0.0.0.0"
    assert params["port"] == default_of(command, "port")
    assert SERVICES["api"]["ports"][0].endswith(f":{params['port']}:{params['port']}")


def test_clients_reach_each_layer_by_dns_name_on_its_port() -> None:
    """dns:/// lets gRPC resolve every replica's address and round_robin over them."""
    for name in ("worker", "api", "seed"):
        env = environment(SERVICES[name])
        for layer, service in LAYER_SERVICES.items():
            address = env[f"FLOWFORGE_{layer.upper()}_ADDRESS"]
            assert address == f"dns:///{layer}:{service.default_port}", (name, address)
        prefect = urlsplit(env["PREFECT_API_URL"])
        assert prefect.hostname == "prefect-server"
        assert str(prefect.port) == _option(SERVICES["prefect-server"]["command"], "--port")


def test_every_flowforge_variable_is_a_setting() -> None:
    fields = {f"FLOWFORGE_{name.upper()}" for name in Settings.model_fields}
    for name, service in SERVICES.items():
        for key in environment(service):
            if key.startswith("FLOWFORGE_"):
                assert key in fields, f"{name}: {key} is not a FlowForge setting"


def test_the_api_takes_its_cors_origins_and_upload_limit_from_dotenv() -> None:
    """Operators set them in .env (no override file); unset or empty, the settings' defaults."""
    env = environment(SERVICES["api"])
    for setting in ("api_cors_origins", "api_upload_max_mb"):
        variable = f"FLOWFORGE_{setting.upper()}"
        assert variables().get(variable) == [":-"], f"{variable} is not passed through from .env"
        for dotenv in ({}, {variable: ""}):
            value = interpolate(env[variable], dotenv)
            parsed = Settings(**{setting: json.loads(value)})  # pydantic-settings: JSON values
            assert getattr(parsed, setting) == Settings.model_fields[setting].default, variable
    chosen = {
        "FLOWFORGE_API_CORS_ORIGINS": '["https://ui.example"]',
        "FLOWFORGE_API_UPLOAD_MAX_MB": "64",
    }
    assert {name: interpolate(env[name], chosen) for name in chosen} == chosen


def test_every_prefect_variable_is_a_prefect_setting() -> None:
    known = prefect_setting_names()
    for name, service in SERVICES.items():
        for key in environment(service):
            if key.startswith("PREFECT_"):
                assert key in known, f"{name}: {key} is not a Prefect setting"


def test_secrets_are_required_and_documented() -> None:
    """A missing secret stops `docker compose up` (`:?`); every variable is in .env.example."""
    example = envfile.render()
    secret_settings = {
        f"FLOWFORGE_{name.upper()}"
        for name, field in Settings.model_fields.items()
        if "SecretStr" in str(field.annotation)
    }
    secrets = {"POSTGRES_PASSWORD", "PREFECT_AUTH_STRING", "SEAWEEDFS_ADMIN_PASSWORD"}
    for variable, operators in variables().items():
        assert re.search(rf"^{variable}=", example, re.M), f"{variable} not in .env.example"
        if variable in secrets | secret_settings or variable.endswith(("_TOKEN", "_PASSWORD")):
            assert set(operators) == {":?"}, f"{variable} must be required, not defaulted"
    # Secrets reach containers only through variables, never written into the file.
    text = raw_compose()
    for service in text["services"].values():
        for key, value in environment(service).items():
            if any(word in key for word in ("SECRET", "TOKEN", "PASSWORD", "AUTH_STRING")):
                assert value.startswith("${"), key
            if key.endswith("DATABASE_URL") or key.endswith("CONNECTION_URL"):
                assert "${POSTGRES_PASSWORD:?" in value


def test_every_long_running_service_has_a_healthcheck_and_waits_for_healthy() -> None:
    for name, service in long_running(SERVICES).items():
        assert service.get("healthcheck", {}).get("test"), f"{name} has no healthcheck"
        for dependency, condition in (service.get("depends_on") or {}).items():
            assert condition == {"condition": "service_healthy"}, (name, dependency)


@pytest.mark.parametrize("service", sorted(flowforge_services(long_running(SERVICES))))
def test_healthchecks_call_the_cli_on_the_service_port(service: str) -> None:
    test = SERVICES[service]["healthcheck"]["test"]
    assert test[0] == "CMD"
    command, params = resolve(test[1:])
    args = SERVICES[service]["command"]
    if command.name == "grpc":
        host, port = params["address"].rsplit(":", 1)
        assert host == "127.0.0.1" and port == _option(args, "--port")
        assert params["service"] == GRPC_NAMES[service]
        assert params["service"] in _registered_grpc_services(service)
    else:
        url = urlsplit(params["url"])
        assert url.hostname == "127.0.0.1"
        if service == "worker":
            env = environment(SERVICES[service])
            assert env["PREFECT_RUNNER_SERVER_ENABLE"] == "true"
            assert str(url.port) == env["PREFECT_RUNNER_SERVER_PORT"]
            assert url.path == "/health"
        else:
            assert str(url.port) == _option(args, "--port")


def _registered_grpc_services(layer: str) -> list[str]:
    from flowforge.v1 import bronze_pb2, gold_pb2, silver_pb2

    module = {"bronze": bronze_pb2, "silver": silver_pb2, "gold": gold_pb2}[layer]
    return [s.full_name for s in module.DESCRIPTOR.services_by_name.values()]


def test_seaweedfs_image_is_the_version_the_tests_run() -> None:
    import subprocess

    from flowforge.embedded import weed_binary

    image = SERVICES["seaweedfs"]["image"]
    assert image.startswith("chrislusf/seaweedfs:")
    tag = image.split(":", 1)[1]
    version = subprocess.run([weed_binary(), "version"], capture_output=True, text=True).stdout
    assert f" {tag} " in version, (tag, version)


def test_the_worker_serves_the_deployment_flowforge_runs() -> None:
    from orchestrator.deployment import FULL_NAME

    command, params = resolve(SERVICES["worker"]["command"])
    assert f"flowforge-medallion/{params['name']}" == FULL_NAME == Settings().deployment_name


def test_flowforge_containers_run_without_privileges() -> None:
    for name, service in flowforge_services(SERVICES).items():
        assert service["cap_drop"] == ["ALL"], name
        assert "no-new-privileges:true" in service["security_opt"], name
        assert not service.get("privileged") and "user" not in service, name  # image's uid


# -- what .env sets, and the values the compose file repeats --------------------------------
DEPLOY_DOC = ROOT / "docs" / "deploy.md"
ENV_KEY = re.compile(r"\bFLOWFORGE_[A-Z0-9_]*[A-Z0-9]\b")
DOTENV = re.compile(r"(?<![\w./])\.env(?![\w.])")  # .env itself, not .env.example or stack.env


def readme_dotenv_keys_for_compose() -> set[str]:
    """The FLOWFORGE_* keys the deploy page tells a compose user to set in .env: those named
    in a paragraph (or code block) that speaks of `.env`, in the compose section or saying
    "compose" itself."""
    text = DEPLOY_DOC.read_text()
    section = text.split("# Deploy with docker compose", 1)[1].split("\n# ", 1)[0]
    keys = set()
    for paragraph in re.split(r"\n\s*\n", text):
        in_compose = paragraph in section or "compose" in paragraph
        if in_compose and DOTENV.search(paragraph):
            keys |= set(ENV_KEY.findall(paragraph))
    return keys


def test_every_key_the_readme_puts_in_dotenv_reaches_the_containers() -> None:
    """compose passes a container only the keys its file names: one the deploy page says to
    set in .env but the file leaves out would be silently ignored."""
    keys = readme_dotenv_keys_for_compose()
    # The parser finds the paragraphs at all: the secrets, another S3's switch, the API's.
    assert {"FLOWFORGE_GRPC_TOKEN", "FLOWFORGE_S3_CREATE_BUCKET",
            "FLOWFORGE_API_UPLOAD_MAX_MB"} <= keys, keys  # fmt: skip
    passed = {
        key
        for service in SERVICES.values()
        for key, value in environment(service).items()
        if value.startswith(f"${{{key}:")  # KEY: ${KEY:-default} or ${KEY:?message}
    }
    assert keys <= passed, f"the docs set {sorted(keys - passed)} in .env; compose drops them"


def test_defaults_in_the_compose_file_are_the_settings_defaults() -> None:
    """An empty .env gives the containers the settings' defaults, but for the S3 endpoint
    (the bundled SeaweedFS)."""
    for variable, operators in variables().items():
        if not variable.startswith("FLOWFORGE_") or ":-" not in operators:
            continue
        setting = variable.removeprefix("FLOWFORGE_").lower()
        value = interpolate(f"${{{variable}:-{_default_in_file(variable)}}}", {})
        if variable == "FLOWFORGE_S3_ENDPOINT_URL":
            assert urlsplit(value).hostname == "seaweedfs", value
            continue
        field = Settings.model_fields[setting]
        parsed = Settings(_env_file=None, **{setting: _as_env(value, field)})  # type: ignore[call-arg]
        assert getattr(parsed, setting) == field.default, variable


def _default_in_file(variable: str) -> str:
    defaults = set(re.findall(rf"\$\{{{variable}:-([^}}]*)\}}", COMPOSE_FILE.read_text()))
    assert len(defaults) == 1, f"{variable} has several defaults: {defaults}"
    return defaults.pop()


def _as_env(value: str, field: Any) -> Any:
    """A value as pydantic-settings reads it from the environment (lists are JSON)."""
    return json.loads(value) if "list" in str(field.annotation) else value


def test_the_env_example_marks_what_compose_does_with_each_key() -> None:
    """envfile's lists are the compose file's `${KEY:?}` and `${KEY:-}` variables."""
    used = variables()
    required = {v for v, ops in used.items() if ":?" in ops}
    optional = {v for v, ops in used.items() if ":-" in ops}
    assert set(envfile.COMPOSE_REQUIRED) == required
    assert set(envfile.COMPOSE_OPTIONAL) == optional
    assert set(envfile.COMPOSE_KEYS) == {v for v in used if not v.startswith("FLOWFORGE_")}
    assert set(envfile.COMPOSE_NOTES) <= optional
    example = envfile.render()
    for key in required:
        block = re.search(rf"((?:^#.*\n)+){key}=", example, re.M)
        assert block and "required" in block.group(1), f"{key} is not marked required"


def _healthcheck_options(test: list[str]) -> dict[str, str]:
    return {a: b for a, b in zip(test, test[1:], strict=False) if a.startswith("--")}


def _created_databases() -> dict[str, str]:
    """Database -> owner, from the postgres service's init scripts."""
    postgres = SERVICES["postgres"]
    configs = raw_compose()["configs"]
    found = {}
    for config in postgres["configs"]:
        assert config["target"].startswith("/docker-entrypoint-initdb.d/")
        assert config["target"].endswith(".sql")
        sql = configs[config["source"]]["content"]
        found |= dict(re.findall(r"CREATE DATABASE (\w+) OWNER (\w+);", sql))
    env = environment(postgres)
    return found | {env["POSTGRES_DB"]: env["POSTGRES_USER"]}


def test_database_urls_name_the_databases_the_postgres_service_creates() -> None:
    databases = _created_databases()
    assert set(databases) == {"flowforge", "prefect"}
    urls = {
        "flowforge": environment(SERVICES["worker"])["FLOWFORGE_DATABASE_URL"],
        "prefect": environment(SERVICES["prefect-server"])[
            "PREFECT_SERVER_DATABASE_CONNECTION_URL"
        ],
    }
    for service in ("api", "seed"):
        assert environment(SERVICES[service])["FLOWFORGE_DATABASE_URL"] == urls["flowforge"]
    user = environment(SERVICES["postgres"])["POSTGRES_USER"]
    for database, url in urls.items():
        parts = urlsplit(interpolate(url, {"POSTGRES_PASSWORD": "pw"}))
        assert (parts.hostname, parts.port) == ("postgres", 5432), url
        assert parts.username == user == databases[database]
        assert (parts.password, parts.path) == ("pw", f"/{database}")


URL_KEYS = [
    ("worker", "FLOWFORGE_DATABASE_URL"),
    ("prefect-server", "PREFECT_SERVER_DATABASE_CONNECTION_URL"),
]


def test_a_url_safe_postgres_password_survives_the_database_urls() -> None:
    """POSTGRES_PASSWORD goes into the URLs as it is; .env.example asks for URL-safe
    characters (token_urlsafe), and those come out of the URL unchanged."""
    import secrets

    from sqlalchemy.engine import make_url

    assert "URL-safe" in envfile.COMPOSE_KEYS["POSTGRES_PASSWORD"]
    for password in [secrets.token_urlsafe(32) for _ in range(20)] + ["-_~.AZaz09"]:
        for service, key in URL_KEYS:
            raw = environment(SERVICES[service])[key]
            url = make_url(interpolate(raw, {"POSTGRES_PASSWORD": password}))
            assert (url.password, url.host) == (password, "postgres")
    # What it guards against: '@' or '/' in the password moves the host.
    worker = environment(SERVICES["worker"])["FLOWFORGE_DATABASE_URL"]
    assert make_url(interpolate(worker, {"POSTGRES_PASSWORD": "a@b/c"})).host != "postgres"


def test_postgres_is_healthy_only_once_the_prefect_database_exists() -> None:
    """The first start runs the init scripts on a server listening on the Unix socket only;
    a TCP probe of the database the last script creates waits for the real server."""
    test = SERVICES["postgres"]["healthcheck"]["test"]
    assert test[:2] == ["CMD", "pg_isready"]
    options = _healthcheck_options(test)
    assert options["--host"] == "127.0.0.1"  # TCP, not the socket
    assert options["--username"] == environment(SERVICES["postgres"])["POSTGRES_USER"]
    created = [d for d in _created_databases() if d != "flowforge"]
    assert options["--dbname"] == created[-1] == "prefect"


def _seconds(duration: str) -> float:
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h)", duration)
    assert parts and "".join(n + u for n, u in parts) == duration, duration
    return sum(float(n) * units[u] for n, u in parts)


def test_the_prefect_server_has_time_for_its_first_migrations() -> None:
    """Migrating an empty prefect database takes a minute or more on a small machine;
    failures in the start period do not count, a success still counts at once."""
    check = SERVICES["prefect-server"]["healthcheck"]
    assert _seconds(check["start_period"]) >= 120
    assert SERVICES["prefect-server"]["depends_on"]["postgres"] == {"condition": "service_healthy"}


def test_seaweedfs_listens_where_everything_reaches_it() -> None:
    """-s3.port, -ip (the address SeaweedFS gives out: the service name), the clients'
    default endpoint, the healthcheck and the topology test's port substitution agree."""
    from tests.deploy.topology import Topology

    command = SERVICES["seaweedfs"]["command"]
    port = int(flag(command, "-s3.port"))
    assert flag(command, "-ip") == "seaweedfs" and "seaweedfs" in SERVICES
    assert flag(command, "-ip.bind") == "0.0.0.0"
    endpoint = urlsplit(_default_in_file("FLOWFORGE_S3_ENDPOINT_URL"))
    assert (endpoint.scheme, endpoint.hostname, endpoint.port) == ("http", "seaweedfs", port)
    health = urlsplit(SERVICES["seaweedfs"]["healthcheck"]["test"][-1])
    assert (health.hostname, health.port, health.path) == ("127.0.0.1", port, "/healthz")
    stack = SimpleNamespace(services=SERVICES)  # what the property reads
    assert Topology.s3_port.fget(stack) == port  # type: ignore[attr-defined]


def test_the_seaweedfs_identities_are_the_grants_of_the_code() -> None:
    """The S3 config compose mounts into SeaweedFS holds the shared identity and one per
    component with flowforge/identities.py's actions, each with its own keys from .env; each
    layer service gets its own keys, the orchestrator side the shared ones."""
    from flowforge.identities import ADMIN, COMPONENTS, seaweedfs_config

    dotenv = {variable: f"value-of-{variable}" for variable in variables()}
    compose = load_compose(dotenv)
    seaweedfs = compose["services"]["seaweedfs"]
    (mount,) = seaweedfs["configs"]
    assert flag(seaweedfs["command"], "-s3.config") == mount["target"]
    config = json.loads(compose["configs"][mount["source"]]["content"])
    keys = {ADMIN: ("FLOWFORGE_S3_ACCESS_KEY_ID", "FLOWFORGE_S3_SECRET_ACCESS_KEY")} | {
        c: tuple(f"FLOWFORGE_S3_{c.upper()}_{k}" for k in ("ACCESS_KEY_ID", "SECRET_ACCESS_KEY"))
        for c in COMPONENTS
    }
    bucket = dotenv["FLOWFORGE_S3_BUCKET"]
    assert config == seaweedfs_config(
        bucket, {name: (dotenv[a], dotenv[s]) for name, (a, s) in keys.items()}
    )
    assert not any(key.startswith("AWS_") for key in environment(seaweedfs))
    for layer in ("bronze", "silver", "gold"):
        env = environment(compose["services"][layer])
        own = {k for k in env if k.startswith(f"FLOWFORGE_S3_{layer.upper()}_")}
        assert own == {f"FLOWFORGE_S3_{layer.upper()}_ACCESS_KEY_ID",
                       f"FLOWFORGE_S3_{layer.upper()}_SECRET_ACCESS_KEY"}  # fmt: skip
    for service in ("api", "worker", "seed"):
        env = environment(compose["services"][service])
        assert not any(k.startswith(tuple(f"FLOWFORGE_S3_{c.upper()}_" for c in COMPONENTS))
                       for k in env)  # fmt: skip
