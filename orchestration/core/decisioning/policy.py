"""The global contact policy: one YAML file, validated, versioned by its content hash."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import time
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from orchestration.core.common.yaml_files import YamlFileError, parse_yaml_model, read_text
from orchestration.core.world.contract import CHANNELS

_HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")


class GlobalControl(BaseModel):
    model_config = ConfigDict(extra="forbid")
    share: float = Field(0.05, ge=0, lt=1)
    salt: str = Field("global-control-v1", min_length=1)


class FrequencyCap(BaseModel):
    model_config = ConfigDict(extra="forbid")
    scope: Literal["all", "email", "sms", "push"]
    max_messages: int = Field(..., ge=0)
    window_days: int = Field(..., ge=1, le=365)


class SendWindow(BaseModel):
    """Allowed local send time [start, end) on a 24h clock; start < end."""

    model_config = ConfigDict(extra="forbid")
    start: str
    end: str

    @field_validator("start", "end")
    @classmethod
    def _is_hhmm(cls, value: str) -> str:
        if not _HHMM.match(value):
            raise ValueError("must be HH:MM on a 24h clock, e.g. 08:00")
        return value

    def bounds(self) -> tuple[time, time]:
        return time.fromisoformat(self.start), time.fromisoformat(self.end)


class Policy(BaseModel):
    model_config = ConfigDict(extra="forbid")
    global_control: GlobalControl = Field(default_factory=GlobalControl)
    frequency_caps: list[FrequencyCap] = Field(default_factory=list)
    quiet_hours: dict[Literal["email", "sms", "push"], SendWindow] = Field(default_factory=dict)
    max_messages_per_customer_per_day: int = Field(1, ge=1)

    @field_validator("quiet_hours")
    @classmethod
    def _window_is_ordered(cls, value: dict[str, SendWindow]) -> dict[str, SendWindow]:
        for channel, window in value.items():
            start, end = window.bounds()
            if start >= end:
                raise ValueError(f"{channel}: start {window.start} must be before end {window.end}")
        return value

    @property
    def longest_cap_window_days(self) -> int:
        return max([c.window_days for c in self.frequency_caps], default=1)


class PolicyFileError(YamlFileError):
    """A policy file that cannot be used; the message names the file and the fields."""


@dataclass(frozen=True)
class VersionedPolicy:
    policy: Policy
    version: str
    path: Path | None


def policy_version(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def parse_policy(text: str, path: Path | None = None) -> VersionedPolicy:
    policy = parse_yaml_model(
        text,
        Policy,
        PolicyFileError,
        "policy",
        source=str(path) if path else "<policy>",
        empty_is_default=True,
    )
    return VersionedPolicy(policy=policy, version=policy_version(text), path=path)


def load_policy(path: Path) -> VersionedPolicy:
    path = Path(path)
    if not path.exists():
        raise PolicyFileError(
            f"{path}: policy file not found; set CAMPAIGN_POLICY_FILE or restore it"
        )
    return parse_policy(read_text(path, PolicyFileError, "policy file"), path)


assert set(CHANNELS) == {"email", "sms", "push"}  # the Literal types above mirror the contract
