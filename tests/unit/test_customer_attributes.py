"""Customer attributes: the declaration file and the raw validation of customer_attributes.

A bad declaration names the file and the field; a bad attribute value names the file, the row
(with its key) and the attribute: undeclared column, value not allowed, wrong type.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest

from orchestration.core.world.attributes import (
    AttributeDeclarationError,
    load_attributes,
)
from orchestration.core.world.contract import CUSTOMER_ATTRIBUTES, customer_attributes_table
from orchestration.core.world.validation import validate_raw_file
from orchestration.settings import ATTRIBUTES_FILE, HILLSTROM_ATTRIBUTES_FILE

NOW = datetime(2026, 6, 1, tzinfo=UTC)
DECLARATION = """
attributes:
  - name: plan
    type: categorical
    values: [basic, premium]
    description: Plan.
  - name: score
    type: numeric
    description: A score.
  - name: is_vip
    type: boolean
    sensitive: true
    description: VIP.
"""


def _declare(tmp_path: Path, text: str = DECLARATION) -> Path:
    path = tmp_path / "attributes.yaml"
    path.write_text(text)
    return path


def _write(tmp_path: Path, frame: pd.DataFrame) -> Path:
    raw = tmp_path / "raw"
    raw.mkdir(exist_ok=True)
    pd.DataFrame(
        {
            "customer_id": [1, 2],
            "signed_up_at": pd.Timestamp("2025-01-01", tz="UTC"),
            "region": "eu",
            "time_zone": "UTC",
            "updated_at": pd.Timestamp("2025-01-01", tz="UTC"),
        }
    ).to_parquet(raw / "customers.parquet")
    path = raw / "customer_attributes.parquet"
    frame.to_parquet(path, index=False)
    return path


def _rows(**columns) -> pd.DataFrame:
    base = {
        "customer_id": [1, 2, 2],
        "valid_from": pd.to_datetime(["2025-02-01", "2025-02-01", "2025-03-01"], utc=True).as_unit(
            "us"
        ),
        "plan": ["basic", "premium", "basic"],
        "score": [0.5, 1.5, 2.0],
        "is_vip": [True, False, None],
    }
    base.update(columns)
    return pd.DataFrame(base)


def _problems(tmp_path: Path, frame: pd.DataFrame) -> list[str]:
    path = _write(tmp_path, frame)
    return validate_raw_file(path, CUSTOMER_ATTRIBUTES, NOW, attributes=_declare(tmp_path))


def test_the_project_declarations_load_and_encode_categoricals_one_hot():
    default = load_attributes(ATTRIBUTES_FILE)
    assert default.names == ("plan", "loyalty_tier", "age_band")
    assert [a.name for a in default.sensitive] == ["age_band"]
    # one 0/1 column per allowed value; the sensitive age band is audited, never a feature
    assert [c.name for c in default.feature_columns()] == [
        "attr_plan__basic",
        "attr_plan__plus",
        "attr_plan__premium",
        "attr_loyalty_tier__bronze",
        "attr_loyalty_tier__silver",
        "attr_loyalty_tier__gold",
    ]
    hillstrom = load_attributes(HILLSTROM_ATTRIBUTES_FILE)
    assert set(hillstrom.names) == {
        "recency",
        "history",
        "mens",
        "womens",
        "newbie",
        "zip_code",
        "channel",
    }


def test_a_valid_attribute_table_has_no_problems(tmp_path):
    assert _problems(tmp_path, _rows()) == []


def test_numbers_and_booleans_exported_as_text_are_accepted(tmp_path):
    frame = _rows(score=["0.5", "1.5", None], is_vip=["true", "0", None])
    assert _problems(tmp_path, frame) == []


def test_an_undeclared_column_is_named_with_the_declaration_file(tmp_path):
    (problem,) = _problems(tmp_path, _rows(tier=["a", "b", "c"]))
    assert "raw/customer_attributes.parquet: column 'tier' is not a declared attribute" in problem
    assert "declared: plan, score, is_vip" in problem
    assert "attributes.yaml" in problem


def test_a_categorical_value_outside_the_declared_values_names_row_and_key(tmp_path):
    (problem,) = _problems(tmp_path, _rows(plan=["basic", "gold", "basic"]))
    assert "column 'plan' has 1 value(s) outside the allowed set (basic, premium)" in problem
    assert "'gold' at row 1 (customer_id=2, valid_from=2025-02-01T00:00:00+00:00)" in problem


def test_a_number_that_is_not_a_number_names_row_and_attribute(tmp_path):
    (problem,) = _problems(tmp_path, _rows(score=["0.5", "1.5", "high"]))
    assert "column 'score' has 1 value(s) that are not finite numbers" in problem
    assert "'high' at row 2" in problem
    assert "declared numeric" in problem


def test_a_boolean_that_is_not_a_boolean_names_row_and_attribute(tmp_path):
    (problem,) = _problems(tmp_path, _rows(is_vip=["yes", "true", None]))
    assert "column 'is_vip' has 1 value(s) that are not booleans, e.g. 'yes' at row 0" in problem


def test_a_missing_declared_column_and_a_wrong_column_type_are_reported(tmp_path):
    frame = _rows(plan=[1, 2, 3]).drop(columns=["score"])
    problems = _problems(tmp_path, frame)
    assert any("column 'score' is missing (expected double)" in p for p in problems)
    assert any(
        "column 'plan' has type BIGINT, which does not cast to string" in p for p in problems
    )


def test_a_duplicate_key_is_reported(tmp_path):
    frame = _rows(valid_from=pd.to_datetime(["2025-02-01"] * 3, utc=True).as_unit("us"))
    (problem,) = _problems(tmp_path, frame)
    assert "primary key (customer_id, valid_from) is not unique" in problem


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "attributes:\n  - {name: plan, type: categorical, description: x}\n",
            "attribute 'plan' is categorical: list its allowed values",
        ),
        (
            "attributes:\n  - {name: s, type: numeric, values: [a], description: x}\n",
            "only categorical attributes take 'values'",
        ),
        (
            "attributes:\n  - {name: s, type: text, description: x}\n",
            "attributes.0.type: got 'text'",
        ),
        ("attributes:\n  - {name: Plan, type: numeric, description: x}\n", "attributes.0.name"),
        (
            "attributes:\n  - {name: a, type: numeric, description: x}\n"
            "  - {name: a, type: boolean, description: y}\n",
            "declared twice: ['a']",
        ),
        (
            "attributes:\n  - {name: valid_from, type: numeric, description: x}\n",
            "is a key column of customer_attributes",
        ),
    ],
)
def test_a_bad_declaration_names_the_file_and_the_field(tmp_path, text, expected):
    path = _declare(tmp_path, text)
    with pytest.raises(AttributeDeclarationError) as error:
        load_attributes(path)
    assert str(path) in str(error.value)
    assert expected in str(error.value)


def test_the_contract_table_follows_the_declaration(tmp_path):
    table = customer_attributes_table(load_attributes(_declare(tmp_path)))
    assert table.schema.names == ["customer_id", "valid_from", "plan", "score", "is_vip"]
    assert dict(table.allowed_values) == {"plan": ("basic", "premium")}
    assert set(table.nullable) == {"plan", "score", "is_vip"}
