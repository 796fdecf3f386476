"""What a workflow YAML says about runs that start themselves and who hears of them:

notify:
  webhooks:
    - url: https://hooks.slack.com/services/T000/B000/XXXX
      format: slack                   # {"text": ...}; json (default): the whole event
  on: [failed, crashed, quality]      # the default
  max_quarantine_percent: 5           # `quality`: a completed run quarantined more
landing_retention_days: 30            # ingested landing files older than this go
jobs:
  - id: customers
    trigger: {on_upload: true, debounce_seconds: 30}
    schedule: {cron: "0 6 * * *", timezone: Europe/Berlin}
"""

from __future__ import annotations

from typing import Literal, get_args
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator

_STRICT = ConfigDict(extra="forbid", frozen=True)
NotifyEvent = Literal["failed", "crashed", "quality"]


class Trigger(BaseModel):
    """Start the job once uploads to its landing prefix have been quiet this long."""

    model_config = _STRICT
    on_upload: bool = False
    debounce_seconds: float = Field(default=30.0, ge=0, le=86_400)


class Schedule(BaseModel):
    """A cron schedule, registered as a schedule of the Prefect deployment."""

    model_config = _STRICT
    cron: str
    timezone: str = "UTC"

    @field_validator("cron")
    @classmethod
    def _cron(cls, cron: str) -> str:
        # Prefect's own check (its vendored croniter, no random or hashed fields): a cron
        # accepted here is never refused when the schedule is registered.
        from prefect.client.schemas.schedules import CronSchedule

        try:
            CronSchedule(cron=cron)
        except ValueError:
            raise ValueError(
                f"{cron!r} is not a cron expression (five fields: minute hour day month "
                "weekday, e.g. '0 6 * * *')"
            ) from None
        return cron

    @field_validator("timezone")
    @classmethod
    def _zone(cls, zone: str) -> str:
        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"{zone!r} is not a time zone (an IANA name such as Europe/Berlin or UTC)"
            ) from None
        return zone


class Webhook(BaseModel):
    model_config = _STRICT
    url: str = Field(max_length=2048)
    format: Literal["json", "slack"] = "json"

    @field_validator("url")
    @classmethod
    def _http(cls, url: str) -> str:
        parts = urlsplit(url)
        # Only HTTP(S): no file:, gopher: or other scheme a client library might follow.
        if (
            parts.scheme not in ("http", "https")
            or not parts.hostname
            or any(c.isspace() for c in url)
        ):
            raise ValueError("must be an http:// or https:// URL with a host")
        return url


class Notify(BaseModel):
    model_config = _STRICT
    webhooks: list[Webhook] = Field(min_length=1, max_length=10)
    on: list[NotifyEvent] = Field(default_factory=lambda: list(get_args(NotifyEvent)))
    max_quarantine_percent: float | None = Field(default=None, ge=0, le=100)
