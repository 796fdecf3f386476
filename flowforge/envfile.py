"""Renders .env.example from the Settings model, so the example never drifts from the code."""

from __future__ import annotations

from pathlib import Path

from pydantic import SecretStr

from flowforge.settings import Settings

HEADER = """\
# FlowForge settings. Copy to .env and edit; every key is optional unless noted.
# Generated from flowforge/settings.py by `python -m flowforge.envfile` (a test checks it).
"""


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
    return "\n".join(lines)


def main() -> None:
    Path(".env.example").write_text(render())


if __name__ == "__main__":
    main()
