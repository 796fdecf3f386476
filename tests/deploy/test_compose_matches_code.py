"""Every command, port, environment variable and healthcheck in docker-compose.yml agrees
with the code: the `flowforge` CLI (typer introspection), the Settings fields, Prefect's
settings and the gRPC services each layer registers."""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import urlsplit

import pytest
import typer.main

from flowforge import envfile
from flowforge.cli import app
from flowforge.services_registry import LAYER_SERVICES
from flowforge.settings import Settings
from tests.deploy.compose import (
    environment,
    flowforge_services,
    interpolate,
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


def api_available() -> bool:
    return "api" in CLI.commands["serve"].commands  # type: ignore[attr-defined]


def skip_api_until_it_exists(service: str) -> None:
    if service == "api" and not api_available():
        pytest.skip("`flowforge serve api` arrives with the executions API (issue 6)")


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
    skip_api_until_it_exists(service)
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
    skip_api_until_it_exists("api")
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
        if name == "api" and not api_available():
            continue
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
        if variable == "FLOWFORGE_API_TOKEN" and not api_available():
            continue
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
    skip_api_until_it_exists(service)
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
