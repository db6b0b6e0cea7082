"""The declared sensitive attributes as segments of the bias audit.

Every attribute declared ``sensitive: true`` (config/attributes.yaml) becomes a dimension of
every campaign's fairness audit (``audience_selection_rates_fair``), beside region, tenure band
and the campaign's own ``fairness.sensitive_columns``, with no campaign edit. Its value is the
customer's as of the decision time (``dim_customer_attributes``). A categorical or boolean is
its own segment; a numeric one is cut into quartile bands (``q1`` lowest .. ``q4``) so a
segment is a group of people, not one value. Unknown values fall in the ``(missing)`` segment.
"""

from __future__ import annotations

import pandas as pd

from orchestration.core.world.attributes import AttributeDeclaration

QUARTILES = ("q1", "q2", "q3", "q4")


def _segments(values: pd.Series, kind: str) -> pd.Series:
    if kind == "numeric":
        numbers = pd.to_numeric(values, errors="coerce")
        if numbers.nunique() < len(QUARTILES):
            return numbers.astype("string")
        return pd.qcut(numbers.rank(method="first"), len(QUARTILES), labels=QUARTILES).astype(
            "string"
        )
    if kind == "boolean":
        return values.map({True: "true", False: "false"}).astype("string")
    return values.astype("string")


def sensitive_segments(
    customers: pd.DataFrame, attributes: pd.DataFrame, declaration: AttributeDeclaration
) -> tuple[pd.DataFrame, tuple[str, ...]]:
    """``customers`` with one column per declared sensitive attribute (its segment), and the
    names of those columns. ``attributes`` is dim_customer_attributes (may lack a column: then
    everyone is in the missing segment of it)."""
    names = tuple(a.name for a in declaration.sensitive if a.name not in customers.columns)
    if not names:
        return customers, ()
    known = attributes[["customer_id", *[n for n in names if n in attributes.columns]]]
    out = customers.merge(known, on="customer_id", how="left")
    for a in declaration.sensitive:
        if a.name in names:
            column = out[a.name] if a.name in out else pd.Series(pd.NA, index=out.index)
            out[a.name] = _segments(column, a.type)
    return out, names
