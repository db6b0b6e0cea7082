"""The bulk online load's two shortcuts keep Feast's results: the key order it inserts in
(``key_order``, a uint64 argsort where it can) and the dedup it skips when keys are unique."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace

import numpy as np
import pyarrow as pa
import pytest
from feast.infra.compute_engines.backends.pandas_backend import PandasBackend
from feast.infra.compute_engines.dag.context import ColumnInfo
from feast.infra.compute_engines.local.arrow_table_value import ArrowTableValue
from feast.infra.compute_engines.local.nodes import LocalDedupNode

from orchestration.core.features.online_store import _ArrowDedupNode
from orchestration.core.features.online_store_codec import encode_entity_keys, key_order


def byte_order(keys: pa.Array) -> list[int]:
    """The oracle: Python's stable sort of the keys' bytes."""
    values = keys.to_pylist()
    return sorted(range(len(values)), key=lambda i: values[i])


def integer_keys(values: list[int]) -> pa.Array:
    return encode_entity_keys([("customer_id", pa.array(values, pa.int64()), "INT64")])


@pytest.mark.parametrize(
    "keys",
    [
        pytest.param(integer_keys([5, -1, 2**40, 0, 5, -(2**62), 7, 256, 255, 5]), id="int64"),
        pytest.param(integer_keys([3, 3, 3]), id="all-equal"),
        pytest.param(integer_keys(list(range(1000, 0, -1))).slice(17, 500), id="sliced"),
        pytest.param(
            integer_keys(list(np.random.default_rng(3).integers(-(2**63), 2**63 - 1, 5000))).cast(
                pa.large_binary()
            ),
            id="random-large-binary",
        ),
        pytest.param(pa.array([b"b", b"ab", b"a", b"", b"ab"]), id="varying-length"),
        pytest.param(
            pa.array([b"x" * 9, b"y" + b"x" * 8, b"x" * 8 + b"y", b"x" * 9]),
            id="apart-over-8-bytes",
        ),
        pytest.param(pa.array([b"\x00\xff", b"\x00\x01", b"\x01\x00"]), id="unsigned-bytes"),
    ],
)
def test_key_order_is_the_stable_byte_order(keys):
    assert key_order(keys).to_pylist() == byte_order(keys)


def run_dedup(node_class: type, table: pa.Table) -> pa.Table:
    source = SimpleNamespace(name="source", outputs=[])
    info = ColumnInfo(
        join_keys=["customer_id"], feature_cols=["spend"], ts_col="ts", created_ts_col=None
    )
    node = node_class("dedup", info, PandasBackend(), inputs=[source])
    context = SimpleNamespace(node_outputs={"source": ArrowTableValue(data=table)})
    return node.execute(context).data


def latest(table: pa.Table) -> dict[int, float]:
    return dict(zip(table["customer_id"].to_pylist(), table["spend"].to_pylist(), strict=True))


def test_dedup_keeps_the_latest_row_of_a_repeated_entity_as_feast_does():
    old, new = datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 3, 2, tzinfo=UTC)
    table = pa.table(
        {
            "customer_id": [1, 2, 1, 3],
            "spend": [10.0, 20.0, 11.0, 30.0],
            "ts": pa.array([old, new, new, old], pa.timestamp("us", tz="UTC")),
        }
    )
    ours = run_dedup(_ArrowDedupNode, table)
    assert latest(ours) == {1: 11.0, 2: 20.0, 3: 30.0} == latest(run_dedup(LocalDedupNode, table))


def test_dedup_passes_unique_rows_through_unchanged():
    table = pa.table(
        {
            "customer_id": [3, 1, 2],
            "spend": [30.0, None, 20.0],
            "ts": pa.array([datetime(2026, 3, 1, tzinfo=UTC)] * 3, pa.timestamp("us", tz="UTC")),
        }
    )
    assert run_dedup(_ArrowDedupNode, table).equals(table)
