"""Reading docker-compose.yml as compose does: YAML (anchors and merge keys) and ${VAR}
interpolation (`:-` default, `:?` required), so tests see what a container would get."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
# ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?message}, ${NAME?message}
_VARIABLE = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")


class MissingVariable(KeyError):
    pass


def raw_compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE_FILE.read_text())  # type: ignore[no-any-return]


def variables() -> dict[str, list[str]]:
    """Each interpolated variable and the operators it is used with ('' = plain)."""
    found: dict[str, list[str]] = {}
    for match in _VARIABLE.finditer(COMPOSE_FILE.read_text()):
        found.setdefault(match["name"], []).append(match["op"] or "")
    return found


def interpolate(value: Any, env: dict[str, str]) -> Any:
    if isinstance(value, dict):
        return {k: interpolate(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env) for v in value]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match[str]) -> str:
        name, op, arg = match["name"], match["op"], match["arg"]
        given = env.get(name)
        unset = given is None or (given == "" and op in (":-", ":?"))
        if not unset:
            return given  # type: ignore[return-value]
        if op in (":-", "-"):
            return arg
        if op in (":?", "?"):
            raise MissingVariable(f"{name}: {arg}")
        return ""

    return _VARIABLE.sub(substitute, value).replace("$$", "$")


def load_compose(env: dict[str, str]) -> dict[str, Any]:
    return interpolate(raw_compose(), env)  # type: ignore[no-any-return]


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: "" if v is None else str(v) for k, v in env.items()}


def long_running(services: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Services that stay up (one-shots have restart "no")."""
    return {n: s for n, s in services.items() if str(s.get("restart", "")) != "no"}


def flowforge_services(services: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {n: s for n, s in services.items() if "build" in s}


def flag(command: list[Any], name: str) -> str:
    """The value of `name=value` (weed's `-s3.port=8333` style) in a service's command."""
    values = [str(a).split("=", 1)[1] for a in command if str(a).startswith(f"{name}=")]
    assert len(values) == 1, f"{name} is given {len(values)} times in {command}"
    return values[0]
