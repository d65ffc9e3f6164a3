"""What every backend produces, and the troposphere bridge that type-checks each generated resource."""

from __future__ import annotations

import copy
import json
import re
import types
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from troposphere import AWSHelperFn, AWSObject, AWSProperty, BaseAWSObject, Tags, encode_to_dict, valid_names

from ..errors import ErrorCollector
from ..parse import is_intrinsic

_LOGICAL_ID = re.compile(r"^[A-Za-z0-9]{1,255}$")


class Intrinsic(AWSHelperFn):  # type: ignore[misc]
    """An intrinsic function kept exactly as written (troposphere accepts it wherever a value goes)."""

    def __init__(self, data: Mapping[str, Any]) -> None:
        self.data = data


def _wrap_intrinsics(value: Any) -> Any:
    if isinstance(value, Mapping):
        if is_intrinsic(value):
            return Intrinsic(value)
        return {key: _wrap_intrinsics(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_wrap_intrinsics(item) for item in value]
    return value


def build(
    resource_type: type[AWSObject],
    logical_id: str,
    properties: Mapping[str, Any],
    depends_on: list[str] | None = None,
) -> dict[str, Any]:
    """A resource dict, its properties type-checked by troposphere's model of ``resource_type``.

    The result is exactly ``resource_type.from_dict(logical_id, ...).to_dict()``'s; a plain-data walk of the
    class's ``props`` gives it several times faster, and falls back to troposphere itself (which then
    answers, or raises its own error) for anything the walk cannot vouch for.
    """
    typed = _checked(resource_type, logical_id, properties)
    if typed is None:
        typed = resource_type.from_dict(logical_id, _wrap_intrinsics(properties)).to_dict()
    resource: dict[str, Any] = {"Type": typed["Type"], "Properties": typed.get("Properties", {})}
    if depends_on:
        resource["DependsOn"] = sorted(set(depends_on))
    return resource


# -- the fast type check --------------------------------------------------------------------------------
#
# ``_checked`` mirrors, on plain JSON data, what troposphere does for ``from_dict(...).to_dict()``
# (``BaseAWSObject._from_dict``, ``__setattr__``, ``_validate_props`` and ``encode_to_dict``):
#
# - a key must be one of the class's ``props``; an intrinsic (``_wrap_intrinsics``) is kept as written,
#   except where troposphere wants an object or a list (there it is an error);
# - an ``AWSProperty`` prop takes a mapping, checked recursively; a list of them takes a list of mappings;
# - a function prop (a validator) gets the value as troposphere would give it and keeps what it returns;
#   a list prop with one validator maps it; a list of types checks each item; a type (or tuple) is isinstance;
# - required props must be present; the output is a fresh copy (tuples become lists).
#
# Anything else (a class overriding troposphere's machinery or defining ``validate``, class-level defaults,
# attribute-named props, data that is not plain JSON, any failed check or raising validator) raises
# ``_Slow``, and ``build`` runs troposphere itself: the fast path only ever answers what troposphere answers.


class _Slow(Exception):
    """The fast check cannot vouch for this input: troposphere decides."""


_OBJECT, _OBJECT_LIST, _FUNCTION, _FUNCTION_LIST, _TYPE_LIST, _TYPE, _NEVER = range(7)
_ATTRIBUTES = frozenset(
    ("Condition", "CreationPolicy", "DeletionPolicy", "DependsOn", "Metadata", "UpdatePolicy", "UpdateReplacePolicy")
)
"""Names troposphere's ``__setattr__`` stores beside the properties, not in them."""
_INSTANCE_NAMES = frozenset(
    ("title", "template", "validation", "do_validation", "propnames", "attributes", "properties", "resource")
)
"""Names that would collide with troposphere's constructor arguments or instance attributes."""
_ATOMS = frozenset((str, int, float, bool, type(None)))
_MACHINERY = (
    "__init__",
    "__setattr__",
    "__getattr__",
    "to_dict",
    "_validate_props",
    "validate_title",
    "add_to_template",
)


@dataclass(frozen=True)
class _Schema:
    props: dict[str, tuple[int, Any]]
    required: tuple[str, ...]
    custom_validate: bool
    top_level: bool
    resource_type: str | None


_SCHEMAS: dict[type, _Schema | None] = {}


def _is_object_class(value: Any) -> bool:
    return isinstance(value, type) and issubclass(value, BaseAWSObject)


def _schema(cls: type) -> _Schema | None:
    try:
        return _SCHEMAS[cls]
    except KeyError:
        schema = _SCHEMAS[cls] = _compile(cls)
        return schema


def _compile(cls: type) -> _Schema | None:
    """``cls``'s props as fast-check kinds; None for a class that does not behave like plain troposphere."""
    if issubclass(cls, AWSObject):
        base: type = BaseAWSObject
        resource_type = getattr(cls, "resource_type", None)
        if getattr(cls, "dictname", None) != "Properties" or not isinstance(resource_type, str):
            return None
        top_level = True
    elif issubclass(cls, AWSProperty):
        base = AWSProperty
        resource_type = None
        if getattr(cls, "dictname", None) is not None or getattr(cls, "resource_type", None) is not None:
            return None
        top_level = False
    else:
        return None
    if any(getattr(cls, name) is not getattr(base, name) for name in _MACHINERY):
        return None
    for name in ("_from_dict", "from_dict"):
        if getattr(getattr(cls, name), "__func__", None) is not getattr(BaseAWSObject, name).__func__:
            return None
    props = cls.props  # type: ignore[attr-defined]
    if not isinstance(props, dict):
        return None
    kinds: dict[str, tuple[int, Any]] = {}
    required: list[str] = []
    for name, (expected, is_required) in props.items():
        if not isinstance(name, str) or name in _INSTANCE_NAMES or getattr(cls, name, None) is not None:
            return None  # a class-level default (or a clash) that troposphere's __init__ would apply
        kinds[name] = (_NEVER, None) if name in _ATTRIBUTES else _kind(expected)
        if is_required:
            required.append(name)
    custom_validate = cls.validate is not BaseAWSObject.validate  # type: ignore[attr-defined]
    return _Schema(kinds, tuple(required), custom_validate, top_level, resource_type)


def _kind(expected: Any) -> tuple[int, Any]:
    if _is_object_class(expected):
        return _OBJECT, expected
    if isinstance(expected, list):
        if len(expected) == 1 and _is_object_class(expected[0]):
            return _OBJECT_LIST, expected[0]
        if len(expected) == 1 and isinstance(expected[0], types.FunctionType):
            return _FUNCTION_LIST, expected[0]
        if expected and all(isinstance(item, type) and not _is_object_class(item) for item in expected):
            return _TYPE_LIST, tuple(expected)
        return _NEVER, None
    if isinstance(expected, types.FunctionType):
        return _FUNCTION, expected
    if isinstance(expected, type):
        return _TYPE, expected
    if (
        isinstance(expected, tuple)
        and expected
        and all(isinstance(item, type) and not _is_object_class(item) for item in expected)
    ):
        return _TYPE, expected
    return _NEVER, None


def _plain(value: Any) -> Any:
    """``encode_to_dict(_wrap_intrinsics(value))`` for plain JSON data: a fresh copy; else ``_Slow``."""
    kind = type(value)
    if kind is dict:
        return {key: _plain(item) for key, item in value.items()}
    if kind is list or kind is tuple:
        return [_plain(item) for item in value]
    if kind in _ATOMS:
        return value
    raise _Slow


def _is_wrapped_intrinsic(value: Any) -> bool:
    return type(value) is dict and is_intrinsic(value)


def _validated(function: Any, value: Any) -> Any:
    """What troposphere stores for a validator prop: the wrapped value (an intrinsic) or the validator's answer."""
    wrapped = _wrap_intrinsics(value)
    if isinstance(wrapped, AWSHelperFn) and not isinstance(wrapped, Tags):
        return wrapped
    return function(wrapped)


def _properties(schema: _Schema, data: Any) -> dict[str, Any]:
    """The encoded properties of an object of ``schema`` made from ``data``; ``_Slow`` when not sure."""
    if type(data) is not dict or is_intrinsic(data):
        raise _Slow
    if schema.custom_validate:
        raise _Slow
    kinds = schema.props
    out: dict[str, Any] = {}
    for name, value in data.items():
        kind, argument = kinds.get(name, (_NEVER, None)) if type(name) is str else (_NEVER, None)
        if kind == _TYPE:
            if not _is_wrapped_intrinsic(value) and not isinstance(value, argument):
                raise _Slow
            out[name] = _plain(value)
        elif kind == _OBJECT:
            nested = _schema(argument)
            if nested is None or nested.top_level:
                raise _Slow
            out[name] = _properties(nested, value)
        elif kind == _OBJECT_LIST:
            nested = _schema(argument)
            if nested is None or nested.top_level or type(value) is not list:
                raise _Slow
            out[name] = [_properties(nested, item) for item in value]
        elif kind == _FUNCTION:
            out[name] = encode_to_dict(_validated(argument, value))
        elif kind == _FUNCTION_LIST:
            if type(value) is not list:
                raise _Slow
            out[name] = encode_to_dict([argument(_wrap_intrinsics(item)) for item in value])
        elif kind == _TYPE_LIST:
            if type(value) is not list:
                raise _Slow
            for item in value:
                if not _is_wrapped_intrinsic(item) and not isinstance(item, argument):
                    raise _Slow
            out[name] = _plain(value)
        else:
            raise _Slow
    for name in schema.required:
        if name not in out:
            raise _Slow
    return out


def _checked(resource_type: Any, logical_id: Any, properties: Any) -> dict[str, Any] | None:
    """``resource_type.from_dict(logical_id, properties).to_dict()``, or None when troposphere must decide."""
    schema = _schema(resource_type) if isinstance(resource_type, type) else None
    if schema is None or not schema.top_level:
        return None
    if type(logical_id) is not str or not valid_names.match(logical_id):
        return None
    try:
        encoded = _properties(schema, properties)
    except Exception:  # _Slow, or a validator's error: troposphere raises it, with its own message
        return None
    typed: dict[str, Any] = {"Type": schema.resource_type}
    if encoded:
        typed["Properties"] = encoded
    return typed


def canonical(value: Any) -> str:
    """A stable text form of a value, for deduplication."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


@dataclass
class Rendered:
    """A backend's output: new resources (with the section path each comes from) and patched user resources."""

    resources: dict[str, dict[str, Any]] = field(default_factory=dict)
    origins: dict[str, str] = field(default_factory=dict)
    patched: dict[str, dict[str, Any]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def add(self, logical_id: str, resource: dict[str, Any], origin: str, errors: ErrorCollector) -> None:
        """Add a generated resource; an identical one under the same ID is kept once, a different one is an error."""
        if not _LOGICAL_ID.match(logical_id):
            errors.add(origin, f"its generated logical ID '{logical_id[:80]}' is not valid: shorten the name.")
            return
        if logical_id in self.resources:
            if canonical(self.resources[logical_id]) != canonical(resource):
                errors.add(
                    origin,
                    f"its generated logical ID {logical_id} is also generated for {self.origins[logical_id]}; "
                    "rename one of them.",
                )
            return
        self.resources[logical_id] = resource
        self.origins[logical_id] = origin

    def patch(self, logical_id: str, original: Mapping[str, Any]) -> dict[str, Any]:
        """The working copy of a user resource that a backend modifies (made once, on first use)."""
        if logical_id not in self.patched:
            self.patched[logical_id] = copy.deepcopy(dict(original))
        return self.patched[logical_id]


def add_depends_on(resource: dict[str, Any], *logical_ids: str) -> None:
    """Append to a resource's DependsOn, keeping the user's form and order."""
    current = resource.get("DependsOn")
    existing = [current] if isinstance(current, str) else list(current or [])
    for logical_id in logical_ids:
        if logical_id not in existing:
            existing.append(logical_id)
    resource["DependsOn"] = existing
