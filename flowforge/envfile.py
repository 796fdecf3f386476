"""Renders .env.example from the Settings model, so the example never drifts from the code."""

from __future__ import annotations

from pathlib import Path

from pydantic import SecretStr

from flowforge.identities import COMPONENTS
from flowforge.settings import Settings

HEADER = """\
# FlowForge settings. Copy to .env and edit; every key is optional unless noted.
# docker compose passes only the FLOWFORGE_* keys marked "docker compose" to its containers
# (others go in a compose.override.yml) and refuses to start while a required key is empty.
# Generated from flowforge/settings.py by `python -m flowforge.envfile` (a test checks it).
"""

# What docker-compose.yml does with each key (tests/deploy checks these against the file):
# ${KEY:?...}, compose stops while it is empty; ${KEY:-default}, read from .env.
COMPOSE_REQUIRED = (
    "FLOWFORGE_S3_ACCESS_KEY_ID",
    "FLOWFORGE_S3_SECRET_ACCESS_KEY",
    *(
        f"FLOWFORGE_S3_{component.upper()}_{key}"
        for component in COMPONENTS
        for key in ("ACCESS_KEY_ID", "SECRET_ACCESS_KEY")
    ),
    "FLOWFORGE_GRPC_TOKEN",
    "FLOWFORGE_API_TOKEN",
    "POSTGRES_PASSWORD",
    "PREFECT_AUTH_STRING",
    "SEAWEEDFS_ADMIN_PASSWORD",
)
COMPOSE_OPTIONAL = (
    "FLOWFORGE_S3_ENDPOINT_URL",
    "FLOWFORGE_S3_REGION",
    "FLOWFORGE_S3_BUCKET",
    "FLOWFORGE_S3_CREATE_BUCKET",
    "FLOWFORGE_LOG_LEVEL",
    "FLOWFORGE_API_CORS_ORIGINS",
    "FLOWFORGE_API_UPLOAD_MAX_MB",
    "PUBLISH_HOST",
    "PREFECT_UI_API_URL",
)
# Where a key means something else under docker compose.
COMPOSE_NOTES = {"FLOWFORGE_S3_ENDPOINT_URL": "empty: the bundled SeaweedFS"}

# Keys only docker-compose.yml reads (the FLOWFORGE_* keys above are read by FlowForge too).
COMPOSE_KEYS = {
    # Interpolated into the database URLs as it is: '@', '/', ':' or '%' would break them.
    "POSTGRES_PASSWORD": "password of the PostgreSQL user flowforge; URL-safe characters "
    "only (it goes into database URLs as it is), e.g. secrets.token_urlsafe(32).",
    "PREFECT_AUTH_STRING": "user:password of the Prefect API and UI.",
    "SEAWEEDFS_ADMIN_PASSWORD": "password of the SeaweedFS console (user admin).",
    "PUBLISH_HOST": "host interface of the published ports (0.0.0.0: all).",
    "PREFECT_UI_API_URL": "the Prefect API URL as the browser reaches it.",
}
COMPOSE_DEFAULTS = {"PUBLISH_HOST": "127.0.0.1", "PREFECT_UI_API_URL": "http://localhost:4200/api"}


def compose_note(key: str) -> str | None:
    """What docker compose does with a FLOWFORGE_* key; None when it does not read it."""
    if key in COMPOSE_REQUIRED:
        return "required"
    if key in COMPOSE_OPTIONAL:
        note = COMPOSE_NOTES.get(key)
        return f"passed to the containers; {note}" if note else "passed to the containers"
    return None


def render() -> str:
    lines = [HEADER]
    for name, field in Settings.model_fields.items():
        key = f"FLOWFORGE_{name.upper()}"
        default = field.default
        if isinstance(default, SecretStr):
            default = default.get_secret_value()
        value = "" if default is None else str(default)
        if isinstance(default, bool):
            value = str(default).lower()
        lines.append(f"# {field.description}")
        if note := compose_note(key):
            lines.append(f"# docker compose: {note}.")
        lines.append(f"{key}={value}")
        lines.append("")
    for key, description in COMPOSE_KEYS.items():
        required = " (required)" if key in COMPOSE_REQUIRED else ""
        lines.append(f"# docker compose{required}: {description}")
        lines.append(f"{key}={COMPOSE_DEFAULTS.get(key, '')}")
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    Path(".env.example").write_text(render())


if __name__ == "__main__":
    main()
