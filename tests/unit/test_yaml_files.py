"""The shared YAML loader: every failure names the file, and where it can, the line or the field
and what is allowed."""

from __future__ import annotations

from typing import Literal

import pytest
from pydantic import BaseModel, ConfigDict, Field

from orchestration.core.common.yaml_files import (
    YamlFileError,
    load_yaml_model,
    parse_yaml_model,
)


class Window(BaseModel):
    model_config = ConfigDict(extra="forbid")
    start: str
    end: str


class Rule(BaseModel):
    model_config = ConfigDict(extra="forbid")
    scope: Literal["all", "email", "sms"]
    limit: int = Field(1, ge=0)


class Config(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    size: int = 1
    rules: list[Rule] = Field(default_factory=list)
    window: Window | None = None


class ConfigError(YamlFileError):
    pass


def _load(tmp_path, text: str | bytes, **kwargs) -> Config:
    path = tmp_path / "config.yaml"
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return load_yaml_model(path, Config, ConfigError, "test config", **kwargs)


def _error(tmp_path, text: str | bytes, **kwargs) -> str:
    with pytest.raises(ConfigError) as error:
        _load(tmp_path, text, **kwargs)
    message = str(error.value)
    assert str(tmp_path / "config.yaml") in message
    return message


def test_a_valid_file_loads(tmp_path):
    config = _load(tmp_path, "name: a\nrules: [{scope: sms, limit: 3}]\n")
    assert config == Config(name="a", rules=[Rule(scope="sms", limit=3)])


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        pytest.param(
            "name: a\nsize: 2\nrules: [{scope: sms}\n",
            ["not valid YAML at line 4", "column"],
            id="syntax-error-names-its-line",
        ),
        pytest.param(
            "name: a\n  size: 2\n",
            ["not valid YAML at line 2, column 7"],
            id="bad-indentation-names-its-line",
        ),
        pytest.param(
            "name: a\nsize: \x07\n",
            ["not valid YAML at line 2, column 7", "U+0007"],
            id="forbidden-character-names-its-line",
        ),
        pytest.param(b"name: a\nsize: caf\xe9\n", ["not UTF-8", "line 2", "0xe9"], id="not-utf8"),
    ],
)
def test_an_unreadable_file_names_the_file_and_where(tmp_path, text, fragments):
    message = _error(tmp_path, text)
    for fragment in fragments:
        assert fragment in message


def test_a_missing_file_names_the_file(tmp_path):
    with pytest.raises(ConfigError, match="config.yaml: test config not found"):
        load_yaml_model(tmp_path / "config.yaml", Config, ConfigError, "test config")


@pytest.mark.parametrize(
    ("text", "line"),
    [
        pytest.param(
            "name: a\nrules: [{scope: sms, limt: 3}]\n",
            "rules.0.limt: unknown field (allowed: scope, limit)",
            id="unknown-field-lists-the-fields-allowed-there",
        ),
        pytest.param(
            "name: a\nwindow: {start: a, end: b, step: c}\n",
            "window.step: unknown field (allowed: start, end)",
            id="unknown-field-in-an-optional-section",
        ),
        pytest.param(
            "name: a\nsize: big\n",
            "size: Input should be a valid integer, unable to parse string as an integer, got 'big'",
            id="wrong-type-names-the-value",
        ),
        pytest.param("size: 2\n", "name: required field is missing", id="missing-field"),
        pytest.param(
            "name: a\nrules: [{scope: all}, {scope: fax}]\n",
            "rules.1.scope: got 'fax' (allowed: 'all', 'email' or 'sms')",
            id="literal-lists-the-allowed-values",
        ),
    ],
)
def test_a_field_problem_names_the_file_and_the_field(tmp_path, text, line):
    message = _error(tmp_path, text)
    assert message.splitlines()[0] == f"{tmp_path / 'config.yaml'}: invalid test config"
    assert f"  - {tmp_path / 'config.yaml'}: {line}" in message.splitlines()


def test_every_problem_is_listed_once_with_the_file(tmp_path):
    message = _error(tmp_path, "size: x\nextra: 1\n")
    lines = message.splitlines()
    assert "(3 problems)" in lines[0]
    assert len(lines) == 4
    assert all(line.startswith(f"  - {tmp_path / 'config.yaml'}: ") for line in lines[1:])


@pytest.mark.parametrize(("text", "got"), [("- a\n- b\n", "a list"), ("just text\n", "a str")])
def test_a_top_level_that_is_not_a_mapping_is_rejected(tmp_path, text, got):
    message = _error(tmp_path, text)
    assert "expected a mapping of fields (name, size, rules, window)" in message
    assert message.endswith(f"got {got}")


def test_an_empty_file_is_an_error_unless_it_means_the_defaults(tmp_path):
    assert "got an empty document" in _error(tmp_path, "")

    class Defaults(BaseModel):
        size: int = 3

    assert parse_yaml_model("", Defaults, empty_is_default=True) == Defaults()


def test_prepare_runs_on_the_mapping_before_validation(tmp_path):
    config = _load(tmp_path, "name: a\n", prepare=lambda raw: {**raw, "size": 9})
    assert config.size == 9


def test_parse_names_the_source_and_the_base_error_is_a_value_error():
    with pytest.raises(ValueError, match=r"^<inline>: invalid file\n  - <inline>: name: "):
        parse_yaml_model("name: [1]\n", Config, source="<inline>")
