"""The gateway configuration: providers, the route of each channel, retries and the breaker.

One YAML file (``config/gateway.yaml`` by default, ``CAMPAIGN_GATEWAY_CONFIG`` to point at
another), validated on load with errors that name the file and the field. ``${VAR}`` (and
``$VAR``) in a value is replaced by the environment variable; one that is not set (or empty) is
an error naming the file, the field and the variable, never left in as a literal.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from orchestration.core.common.yaml_files import YamlFileError, load_yaml_model
from orchestration.core.world.contract import CHANNELS
from orchestration.settings import secret


class ProviderConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["outbox", "http", "smtp"]
    batch_size: int = Field(500, gt=0, le=10_000)
    rate_per_second: float = Field(1000.0, gt=0)
    burst: float | None = Field(None, gt=0)
    timeout_seconds: float = Field(10.0, gt=0)
    # http
    url: str | None = None
    token_env: str | None = None
    # smtp
    host: str | None = None
    port: int = 25
    sender: str = "campaigns@localhost"
    starttls: bool = False
    username_env: str | None = None
    password_env: str | None = None

    @model_validator(mode="after")
    def _required_fields(self) -> ProviderConfig:
        if self.type == "http" and not self.url:
            raise ValueError("an http provider needs `url`")
        if self.type == "smtp" and not self.host:
            raise ValueError("an smtp provider needs `host`")
        return self


class ChannelRoute(BaseModel):
    model_config = ConfigDict(extra="forbid")

    provider: str
    fallback: str | None = None


class RetryConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_attempts: int = Field(4, ge=1, le=20)
    base_delay_seconds: float = Field(0.5, ge=0)
    max_delay_seconds: float = Field(30.0, ge=0)


class BreakerConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    failure_threshold: int = Field(5, ge=1)
    reset_seconds: float = Field(300.0, gt=0)


class GatewayConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    providers: dict[str, ProviderConfig] = Field(
        default_factory=lambda: {"outbox": ProviderConfig(type="outbox")}
    )
    channels: dict[Literal["email", "sms", "push"], ChannelRoute] = Field(
        default_factory=lambda: {c: ChannelRoute(provider="outbox") for c in CHANNELS}
    )
    retry: RetryConfig = Field(default_factory=RetryConfig)
    breaker: BreakerConfig = Field(default_factory=BreakerConfig)

    @model_validator(mode="after")
    def _routes_name_known_providers(self) -> GatewayConfig:
        missing = [c for c in CHANNELS if c not in self.channels]
        if missing:
            raise ValueError(f"channels {missing} have no route; add `channels.<name>.provider`")
        for channel, route in self.channels.items():
            for role, name in (("provider", route.provider), ("fallback", route.fallback)):
                if name is not None and name not in self.providers:
                    raise ValueError(
                        f"channels.{channel}.{role} names {name!r}, which is not under"
                        f" `providers` (known: {sorted(self.providers)})"
                    )
        return self


class GatewayConfigError(YamlFileError):
    """A gateway configuration that cannot be used; the message names the file and the fields."""


_VARIABLE = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))")


def _expand(value: object, source: str, field: str = "") -> object:
    """``value`` with every ``${VAR}``/``$VAR`` in its strings replaced from the environment;
    an unset or empty one raises :class:`GatewayConfigError` (file, field, variable)."""
    if isinstance(value, str):

        def substitute(match: re.Match[str]) -> str:
            name = match.group(1) or match.group(2)
            resolved = secret(name)  # the one reader of the environment, by name
            if not resolved.strip():
                raise GatewayConfigError(
                    f"{source}: {field or '(top level)'}: environment variable {name} (from"
                    f" {match.group(0)}) is not set or empty; set it, or write the value into"
                    " the file"
                )
            return resolved

        return _VARIABLE.sub(substitute, value)
    if isinstance(value, dict):
        return {
            k: _expand(v, source, f"{field}.{k}" if field else str(k)) for k, v in value.items()
        }
    if isinstance(value, list):
        return [
            _expand(v, source, f"{field}.{i}" if field else str(i)) for i, v in enumerate(value)
        ]
    return value


def load_gateway_config(path: Path | None) -> GatewayConfig:
    """The configuration in ``path`` (None: the embedded default: every channel to the outbox)."""
    if path is None or not Path(path).exists():
        if path is not None:
            raise GatewayConfigError(f"{path}: gateway configuration file not found")
        return GatewayConfig()
    return load_yaml_model(
        path,
        GatewayConfig,
        GatewayConfigError,
        "gateway configuration",
        empty_is_default=True,
        prepare=lambda raw: _expand(raw, str(path)),
    )
