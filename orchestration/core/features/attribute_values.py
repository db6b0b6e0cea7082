"""The declared attributes a decision was made on, for its explanation (``campaign explain``).

Decisions record the feature snapshot they were scored on (``feature_timestamp``); the feature
versions under ``<data>/features/versions`` keep that snapshot (the newest ``VERSIONS_KEPT``), so
the attribute values the model saw are read back from there and decoded from the feature columns
(``attr_plan__premium = 1`` reads ``plan = premium``; unknown reads ``unknown``). Sensitive
attributes are never features, so they never appear in an explanation.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pandas as pd

from orchestration.core.world.attributes import AttributeDeclaration

TABLE = "feat_customer_attributes.parquet"


def decode_attributes(row: pd.Series, declaration: AttributeDeclaration) -> dict[str, str]:
    """Attribute -> value for one feature row (a numeric as its number, a boolean true/false)."""
    out: dict[str, str] = {}
    for attribute in declaration.model_attributes:
        columns = [c for c in declaration.feature_columns() if c.attribute == attribute.name]
        values = [row.get(c.name) for c in columns]
        if not values or all(pd.isna(v) for v in values):
            out[attribute.name] = "unknown"
        elif attribute.type == "categorical":
            hot = [c.value for c, v in zip(columns, values, strict=True) if v == 1]
            out[attribute.name] = hot[0] if hot else "unknown"
        elif attribute.type == "boolean":
            out[attribute.name] = "true" if values[0] == 1 else "false"
        else:
            out[attribute.name] = f"{float(values[0]):g}"
    return out


def attributes_at(
    features_dir: Path, customer_id: int, at: datetime, declaration: AttributeDeclaration
) -> dict[str, str] | None:
    """The customer's declared attributes in the snapshot at ``at`` (None: no kept version has
    that snapshot, or the customer is not in it)."""
    import duckdb

    files = sorted(Path(features_dir).glob(f"versions/*/{TABLE}"), reverse=True)
    if not files or not declaration.model_attributes:
        return None
    con = duckdb.connect()
    try:
        for file in files:  # newest version first
            frame = con.execute(
                "select * from read_parquet($file) where customer_id = $id "
                "and event_timestamp = $at",
                {"file": str(file), "id": int(customer_id), "at": pd.Timestamp(at)},
            ).df()
            if len(frame):
                return decode_attributes(frame.iloc[0], declaration)
    finally:
        con.close()
    return None
