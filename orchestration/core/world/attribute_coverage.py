"""How much of the customer base a declared attribute covers (the per-attribute asset checks).

A declared attribute that no customer has a value for is almost always a mapping mistake (a
renamed source column exported as all nulls): the check ``attribute_<name>_has_values`` warns
about it, with the share of customers whose latest row has a value, and the value counts of a
categorical or boolean (the range of a numeric) as evidence.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from orchestration.core.world.attributes import Attribute
from orchestration.core.world.contract import CUSTOMER_ATTRIBUTES, CUSTOMERS, raw_path


@dataclass(frozen=True)
class AttributeCoverage:
    attribute: str
    customers: int
    customers_with_value: int
    values: dict[str, int] = field(default_factory=dict)  # categorical / boolean: value -> count
    low: float | None = None  # numeric: the range of the known values
    high: float | None = None

    @property
    def share(self) -> float:
        return self.customers_with_value / self.customers if self.customers else 0.0

    @property
    def has_values(self) -> bool:
        return self.customers_with_value > 0


def attribute_coverage(raw_dir: Path, attribute: Attribute) -> AttributeCoverage:
    """Coverage of ``attribute`` in each customer's latest row of raw customer_attributes."""
    import duckdb

    attributes = raw_path(raw_dir, CUSTOMER_ATTRIBUTES)
    customers = raw_path(raw_dir, CUSTOMERS)
    col = f'"{attribute.name}"'
    con = duckdb.connect()
    try:
        (n_customers,) = con.execute(f"select count(*) from read_parquet('{customers}')").fetchone()
        con.execute(
            f"""create temp view latest as
                select {col} as value from read_parquet('{attributes}')
                qualify row_number() over (partition by customer_id order by valid_from desc) = 1"""
        )
        (known,) = con.execute("select count(value) from latest").fetchone()
        if attribute.type == "numeric":
            low, high = con.execute("select min(value), max(value) from latest").fetchone()
            return AttributeCoverage(attribute.name, n_customers, known, low=low, high=high)
        rows = con.execute(
            "select cast(value as varchar), count(*) from latest where value is not null "
            "group by 1 order by 2 desc"
        ).fetchall()
        return AttributeCoverage(attribute.name, n_customers, known, values=dict(rows))
    finally:
        con.close()
