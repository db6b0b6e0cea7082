"""The raw data contract: the one set of tables everything enters through.

The synthetic world, the public datasets (Hillstrom) and a team's own data all land as these
tables (Parquet files named ``<table>.parquet`` in the raw directory, or the tables of a DuckDB
schema: ``orchestration.core.world.warehouse_source``). ``customer_attributes`` has the columns
the attribute declaration names (:func:`customer_attributes_table`); every other table is fixed.
The guide to bringing one's own data: docs/bring-your-own-data.md. dbt reads them as sources; only the messaging gateway reads ``contact_points``,
the one table that holds contact details.

Identifiers are pseudonymous integers. Timestamps are UTC with microsecond precision (DuckDB
reads pandas' nanosecond timestamps as ``TIMESTAMPTZ_NS``, which does not compare with
``TIMESTAMPTZ``).

The safety tables only grow. Suppressions and opt-outs (consent events with ``is_opted_in``
false) are facts: a raw set in which one that was there at the last release is missing blocks
the next release (the ``safety_tables_only_grow`` checks, see
``orchestration.core.world.safety_tables``). Lifting one is an explicit event, never a deleted
row:

- an opt-out is lifted by a later consent event on the same channel with ``is_opted_in`` true
  (the opt-out row stays: the consent events are a log);
- a suppression is lifted by removing its row from ``suppressions`` *and* recording the lift in
  the optional table ``suppression_lifts`` (:data:`SUPPRESSION_LIFTS`), one row naming the
  lifted suppression by its ``customer_id``, ``channel`` (null: the every-channel suppression)
  and ``reason``, exactly as the removed row had them. Nothing else reads the lifts: every
  reader of the suppression list sees the row gone, and the shrink guard accepts exactly the
  disappearances that a lift recorded since the last release explains.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa

from orchestration.core.common.outcome_window import OUTCOME_WINDOW_DAYS as OUTCOME_WINDOW_DAYS

if TYPE_CHECKING:
    from orchestration.core.world.attributes import AttributeDeclaration

CHANNELS: tuple[str, ...] = ("email", "sms", "push")
# A randomized arm: ``control`` (not messaged) or any named treatment (``treatment`` in a
# binary experiment; ``mens_email``, ``womens_email`` in a multi-arm one). Names are identifiers.
CONTROL_ARM = "control"
DEFAULT_TREATMENT_ARM = "treatment"
ARMS: tuple[str, ...] = (DEFAULT_TREATMENT_ARM, CONTROL_ARM)  # the binary experiment's arms
ARM_NAME_PATTERN = r"^[a-z][a-z0-9_]{0,62}$"
ENGAGEMENT_EVENT_TYPES: tuple[str, ...] = ("open", "click", "dismiss", "session")
SUPPRESSION_REASONS: tuple[str, ...] = ("hard_bounce", "complaint", "legal_request", "fraud")
# What an order bought and where it was placed (both optional: null when the source does not say).
ORDER_CATEGORIES: tuple[str, ...] = ("mens", "womens", "other")
SALES_CHANNELS: tuple[str, ...] = ("web", "phone", "store")

TIMESTAMP = pa.timestamp("us", tz="UTC")
# OUTCOME_WINDOW_DAYS (imported above): an exposure's outcomes are the orders and sessions in
# [exposed_at, exposed_at + OUTCOME_WINDOW_DAYS); the world, the public datasets and the lift all
# use this one window (it lives in core.common, below the lift measurement's layer).


@dataclass(frozen=True)
class RawTable:
    """One table of the contract: its schema, primary key and the column that says how new it is."""

    name: str
    schema: pa.Schema
    primary_key: tuple[str, ...]
    time_column: str
    description: str
    contains_contact_details: bool = False
    # Columns whose values must come from a closed set (column -> allowed values).
    allowed_values: tuple[tuple[str, tuple[str, ...]], ...] = ()
    # Columns that may be null (every other column must have a value in every row).
    nullable: tuple[str, ...] = ()

    @property
    def file_name(self) -> str:
        return f"{self.name}.parquet"


CUSTOMERS = RawTable(
    name="customers",
    schema=pa.schema(
        [
            ("customer_id", pa.int64()),
            ("signed_up_at", TIMESTAMP),
            ("region", pa.string()),
            ("time_zone", pa.string()),
            ("updated_at", TIMESTAMP),
        ]
    ),
    primary_key=("customer_id",),
    time_column="updated_at",
    description="One row per customer: sign-up time, region and IANA time zone.",
)

CONTACT_POINTS = RawTable(
    name="contact_points",
    schema=pa.schema(
        [
            ("customer_id", pa.int64()),
            ("channel", pa.string()),
            ("address", pa.string()),
            ("is_verified", pa.bool_()),
            ("updated_at", TIMESTAMP),
        ]
    ),
    primary_key=("customer_id", "channel"),
    time_column="updated_at",
    description=(
        "Where to reach a customer per channel (email address, phone number, push token). "
        "Personal data: read only by the messaging gateway."
    ),
    contains_contact_details=True,
    allowed_values=(("channel", CHANNELS),),
)

CONSENT_EVENTS = RawTable(
    name="consent_events",
    schema=pa.schema(
        [
            ("consent_event_id", pa.int64()),
            ("customer_id", pa.int64()),
            ("channel", pa.string()),
            ("is_opted_in", pa.bool_()),
            ("source", pa.string()),
            ("consented_at", TIMESTAMP),
        ]
    ),
    primary_key=("consent_event_id",),
    time_column="consented_at",
    description=(
        "Every change of a customer's consent on a channel. The state at time t is the latest "
        "event at or before t; no event means no consent. A log: an opt-out is lifted by a "
        "later opt-in event, never by deleting it."
    ),
    allowed_values=(("channel", CHANNELS),),
)

ORDERS = RawTable(
    name="orders",
    schema=pa.schema(
        [
            ("order_id", pa.int64()),
            ("customer_id", pa.int64()),
            ("amount", pa.float64()),
            ("ordered_at", TIMESTAMP),
            ("category", pa.string()),
            ("sales_channel", pa.string()),
        ]
    ),
    primary_key=("order_id",),
    time_column="ordered_at",
    description=(
        "Purchases with their amount (one currency), optionally what was bought (category: "
        "mens, womens or other) and where (sales_channel: web, phone or store); both null when "
        "the source does not record them."
    ),
    allowed_values=(("category", ORDER_CATEGORIES), ("sales_channel", SALES_CHANNELS)),
    nullable=("category", "sales_channel"),  # null: not recorded by the source
)

ENGAGEMENT_EVENTS = RawTable(
    name="engagement_events",
    schema=pa.schema(
        [
            ("event_id", pa.int64()),
            ("customer_id", pa.int64()),
            ("channel", pa.string()),
            ("event_type", pa.string()),
            ("occurred_at", TIMESTAMP),
        ]
    ),
    primary_key=("event_id",),
    time_column="occurred_at",
    description="Opens, clicks, dismissals and app/web sessions.",
    allowed_values=(("channel", CHANNELS), ("event_type", ENGAGEMENT_EVENT_TYPES)),
    nullable=("channel",),  # sessions have no channel
)

SUPPRESSIONS = RawTable(
    name="suppressions",
    schema=pa.schema(
        [
            ("suppression_id", pa.int64()),
            ("customer_id", pa.int64()),
            ("channel", pa.string()),  # null: suppressed on every channel
            ("reason", pa.string()),
            ("suppressed_at", TIMESTAMP),
        ]
    ),
    primary_key=("suppression_id",),
    time_column="suppressed_at",
    description=(
        "Customers who must not be contacted, on one channel or (channel null) on all. Only "
        "grows: a lifted suppression's row is removed and its lift recorded in suppression_lifts."
    ),
    allowed_values=(("reason", SUPPRESSION_REASONS), ("channel", CHANNELS)),
    nullable=("channel",),  # null: suppressed on every channel
)

SUPPRESSION_LIFTS = RawTable(
    name="suppression_lifts",
    schema=pa.schema(
        [
            ("lift_id", pa.int64()),
            ("customer_id", pa.int64()),
            ("channel", pa.string()),  # null: the every-channel suppression is lifted
            ("reason", pa.string()),
            ("lifted_at", TIMESTAMP),
        ]
    ),
    primary_key=("lift_id",),
    time_column="lifted_at",
    description=(
        "Optional: suppressions lifted on purpose, one row per lift, naming the suppression by "
        "customer_id, channel (null: every channel) and reason. Remove the suppression's row "
        "and add its lift here: a suppression that disappears without a lift blocks the release."
    ),
    allowed_values=(("reason", SUPPRESSION_REASONS), ("channel", CHANNELS)),
    nullable=("channel",),  # null: the every-channel suppression
)

CAMPAIGN_EXPOSURES = RawTable(
    name="campaign_exposures",
    schema=pa.schema(
        [
            ("exposure_id", pa.int64()),
            ("campaign_id", pa.string()),
            ("customer_id", pa.int64()),
            ("channel", pa.string()),
            ("arm", pa.string()),
            ("exposed_at", TIMESTAMP),
        ]
    ),
    primary_key=("exposure_id",),
    time_column="exposed_at",
    description=(
        "Past randomized campaigns: who was assigned to which arm, on which channel, when: "
        "'control' (not messaged) or a named treatment ('treatment', or one name per message "
        "variant of a multi-arm test: lower-case letters, digits, '_'). Outcomes are the orders "
        "and sessions that follow."
    ),
    allowed_values=(("channel", CHANNELS),),
)

CUSTOMER_ATTRIBUTES = RawTable(
    name="customer_attributes",
    schema=pa.schema([("customer_id", pa.int64()), ("valid_from", TIMESTAMP)]),
    primary_key=("customer_id", "valid_from"),
    time_column="valid_from",
    description=(
        "A team's own customer attributes, point in time: one column per attribute declared in "
        "config/attributes.yaml (CAMPAIGN_ATTRIBUTES_FILE); a row's values hold from its "
        "valid_from until the customer's next row (null: unknown from then on)."
    ),
)

RAW_TABLES: tuple[RawTable, ...] = (
    CUSTOMERS,
    CONTACT_POINTS,
    CONSENT_EVENTS,
    ORDERS,
    ENGAGEMENT_EVENTS,
    SUPPRESSIONS,
    CAMPAIGN_EXPOSURES,
    CUSTOMER_ATTRIBUTES,
)
RAW_TABLES_BY_NAME: dict[str, RawTable] = {t.name: t for t in RAW_TABLES}
# Tables a raw directory may hold or not: validated when present, never required, not landed as
# assets and not read by dbt (only the safety-table shrink guard reads the lifts).
OPTIONAL_TABLES: tuple[RawTable, ...] = (SUPPRESSION_LIFTS,)

# Tables whose newest row says whether the raw data is current (source freshness).
ACTIVITY_TABLES: tuple[str, ...] = ("orders", "engagement_events")


_ATTRIBUTE_TYPES = {"numeric": pa.float64(), "categorical": pa.string(), "boolean": pa.bool_()}


def customer_attributes_table(declaration: AttributeDeclaration) -> RawTable:
    """``customer_attributes`` with the declared columns: its keys, then one column per attribute
    (numeric: double, categorical: string from its ``values``, boolean), each nullable."""
    columns = [(a.name, _ATTRIBUTE_TYPES[a.type]) for a in declaration.attributes]
    return RawTable(
        name=CUSTOMER_ATTRIBUTES.name,
        schema=pa.schema([*CUSTOMER_ATTRIBUTES.schema, *columns]),
        primary_key=CUSTOMER_ATTRIBUTES.primary_key,
        time_column=CUSTOMER_ATTRIBUTES.time_column,
        description=CUSTOMER_ATTRIBUTES.description,
        allowed_values=tuple(
            (a.name, tuple(a.values or ()))
            for a in declaration.attributes
            if a.type == "categorical"
        ),
        nullable=declaration.names,
    )


def contract_tables(declaration: AttributeDeclaration) -> tuple[RawTable, ...]:
    """The contract's tables with ``customer_attributes`` as ``declaration`` declares it."""
    attributes = customer_attributes_table(declaration)
    return tuple(attributes if t.name == attributes.name else t for t in RAW_TABLES)


def raw_path(raw_dir: Path, table: RawTable | str) -> Path:
    name = table if isinstance(table, str) else table.name
    return Path(raw_dir) / f"{name}.parquet"
