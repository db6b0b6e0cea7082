"""The entities features are keyed by."""

from feast import Entity, ValueType

customer = Entity(
    name="customer",
    join_keys=["customer_id"],
    value_type=ValueType.INT64,
    description="A customer, by pseudonymous integer id (the raw contract's customer_id).",
)
