"""The global contact policy: one YAML file, validated, versioned by its content hash.

A rule is never switched off by omission: ``frequency_caps`` and ``quiet_hours`` are required
(``frequency_caps: []`` / ``quiet_hours: {}`` declare that there are none), so an empty or
truncated file is an error, not a policy without limits. Types are strict (``max_messages:
"3"`` or ``true`` is an error) and numbers are bounded.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import time
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from orchestration.core.common.yaml_files import YamlFileError, parse_yaml_model, read_text
from orchestration.core.world.contract import CHANNELS

_HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")
# Strict types, no inf or nan, unknown fields rejected.
STRICT = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)
# The rules a policy file must state, even when there are none, and how to say "none".
EXPLICIT_RULES = {
    "frequency_caps": (
        "list the caps, or write `frequency_caps: []` to declare that there are none"
    ),
    "quiet_hours": (
        "give the allowed send window per channel, or write `quiet_hours: {}` to declare that"
        " there are none"
    ),
}


class GlobalControl(BaseModel):
    model_config = STRICT
    share: float = Field(0.05, ge=0, lt=1)
    salt: str = Field("global-control-v1", min_length=1)


class FrequencyCap(BaseModel):
    model_config = STRICT
    scope: Literal["all", "email", "sms", "push"]
    max_messages: int = Field(..., ge=0, le=10_000)
    window_days: int = Field(..., ge=1, le=365)


class SendWindow(BaseModel):
    """Allowed local send time [start, end) on a 24h clock. start > end runs past midnight
    (22:00 to 06:00 allows 23:00 and 05:00); start == end is refused (empty or all day?)."""

    model_config = STRICT
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
    model_config = STRICT
    global_control: GlobalControl = Field(default_factory=GlobalControl)
    # required, no default: see EXPLICIT_RULES
    frequency_caps: list[FrequencyCap]
    quiet_hours: dict[Literal["email", "sms", "push"], SendWindow]
    max_messages_per_customer_per_day: int = Field(1, ge=1, le=1_000)

    @field_validator("quiet_hours")
    @classmethod
    def _window_is_not_empty(cls, value: dict[str, SendWindow]) -> dict[str, SendWindow]:
        for channel, window in value.items():
            start, end = window.bounds()
            if start == end:
                raise ValueError(
                    f"{channel}: start {window.start} and end {window.end} are the same time, so "
                    "the allowed window is ambiguous; give a window [start, end) (start after end "
                    "runs past midnight, e.g. 22:00 to 06:00), or leave the channel out of "
                    "quiet_hours to allow every hour"
                )
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


def _require_explicit_rules(source: str):
    """A missing (or blank) ``frequency_caps`` / ``quiet_hours`` as one error naming the file,
    the field and how to declare "none"."""

    def prepare(raw: dict[str, Any]) -> dict[str, Any]:
        problems = [
            f"{source}: {field}: {'has no value' if field in raw else 'required field is missing'};"
            f" {how}"
            for field, how in EXPLICIT_RULES.items()
            if raw.get(field) is None
        ]
        if len(problems) == 1:
            raise PolicyFileError(problems[0])
        if problems:
            lines = "\n".join(f"  - {problem}" for problem in problems)
            raise PolicyFileError(f"{source}: invalid policy ({len(problems)} problems)\n{lines}")
        return raw

    return prepare


def parse_policy(text: str, path: Path | None = None) -> VersionedPolicy:
    source = str(path) if path else "<policy>"
    policy = parse_yaml_model(
        text,
        Policy,
        PolicyFileError,
        "policy",
        source=source,
        # an empty file is reported as missing its rules (the message says how to declare none)
        empty_is_default=True,
        prepare=_require_explicit_rules(source),
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
