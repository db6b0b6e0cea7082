"""Load a YAML file into a pydantic model, with errors that name the file, the field and what
is allowed.

One path for every configuration file (campaigns, the contact policy, the gateway): read the
bytes, decode UTF-8, ``yaml.safe_load``, require a mapping at the top level, validate. Whatever
goes wrong is raised as ``error_cls`` (a subclass of :class:`YamlFileError`, itself a
``ValueError``) with one message::

    campaigns/x.yaml: invalid campaign definition (2 problems)
      - campaigns/x.yaml: channel: got 'fax' (allowed: 'email', 'sms' or 'push')
      - campaigns/x.yaml: max_sends: required field is missing

Field paths are dotted, list items by index (``frequency_caps.0.scope``); an unknown field lists
the fields its section does allow.
"""

from __future__ import annotations

import typing
from collections.abc import Callable, Mapping
from pathlib import Path
from types import UnionType
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError
from yaml.reader import ReaderError

ModelT = TypeVar("ModelT", bound=BaseModel)

TOP_LEVEL = "(top level)"


class YamlFileError(ValueError):
    """A YAML file that cannot be used; the message names the file and the fields."""


def read_text(
    path: Path | str, error_cls: type[Exception] = YamlFileError, what: str = "file"
) -> str:
    """The file's text, decoded as UTF-8; a missing or undecodable file raises ``error_cls``."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError as exc:
        raise error_cls(f"{path}: {what} not found") from exc
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise error_cls(
            f"{path}: not UTF-8 text (byte {data[exc.start]:#04x} at line {line}, offset"
            f" {exc.start}); save the {what} as UTF-8"
        ) from exc


def _syntax_error(source: str, text: str, exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    if mark is not None:  # a scanner or parser error
        line, column = mark.line + 1, mark.column + 1
        problem = getattr(exc, "problem", None) or "syntax error"
        context = getattr(exc, "context", None)
        detail = f"{problem} ({context})" if context else problem
    elif isinstance(exc, ReaderError):  # a character YAML does not allow, e.g. a control code
        line = text.count("\n", 0, exc.position) + 1
        column = exc.position - text.rfind("\n", 0, exc.position)
        char = exc.character
        detail = (
            f"character {f'U+{char:04X}' if isinstance(char, int) else repr(char)} is not allowed"
        )
    else:
        return f"{source}: not valid YAML ({exc}); fix the syntax"
    return f"{source}: not valid YAML at line {line}, column {column}: {detail}; fix the syntax"


def parse_yaml_model(
    text: str,
    model_cls: type[ModelT],
    error_cls: type[Exception] = YamlFileError,
    what: str = "file",
    *,
    source: str = "<yaml>",
    empty_is_default: bool = False,
    prepare: Callable[[dict[str, Any]], Any] | None = None,
    reference: str | None = None,
) -> ModelT:
    """``text`` as a ``model_cls``; ``source`` (the file name) heads every error message.

    ``empty_is_default``: an empty document is the model's defaults (else it is "not a mapping").
    ``prepare``: applied to the parsed mapping before validation (e.g. expanding ``$VARS``).
    ``reference``: where the fields are documented, named in the header of a validation error.
    """
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise error_cls(_syntax_error(source, text, exc)) from exc
    if raw is None and empty_is_default:
        raw = {}
    if not isinstance(raw, dict):
        fields = ", ".join(model_cls.model_fields)
        got = "an empty document" if raw is None else f"a {type(raw).__name__}"
        raise error_cls(
            f"{source}: expected a mapping of fields ({fields}) at the top level of the {what},"
            f" got {got}"
        )
    try:
        return model_cls.model_validate(prepare(raw) if prepare else raw)
    except ValidationError as exc:
        raise error_cls(
            describe_validation_error(exc, source, what, model_cls, reference=reference)
        ) from exc


def load_yaml_model(
    path: Path | str,
    model_cls: type[ModelT],
    error_cls: type[Exception] = YamlFileError,
    what: str = "file",
    *,
    empty_is_default: bool = False,
    prepare: Callable[[dict[str, Any]], Any] | None = None,
    reference: str | None = None,
) -> ModelT:
    """The YAML file at ``path`` as a ``model_cls``, or ``error_cls`` naming file and fields."""
    return parse_yaml_model(
        read_text(path, error_cls, what),
        model_cls,
        error_cls,
        what,
        source=str(path),
        empty_is_default=empty_is_default,
        prepare=prepare,
        reference=reference,
    )


# --------------------------------------------------------------------------------------------
# validation errors


def describe_validation_error(
    error: ValidationError,
    source: str,
    what: str = "file",
    model_cls: type[BaseModel] | None = None,
    *,
    reference: str | None = None,
) -> str:
    """One message: a header line, then ``<source>: <field.path>: <message>`` per problem.

    ``model_cls`` (the validated model) lets an unknown field list the fields allowed there.
    """
    items = error.errors()
    count = f" ({len(items)} problems)" if len(items) > 1 else ""
    see = f"; the fields are described in {reference}" if reference else ""
    lines = [f"{source}: invalid {what}{count}{see}"]
    for item in items:
        lines.append(f"  - {source}: {_field(item['loc'])}: {_message(item, model_cls)}")
    return "\n".join(lines)


def _field(loc: tuple[int | str, ...]) -> str:
    if loc and loc[-1] == "[key]":  # a bad key of a mapping
        return f"{_field(loc[:-2])} key {loc[-2]!r}" if len(loc) > 2 else f"key {loc[-2]!r}"
    return ".".join(str(part) for part in loc) or TOP_LEVEL


def _message(item: Mapping[str, Any], model_cls: type[BaseModel] | None) -> str:
    kind, ctx, value = item["type"], item.get("ctx") or {}, item.get("input")
    if kind in ("literal_error", "enum"):
        return f"got {value!r} (allowed: {ctx.get('expected', '?')})"
    if kind == "extra_forbidden":
        allowed = _fields_at(model_cls, item["loc"][:-1])
        return "unknown field" + (f" (allowed: {', '.join(allowed)})" if allowed else "")
    if kind == "missing":
        return "required field is missing"
    message = str(item["msg"]).removeprefix("Value error, ")
    if isinstance(value, str | int | float | bool) and kind != "value_error":
        message += f", got {value!r}"
    return message


def _fields_at(model_cls: type[BaseModel] | None, loc: tuple[int | str, ...]) -> list[str]:
    """The field names of the model at ``loc`` inside ``model_cls`` ([] when it is not one)."""
    annotation: Any = model_cls
    for part in loc:
        annotation = _unwrap(annotation)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            field = annotation.model_fields.get(str(part))
            if field is None:
                return []
            annotation = field.annotation
        elif typing.get_origin(annotation) in (list, tuple, set, frozenset) and isinstance(
            part, int
        ):
            annotation = typing.get_args(annotation)[0]
        elif typing.get_origin(annotation) is dict:
            annotation = typing.get_args(annotation)[1]
        else:
            return []
    annotation = _unwrap(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return list(annotation.model_fields)
    return []


def _unwrap(annotation: Any) -> Any:
    """``X | None`` and ``Optional[X]`` as ``X`` (other unions stay as they are)."""
    if typing.get_origin(annotation) in (typing.Union, UnionType):
        members = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(members) == 1:
            return members[0]
    return annotation
