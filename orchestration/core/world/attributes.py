"""Customer attributes, declared in one file (``config/attributes.yaml``) instead of coded.

A team's own customer columns (plan, loyalty tier, age band, scores from other systems) enter
through the raw table ``customer_attributes`` (one column per declared attribute, see
``orchestration.core.world.contract.customer_attributes_table``) and the declaration says what
each one is::

    attributes:
      - name: plan
        type: categorical          # numeric | categorical | boolean
        values: [basic, plus, premium]
        sensitive: false           # true: audited for bias, never a reason to target
        description: The customer's subscription plan.

From the declaration, with no code edits, come: the raw validation of the table, the dbt models
(the pipeline passes :meth:`AttributeDeclaration.dbt_vars` as the ``customer_attributes`` var),
the Feast feature view ``customer_attributes`` (its fields: :meth:`feature_columns`), hence the
training set, the model, the drift gate and the explanations, the per-attribute asset checks
and, for ``sensitive`` attributes, the bias audit of every campaign.

Encoding (the model's input): a numeric attribute is one float column ``attr_<name>``; a boolean
one 0/1 column ``attr_<name>``; a categorical one is **one-hot encoded** in the warehouse, one 0/1
column ``attr_<name>__<value>`` per allowed value. A customer without a known value (no row
valid before the snapshot, or a null) has null in every column of that attribute, which the
LightGBM learners treat as missing. One-hot in the warehouse keeps every feature numeric for
Feast, the online store, drift and the learners alike.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from orchestration.core.common.yaml_files import YamlFileError, load_yaml_model

AttributeType = Literal["numeric", "categorical", "boolean"]
FEATURE_PREFIX = "attr_"
# Names become SQL column names and feature names: lower-case identifiers, not too long.
NAME_PATTERN = r"^[a-z][a-z0-9_]{0,39}$"
# Columns of the raw table that are not attributes.
KEY_COLUMNS = ("customer_id", "valid_from")
RESERVED_NAMES = frozenset(KEY_COLUMNS)


class AttributeDeclarationError(YamlFileError):
    """The declaration file cannot be used; the message names the file and the field."""


def value_slug(value: str) -> str:
    """The part of a one-hot column name that stands for ``value`` (``65+`` -> ``65_plus``)."""
    text = value.strip().lower().replace("+", "_plus").replace("<", "lt_").replace(">", "gt_")
    return re.sub(r"[^a-z0-9]+", "_", text).strip("_") or "blank"


class Attribute(BaseModel):
    """One declared attribute."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=NAME_PATTERN)
    type: AttributeType
    values: tuple[str, ...] | None = None
    sensitive: bool = False
    description: str = Field(min_length=1)

    @field_validator("name")
    @classmethod
    def _not_reserved(cls, name: str) -> str:
        if name in RESERVED_NAMES:
            raise ValueError(
                f"{name!r} is a key column of customer_attributes; choose another name"
            )
        return name

    @model_validator(mode="after")
    def _values_fit_the_type(self) -> Attribute:
        if self.type == "categorical":
            if not self.values:
                raise ValueError(
                    f"attribute {self.name!r} is categorical: list its allowed values under "
                    "'values'"
                )
            if len(set(self.values)) != len(self.values):
                raise ValueError(f"attribute {self.name!r} lists a value twice in 'values'")
            slugs = [value_slug(v) for v in self.values]
            if len(set(slugs)) != len(slugs):
                raise ValueError(
                    f"attribute {self.name!r}: values {list(self.values)} give the same column "
                    f"names ({slugs}); make them differ in letters or digits"
                )
        elif self.values is not None:
            raise ValueError(
                f"attribute {self.name!r} is {self.type}: only categorical attributes take 'values'"
            )
        return self


@dataclass(frozen=True)
class FeatureColumn:
    """One model input column that an attribute becomes."""

    name: str
    dtype: Literal["float64", "int64"]
    attribute: str
    value: str | None = None  # the categorical value a one-hot column stands for

    def describe(self) -> str:
        """How an explanation names it: ``plan = premium``, ``age``."""
        return f"{self.attribute} = {self.value}" if self.value is not None else self.attribute


class AttributeDeclaration(BaseModel):
    """The whole declaration file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    attributes: tuple[Attribute, ...] = ()

    @model_validator(mode="after")
    def _unique_names(self) -> AttributeDeclaration:
        names = [a.name for a in self.attributes]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"attribute names must be unique; declared twice: {twice}")
        return self

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(a.name for a in self.attributes)

    def get(self, name: str) -> Attribute | None:
        return next((a for a in self.attributes if a.name == name), None)

    @property
    def sensitive(self) -> tuple[Attribute, ...]:
        return tuple(a for a in self.attributes if a.sensitive)

    @property
    def model_attributes(self) -> tuple[Attribute, ...]:
        """The attributes the model may learn from: every one that is not sensitive."""
        return tuple(a for a in self.attributes if not a.sensitive)

    def feature_columns(self) -> list[FeatureColumn]:
        """The model input columns, in declaration order (one-hot for categoricals); sensitive
        attributes are audited, never model inputs, so they have none."""
        columns: list[FeatureColumn] = []
        for a in self.model_attributes:
            if a.type == "numeric":
                columns.append(FeatureColumn(f"{FEATURE_PREFIX}{a.name}", "float64", a.name))
            elif a.type == "boolean":
                columns.append(FeatureColumn(f"{FEATURE_PREFIX}{a.name}", "int64", a.name))
            else:
                columns.extend(
                    FeatureColumn(f"{FEATURE_PREFIX}{a.name}__{value_slug(v)}", "int64", a.name, v)
                    for v in a.values or ()
                )
        return columns

    def dbt_vars(self) -> list[dict]:
        """The ``customer_attributes`` dbt var: what the generated SQL needs of each attribute
        (``columns``: its feature columns, none for a sensitive one)."""
        return [
            {
                "name": a.name,
                "type": a.type,
                "sensitive": a.sensitive,
                "columns": [
                    {"name": c.name, "value": c.value}
                    for c in self.feature_columns()
                    if c.attribute == a.name
                ],
            }
            for a in self.attributes
        ]

    def digest(self) -> str:
        """A short hash of what the pipeline sees of the declaration (not its comments)."""
        payload = json.dumps(self.model_dump(mode="json"), sort_keys=True).encode()
        return hashlib.sha256(payload).hexdigest()[:12]


def describe_feature(column: str, declaration: AttributeDeclaration) -> str:
    """A feature's name for people: an attribute column as ``plan = premium``, others as is."""
    for c in declaration.feature_columns():
        if c.name == column:
            return c.describe()
    return column


def load_attributes(path: Path | str) -> AttributeDeclaration:
    """The declaration at ``path``; :class:`AttributeDeclarationError` names file and field."""
    return load_yaml_model(
        path,
        AttributeDeclaration,
        AttributeDeclarationError,
        what="attribute declaration",
        empty_is_default=True,
        reference="docs/bring-your-own-data.md",
    )


def dbt_vars_json(path: Path | str) -> str:
    """``{"customer_attributes": [...]}`` for ``dbt --vars``, from the declaration at ``path``."""
    return json.dumps({"customer_attributes": load_attributes(path).dbt_vars()})


if __name__ == "__main__":  # `python -m orchestration.core.world.attributes --dbt-vars [file]`
    import sys

    from orchestration.settings import Settings

    args = [a for a in sys.argv[1:] if a != "--dbt-vars"]
    print(dbt_vars_json(args[0] if args else Settings.from_env().attributes_file))
