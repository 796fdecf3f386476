"""Renders .env.example from the Settings model, so the example never drifts from the code."""

from __future__ import annotations

from pathlib import Path

from pydantic import SecretStr

from flowforge.settings import Settings

HEADER = """\
# FlowForge settings. Copy to .env and edit; every key is optional unless noted.
# Generated from flowforge/settings.py by `python -m flowforge.envfile` (a test checks it).
"""


# Keys only docker-compose.yml reads (the FLOWFORGE_* keys above are read by FlowForge too).
COMPOSE_KEYS = {
    "POSTGRES_PASSWORD": "docker compose (required): password of the PostgreSQL user flowforge.",
    "PREFECT_AUTH_STRING": "docker compose (required): user:password of the Prefect API and UI.",
    "SEAWEEDFS_ADMIN_PASSWORD": "docker compose (required): password of the SeaweedFS console.",
    "PUBLISH_HOST": "docker compose: host interface of the published ports (0.0.0.0: all).",
    "PREFECT_UI_API_URL": "docker compose: the Prefect API URL as the browser reaches it.",
}
COMPOSE_DEFAULTS = {"PUBLISH_HOST": "127.0.0.1", "PREFECT_UI_API_URL": "http://localhost:4200/api"}


def render() -> str:
    lines = [HEADER]
    for name, field in Settings.model_fields.items():
        default = field.default
        if isinstance(default, SecretStr):
            default = default.get_secret_value()
        value = "" if default is None else str(default)
        if isinstance(default, bool):
            value = str(default).lower()
        lines.append(f"# {field.description}")
        lines.append(f"FLOWFORGE_{name.upper()}={value}")
        lines.append("")
    for key, description in COMPOSE_KEYS.items():
        lines.append(f"# {description}")
        lines.append(f"{key}={COMPOSE_DEFAULTS.get(key, '')}")
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    Path(".env.example").write_text(render())


if __name__ == "__main__":
    main()
