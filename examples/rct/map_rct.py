"""Map a randomized-campaign CSV (``rct.csv``: one row per customer) into the raw data contract.

The worked example of docs/bring-your-own-data.md. Run it, then the pipeline on the files:

    .venv/bin/python examples/rct/map_rct.py examples/rct/rct.csv data/rct/raw
    # it prints the settings to export, e.g.
    export CAMPAIGN_DATA_DIR=data/rct CAMPAIGN_DATASET=files \\
           CAMPAIGN_ATTRIBUTES_FILE=examples/rct/attributes.yaml \\
           CAMPAIGN_CAMPAIGNS_DIR=examples/rct/campaigns \\
           CAMPAIGN_WORLD_NOW=2025-03-17T10:00:00+00:00
    .venv/bin/campaign run

What each CSV column becomes:

==================== =====================================================================
CSV column           raw contract
==================== =====================================================================
customer_id          customers.customer_id (and every table's customer_id)
signup_date          customers.signed_up_at (midnight UTC), updated_at the same
region               customers.region; time_zone is UTC (the CSV has none)
plan, loyalty_member customer_attributes (declared in attributes.yaml), valid from the day
tenure_months,       before the campaign: what the customer record said when it was sent
age_band
arm                  campaign_exposures.arm (control / offer / reminder), campaign ``rct_spring``
sent_at              campaign_exposures.exposed_at, channel email
visit, outcome_at    engagement_events: one ``session`` at outcome_at per visit
conversion, spend    orders: one order of ``spend`` at outcome_at per conversion
last_purchase_at,    orders: the customer's last purchase before the campaign (history the
last_purchase_amount behaviour features are computed from)
(none)               contact_points: a pseudonymous ``c<id>@example.invalid`` email, verified;
                     consent_events: an email opt-in at sign-up; suppressions: none
==================== =====================================================================

The world clock: the CSV is a past experiment, so "now" is pinned to one hour after the last
outcome (and no earlier than the end of the 14-day outcome window): the outcomes are complete,
the newest event is fresh, and the next decisions are made as of the end of the data.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from orchestration.core.world.attributes import load_attributes
from orchestration.core.world.contract import OUTCOME_WINDOW_DAYS, contract_tables

CAMPAIGN_ID = "rct_spring"
ATTRIBUTES_FILE = Path(__file__).with_name("attributes.yaml")
CAMPAIGNS_DIR = Path(__file__).with_name("campaigns")  # the campaign to run: both arms as variants
CLOCK_LAG = pd.Timedelta(hours=1)


def _utc(column: pd.Series) -> pd.Series:
    return pd.to_datetime(column, utc=True).dt.as_unit("us")


def map_rct(csv: pd.DataFrame) -> tuple[dict[str, pd.DataFrame], pd.Timestamp]:
    """The raw tables (name -> frame) and the world clock to run them at."""
    ids = csv["customer_id"].astype("int64")
    signed_up = _utc(csv["signup_date"])
    sent_at = _utc(csv["sent_at"])
    outcome_at = _utc(csv["outcome_at"])
    visited, converted = csv["visit"] == 1, csv["conversion"] == 1
    n = len(csv)

    customers = pd.DataFrame(
        {
            "customer_id": ids,
            "signed_up_at": signed_up,
            "region": csv["region"],
            "time_zone": "UTC",
            "updated_at": signed_up,
        }
    )
    contact_points = pd.DataFrame(
        {
            "customer_id": ids,
            "channel": "email",
            "address": "c" + ids.astype(str) + "@example.invalid",
            "is_verified": True,
            "updated_at": signed_up,
        }
    )
    consent_events = pd.DataFrame(
        {
            "consent_event_id": np.arange(1, n + 1),
            "customer_id": ids,
            "channel": "email",
            "is_opted_in": True,
            "source": "signup",
            "consented_at": signed_up,
        }
    )
    history = pd.DataFrame(
        {
            "customer_id": ids,
            "amount": csv["last_purchase_amount"].astype(float),
            "ordered_at": _utc(csv["last_purchase_at"]),
        }
    )
    outcomes = pd.DataFrame(
        {
            "customer_id": ids[converted],
            "amount": csv.loc[converted, "spend"].astype(float),
            "ordered_at": outcome_at[converted],
        }
    )
    orders = pd.concat([history, outcomes], ignore_index=True)
    orders.insert(0, "order_id", np.arange(1, len(orders) + 1))
    orders["category"], orders["sales_channel"] = None, None  # the CSV does not say
    sessions = pd.DataFrame(
        {
            "event_id": np.arange(1, int(visited.sum()) + 1),
            "customer_id": ids[visited].to_numpy(),
            "channel": None,  # a session has no message channel
            "event_type": "session",
            "occurred_at": outcome_at[visited].to_numpy(),
        }
    )
    exposures = pd.DataFrame(
        {
            "exposure_id": np.arange(1, n + 1),
            "campaign_id": CAMPAIGN_ID,
            "customer_id": ids,
            "channel": "email",
            "arm": csv["arm"],
            "exposed_at": sent_at,
        }
    )
    attributes = pd.DataFrame(
        {
            "customer_id": ids,
            "valid_from": sent_at - pd.Timedelta(days=1),
            "plan": csv["plan"],
            "loyalty_member": csv["loyalty_member"].map({"yes": True, "no": False}),
            "tenure_months": csv["tenure_months"].astype(float),
            "age_band": csv["age_band"],
        }
    )
    suppressions = pd.DataFrame(columns=["suppression_id", "customer_id", "channel", "reason"])
    suppressions["suppressed_at"] = pd.Series(dtype="datetime64[us, UTC]")
    tables = {
        "customers": customers,
        "contact_points": contact_points,
        "consent_events": consent_events,
        "orders": orders,
        "engagement_events": sessions,
        "suppressions": suppressions,
        "campaign_exposures": exposures,
        "customer_attributes": attributes,
    }
    window_end = sent_at.max() + pd.Timedelta(days=OUTCOME_WINDOW_DAYS)
    newest = max(orders["ordered_at"].max(), sessions["occurred_at"].max())
    return tables, max(window_end, newest) + CLOCK_LAG


def write_raw(tables: dict[str, pd.DataFrame], raw_dir: Path) -> None:
    """Each table as ``<raw_dir>/<table>.parquet`` with the contract's column types."""
    raw_dir.mkdir(parents=True, exist_ok=True)
    for table in contract_tables(load_attributes(ATTRIBUTES_FILE)):
        frame = tables[table.name][table.schema.names]
        arrow = pa.Table.from_pandas(frame, schema=table.schema, preserve_index=False)
        pq.write_table(arrow, raw_dir / table.file_name)


def main(csv_path: str, raw_dir: str) -> pd.Timestamp:
    tables, clock = map_rct(pd.read_csv(csv_path))
    write_raw(tables, Path(raw_dir))
    return clock


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: map_rct.py <rct.csv> <raw dir>")
    clock = main(sys.argv[1], sys.argv[2])
    data_dir = Path(sys.argv[2]).resolve().parent
    print(
        f"export CAMPAIGN_DATA_DIR={data_dir} CAMPAIGN_DATASET=files "
        f"CAMPAIGN_ATTRIBUTES_FILE={ATTRIBUTES_FILE.resolve()} "
        f"CAMPAIGN_CAMPAIGNS_DIR={CAMPAIGNS_DIR.resolve()} "
        f"CAMPAIGN_WORLD_NOW={clock.isoformat()}"
    )
