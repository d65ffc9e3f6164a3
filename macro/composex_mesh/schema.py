"""The JSON Schema of the section (``composex-mesh schema``), generated from the model the parser uses."""

from __future__ import annotations

import dataclasses
import typing
from typing import Any

from . import SECTION_KEY, __version__, model
from .fields import FieldSpec, fields_of, is_optional, split_optional

_INTRINSIC = {
    "type": "object",
    "minProperties": 1,
    "maxProperties": 1,
    "description": "A CloudFormation intrinsic function, resolved at deploy time.",
}
_DURATION = {"type": "string", "pattern": r"^\d+(ms|s|m|h)$", "examples": ["250ms", "15s", "5m"]}


def section_json_schema() -> dict[str, Any]:
    """A draft 2020-12 JSON Schema of the ``Composex::AppMesh`` section, for editors."""
    definitions: dict[str, Any] = {}
    root = _object_schema(model.Section, definitions)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"https://composex-mesh/{__version__}/section.schema.json",
        "title": SECTION_KEY,
        **root,
        "$defs": dict(sorted(definitions.items())),
    }


def _object_schema(cls: type, definitions: dict[str, Any]) -> dict[str, Any]:
    properties = {spec.key: _field_schema(spec, definitions) for spec in fields_of(cls)}
    schema: dict[str, Any] = {
        "type": "object",
        "description": (cls.__doc__ or "").strip().splitlines()[0],
        "properties": properties,
        "additionalProperties": False,
    }
    required = [spec.key for spec in fields_of(cls) if spec.required]
    if required:
        schema["required"] = required
    return schema


def _reference(cls: type, definitions: dict[str, Any]) -> dict[str, Any]:
    name = cls.__name__
    if name not in definitions:
        definitions[name] = {}
        definitions[name] = _object_schema(cls, definitions)
    return {"$ref": f"#/$defs/{name}"}


def _field_schema(spec: FieldSpec, definitions: dict[str, Any]) -> dict[str, Any]:
    schema = _hint_schema(spec.hint, spec, definitions)
    description = spec.doc
    if spec.backends:
        description = f"{description} Backend {' or '.join(spec.backends)} only.".strip()
    if description:
        schema = {**schema, "description": description}
    default = spec.default
    if not spec.required and isinstance(default, (str, int, bool)) and not is_optional(spec.hint):
        schema = {**schema, "default": default}
    return schema


def _hint_schema(hint: Any, spec: FieldSpec, definitions: dict[str, Any]) -> dict[str, Any]:
    members = split_optional(hint)
    if len(members) > 1:
        return {"anyOf": [_hint_schema(member, spec, definitions) for member in members]}
    hint = members[0]
    origin = typing.get_origin(hint)
    if origin is typing.Literal:
        return {"enum": list(typing.get_args(hint))}
    if origin is tuple:
        schema: dict[str, Any] = {"type": "array", "items": _hint_schema(typing.get_args(hint)[0], spec, definitions)}
        if spec.min_items:
            schema["minItems"] = spec.min_items
        return schema
    if origin is dict:
        return {
            "type": "object",
            "propertyNames": {"pattern": model.NAME_PATTERN},
            "additionalProperties": _hint_schema(typing.get_args(hint)[1], spec, definitions),
        }
    if hint is Any:
        return {"anyOf": [{"type": "string", "minLength": 1}, _INTRINSIC]}
    if hint is model.Duration:
        return dict(_DURATION)
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return _reference(hint, definitions)
    if hint is int:
        number: dict[str, Any] = {"type": "integer"}
        if spec.minimum is not None:
            number["minimum"] = spec.minimum
        if spec.maximum is not None:
            number["maximum"] = spec.maximum
        return number
    if hint is bool:
        return {"type": "boolean"}
    return {"type": "string", "minLength": 1}
