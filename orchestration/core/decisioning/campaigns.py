"""Campaign definitions: one YAML file per campaign under ``campaigns/``, validated on load.

A broken file is reported with its path, the field and what is allowed, and does not stop the
other campaigns from loading. Adding a campaign is adding a file (``.yaml`` or ``.yml``, any case).

Types are strict (``enabled: "yes"`` or ``max_sends: true`` is an error, not a coercion) and every
number is bounded, so a typo can neither switch a safety off nor overflow the arbitration.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from orchestration.core.common.yaml_files import YamlFileError, load_yaml_model
from orchestration.core.world.contract import ARM_NAME_PATTERN, CHANNELS

NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]{1,62}$")
CAMPAIGN_SUFFIXES = (".yaml", ".yml")  # matched in any case
# Upper bounds: far above any real campaign, low enough for int64 and float arithmetic.
MAX_SENDS = 100_000_000
MAX_COUNT = 1_000_000_000  # audience sizes, segment sizes
MAX_DAYS = 36_500
MAX_MONEY = 1e9  # per send, per conversion and per day
MAX_PRIORITY = 1_000_000
# Strict types (no "yes" -> True, true -> 1, "5" -> 5), no inf or nan, no unknown fields.
STRICT = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)
# Fields a campaign file may no longer hold, with what to do instead.
UNSUPPORTED_FIELDS = {
    "schedule": (
        "schedule is not supported: campaigns run when the pipeline runs (the"
        " daily_campaign_pipeline schedule); remove the field"
    ),
}


class ModelRef(BaseModel):
    model_config = STRICT
    name: str = "uplift_model"
    alias: str = "champion"


class Budget(BaseModel):
    model_config = STRICT
    cost_per_send: float = Field(0.0, ge=0, le=MAX_MONEY)
    value_per_conversion: float = Field(0.0, ge=0, le=MAX_MONEY)
    max_total_cost: float | None = Field(None, ge=0, le=MAX_MONEY)


class Eligibility(BaseModel):
    """Structured filters over customer attributes (all must hold)."""

    model_config = STRICT
    regions: list[str] | None = None
    min_tenure_days: int | None = Field(None, ge=0, le=MAX_DAYS)


class ExpectedAudience(BaseModel):
    """The misrouting guard's bands (``audience_size_within_band``): a declared one (``min``,
    ``max``) and one from the campaign's own released history. A ``None`` override uses the
    default of ``orchestration.core.decisioning.audience_guards``."""

    model_config = STRICT
    min: int | None = Field(None, ge=0, le=MAX_COUNT)
    max: int | None = Field(None, gt=0, le=MAX_COUNT)
    # block when today's audience is over factor x, or under 1/factor of, the history's median
    history_factor: float | None = Field(None, gt=1, le=1_000)
    # the median is over the last this many released send days of the campaign ...
    history_days: int | None = Field(None, ge=1, le=MAX_DAYS)
    # ... and applies once at least this many exist (0 days of history: no history band)
    history_min_days: int | None = Field(None, ge=1, le=MAX_DAYS)

    @model_validator(mode="after")
    def _min_below_max(self) -> ExpectedAudience:
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"expected_audience.min ({self.min}) is above max ({self.max})")
        return self


class Composition(BaseModel):
    """The composition guard (``audience_composition_matches_eligible``): overrides only."""

    model_config = STRICT
    # block when a region's or tenure band's share of the audience differs from its share of the
    # eligible population by more than this (absolute share difference)
    max_share_diff: float | None = Field(None, gt=0, le=1)
    # audiences smaller than this are too small to judge (the size band still applies)
    min_audience: int | None = Field(None, ge=1, le=MAX_COUNT)


class Fairness(BaseModel):
    """The bias audit (``audience_selection_rates_fair``): the four-fifths rule per segment."""

    model_config = STRICT
    # warn: a ratio below min_ratio is reported (WARN, sends go on); block: it stops the sends
    mode: Literal["warn", "block"] = "warn"
    # lowest / highest selection rate across a dimension's segments must be at least this
    min_ratio: float = Field(0.8, gt=0, le=1)
    # dim_customers columns audited besides region and tenure band (e.g. a declared attribute)
    sensitive_columns: list[str] = Field(default_factory=list)
    # segments with fewer eligible customers than this are left out of the ratio
    min_segment_size: int | None = Field(None, ge=1, le=MAX_COUNT)


EVENT_NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]{1,62}$")
MAX_SESSIONS = 1_000_000


class Trigger(BaseModel):
    """``trigger: {event: <name>}``: the campaign is decided when ``POST /v1/events`` receives
    that event for a customer, never in the batch run (it is not mailed in bulk). An optional
    condition on the real-time features (``customer_sessions_rt``) must also hold."""

    model_config = STRICT
    event: str
    # the customer had at least this many sessions in the 24 hours up to the event
    min_sessions_24h: int | None = Field(None, ge=1, le=MAX_SESSIONS)

    @field_validator("event")
    @classmethod
    def _event_is_identifier(cls, value: str) -> str:
        if not EVENT_NAME_PATTERN.match(value):
            raise ValueError(
                "must be lower-case letters, digits and underscores, starting with a letter"
            )
        return value


TEMPLATE_PATTERN = re.compile(r"^[a-z][a-z0-9_]{1,62}$")
MAX_VARIANTS = 20


class Variant(BaseModel):
    """One message a campaign may send, tested as the arm ``name`` of a past randomized
    experiment (``campaign_exposures.arm``); the multi-arm model scores its uplift against
    control, and the policy sends each customer the variant with the highest expected net
    value (``core/decisioning/variants.py``)."""

    model_config = STRICT
    name: str
    # the template the gateway sends (default: the variant's name)
    template: str | None = None
    # the channel it goes out on (default: the campaign's)
    channel: Literal["email", "sms", "push"] | None = None
    # its cost per send (default: budget.cost_per_send)
    cost_per_send: float | None = Field(None, ge=0, le=MAX_MONEY)

    @field_validator("name")
    @classmethod
    def _name_is_an_arm(cls, value: str) -> str:
        if value == "control":
            raise ValueError("'control' is the arm nobody is messaged in, not a variant")
        if not re.match(ARM_NAME_PATTERN, value):
            raise ValueError(
                "must be the arm's name: lower-case letters, digits and underscores, starting "
                "with a letter"
            )
        return value

    @field_validator("template")
    @classmethod
    def _template_is_identifier(cls, value: str | None) -> str | None:
        if value is not None and not TEMPLATE_PATTERN.match(value):
            raise ValueError("must be lower-case letters, digits and underscores")
        return value


class Campaign(BaseModel):
    model_config = STRICT

    name: str
    description: str = ""
    channel: Literal["email", "sms", "push"]
    objective: Literal["conversion"] = "conversion"
    model: ModelRef = Field(default_factory=ModelRef)
    eligibility: Eligibility = Field(default_factory=Eligibility)
    max_sends: int = Field(..., gt=0, le=MAX_SENDS)
    budget: Budget = Field(default_factory=Budget)
    holdout_share: float = Field(0.1, ge=0, lt=1)
    challenger_share: float = Field(0.0, ge=0, le=0.5)
    # an uplift is a difference of probabilities
    min_predicted_uplift: float = Field(0.0, ge=-1, le=1)
    priority: int = Field(0, ge=-MAX_PRIORITY, le=MAX_PRIORITY)
    enabled: bool = True
    dry_run: bool = False
    # When the channel's provider is down (circuit breaker open), use the channel's configured
    # fallback provider instead of deferring the remaining messages.
    allow_fallback: bool = False
    # Gates on the audience itself (see campaigns/README.md): size band, composition, fairness.
    expected_audience: ExpectedAudience = Field(default_factory=ExpectedAudience)
    composition: Composition = Field(default_factory=Composition)
    fairness: Fairness = Field(default_factory=Fairness)
    # Decided on a customer event only (``POST /v1/events``); the batch run skips the campaign.
    trigger: Trigger | None = None
    # Message variants tested as arms of a multi-arm experiment: the policy picks one per
    # customer (the highest expected net value) or none. Absent: one message, binary model.
    variants: list[Variant] | None = Field(None, min_length=1, max_length=MAX_VARIANTS)

    @field_validator("name")
    @classmethod
    def _name_is_identifier(cls, value: str) -> str:
        if not NAME_PATTERN.match(value):
            raise ValueError(
                "must be lower-case letters, digits and underscores, starting with a letter"
            )
        return value

    @model_validator(mode="after")
    def _budget_allows_a_send(self) -> Campaign:
        cap = self.budget.max_total_cost
        if cap is not None and self.budget.cost_per_send > 0 and cap < self.budget.cost_per_send:
            raise ValueError("budget.max_total_cost is below one send's cost_per_send")
        return self

    @model_validator(mode="after")
    def _variants_are_unique(self) -> Campaign:
        names = [v.name for v in self.variants or []]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"variants: {', '.join(twice)} declared more than once")
        return self

    def variant_channel(self, variant: Variant) -> str:
        return variant.channel or self.channel

    def variant_template(self, variant: Variant) -> str:
        return variant.template or variant.name

    @property
    def channels(self) -> tuple[str, ...]:
        """Every channel the campaign may send on (its own, or its variants')."""
        if not self.variants:
            return (self.channel,)
        return tuple(dict.fromkeys(self.variant_channel(v) for v in self.variants))

    @property
    def is_triggered(self) -> bool:
        """Decided on events only: the batch run and the batch decision API leave it out."""
        return self.trigger is not None

    @property
    def send_cap(self) -> int:
        """Most sends the campaign may make in one day: max_sends, or what the budget buys."""
        cap = self.max_sends
        if self.budget.max_total_cost is not None and self.budget.cost_per_send > 0:
            affordable = self.budget.max_total_cost // self.budget.cost_per_send
            if affordable < cap:  # also false for inf (a cost too small to matter)
                cap = int(affordable)
        return cap


class CampaignFileError(YamlFileError):
    """A campaign file that cannot be used; the message names the file and the fields."""


@dataclass(frozen=True)
class LoadedCampaigns:
    campaigns: dict[str, Campaign]
    sources: dict[str, Path]
    errors: dict[Path, str]


def _reject_unsupported(path: Path):
    """A field that is no longer supported as ``<file>: <field> is not supported: <what to do>``."""

    def prepare(raw: dict[str, Any]) -> dict[str, Any]:
        for field, message in UNSUPPORTED_FIELDS.items():
            if field in raw:
                raise CampaignFileError(f"{path}: {message}")
        return raw

    return prepare


def load_campaign_file(path: Path) -> Campaign:
    path = Path(path)
    campaign = load_yaml_model(
        path,
        Campaign,
        CampaignFileError,
        "campaign definition",
        reference="campaigns/README.md",
        prepare=_reject_unsupported(path),
    )
    if (
        campaign.channel not in CHANNELS
    ):  # the Literal already enforces it; keep the contract in sync
        raise CampaignFileError(f"{path}: channel {campaign.channel!r} is not one of {CHANNELS}")
    return campaign


def campaign_files(directory: Path) -> list[Path]:
    """The campaign files in ``directory``: ``*.yaml`` and ``*.yml`` in any case (``X.YAML``
    too), sorted by name."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    return sorted(
        path
        for path in directory.iterdir()
        if path.suffix.lower() in CAMPAIGN_SUFFIXES and path.is_file()
    )


def load_campaigns(directory: Path) -> LoadedCampaigns:
    """Every campaign file in ``directory`` (:func:`campaign_files`); broken files are reported,
    not fatal."""
    campaigns: dict[str, Campaign] = {}
    sources: dict[str, Path] = {}
    errors: dict[Path, str] = {}
    files = campaign_files(directory)
    seen: dict[str, list[Path]] = {}
    for path in files:
        try:
            campaign = load_campaign_file(path)
        except CampaignFileError as exc:
            errors[path] = str(exc)
            continue
        seen.setdefault(campaign.name, []).append(path)
        campaigns[campaign.name] = campaign
        sources[campaign.name] = path
    # A name defined twice is ambiguous: neither file runs until one is renamed.
    for name, paths in seen.items():
        if len(paths) > 1:
            campaigns.pop(name)
            sources.pop(name)
            listed = ", ".join(str(p) for p in paths)
            for path in paths:
                errors[path] = (
                    f"{path}: campaign name {name!r} is defined in {listed}; names must be unique"
                )
    return LoadedCampaigns(campaigns=campaigns, sources=sources, errors=errors)
