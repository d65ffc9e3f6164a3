"""A fast, exact stand-in for ``troposphere``'s ``from_dict(...).to_dict()`` on the plain data the backends build.

troposphere is the resource model: every generated resource is type-checked against its classes. Building
troposphere objects and encoding them back costs most of an expansion, so ``checked`` walks the same
``props`` on plain JSON data instead, and declines (None) whenever it cannot vouch for giving exactly
troposphere's answer; ``backends.base.build`` then runs troposphere itself.
"""

from __future__ import annotations

import types
from collections.abc import Mapping
from typing import Any

import troposphere
from troposphere import AWSHelperFn, AWSObject, AWSProperty, BaseAWSObject, Tags, encode_to_dict, valid_names

from ..deploy_view import is_intrinsic


class Intrinsic(AWSHelperFn):  # type: ignore[misc]
    """An intrinsic function kept exactly as written (troposphere accepts it wherever a value goes)."""

    def __init__(self, data: Mapping[str, Any]) -> None:
        self.data = data


def wrap_intrinsics(value: Any) -> Any:
    if isinstance(value, Mapping):
        if is_intrinsic(value):
            return Intrinsic(value)
        return {key: wrap_intrinsics(item) for key, item in value.items()}
    if isinstance(value, list):
        return [wrap_intrinsics(item) for item in value]
    return value


# -- the fast type check --------------------------------------------------------------------------------
#
# ``checked`` mirrors, on plain JSON data, what troposphere does for ``from_dict(...).to_dict()``
# (``BaseAWSObject._from_dict``, ``__setattr__``, ``_validate_props`` and ``encode_to_dict``):
#
# - a key must be one of the class's ``props``; an intrinsic (``wrap_intrinsics``) is kept as written,
#   except where troposphere wants an object or a list (there it is an error);
# - an ``AWSProperty`` prop takes a mapping, checked recursively; a list of them takes a list of mappings;
# - a function prop (a validator) gets the value as troposphere would give it and keeps what it returns;
#   a list prop with one validator maps it; a list of types checks each item; a type (or tuple) is isinstance;
# - an attribute-named prop (``Metadata``...) of an ``AWSProperty`` is converted but stored unchecked;
# - required props must be present; a resource class's own ``validate()`` (SecurityGroupIngress) runs on
#   the instance troposphere would hold; the output is a fresh copy (tuples become lists).
#
# Anything else (a class overriding troposphere's machinery, a nested class with its own ``validate``,
# class-level defaults, data that is not plain JSON, any failed check or raising validator) raises ``_Slow``,
# and ``build`` runs troposphere itself: the fast path only ever answers what troposphere answers. Checked
# by ``tests/benchmarks/fuzz_build.py`` (mutated inputs of the golden cases: the same dict, or it declines).


_MIRRORED_TROPOSPHERE = "4.11.1"
"""The troposphere whose ``BaseAWSObject`` the fast check mirrors; with any other, troposphere always decides
(re-read ``BaseAWSObject`` and run ``tests/benchmarks/fuzz_build.py`` before moving this)."""
_FAST = troposphere.__version__ == _MIRRORED_TROPOSPHERE


class _Slow(Exception):
    """The fast check cannot vouch for this input: troposphere decides."""


_OBJECT, _OBJECT_LIST, _FUNCTION, _FUNCTION_LIST, _TYPE_LIST, _TYPE, _RAW_LIST, _RAW, _NEVER = range(9)
_ATTRIBUTE_ORDER = (
    "Condition",
    "CreationPolicy",
    "DeletionPolicy",
    "DependsOn",
    "Metadata",
    "UpdatePolicy",
    "UpdateReplacePolicy",
)
_ATTRIBUTES = frozenset(_ATTRIBUTE_ORDER)
"""Names troposphere's ``__setattr__`` stores in ``resource`` unchecked: beside an AWSObject's properties,
among an AWSProperty's."""
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


class _Schema:
    """A troposphere class's props as fast-check kinds (a plain class: a dataclass costs import time)."""

    __slots__ = ("custom_validate", "props", "required", "resource_type", "top_level")

    def __init__(
        self,
        props: dict[str, tuple[int, Any]],
        required: tuple[str, ...],
        custom_validate: bool,
        top_level: bool,
        resource_type: str | None,
    ) -> None:
        self.props = props
        self.required = required
        self.custom_validate = custom_validate
        self.top_level = top_level
        self.resource_type = resource_type


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
        if name not in _ATTRIBUTES:
            kinds[name] = _kind(expected)
        elif not top_level and name != "DependsOn":
            kinds[name] = _attribute_kind(expected)
        else:  # an AWSObject keeps it outside Properties, where build() would drop it
            kinds[name] = (_NEVER, None)
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


def _attribute_kind(expected: Any) -> tuple[int, Any]:
    """An attribute-named prop of an ``AWSProperty`` (e.g. ``Metadata``): ``_from_dict`` converts it, but
    ``__setattr__`` stores it in the properties unchecked."""
    if _is_object_class(expected):
        return _OBJECT, expected
    if isinstance(expected, list):
        if expected and _is_object_class(expected[0]):
            return _OBJECT_LIST, expected[0]
        return _RAW_LIST, None
    return _RAW, None


def _plain(value: Any) -> Any:
    """``encode_to_dict(wrap_intrinsics(value))`` for plain JSON data: a fresh copy; else ``_Slow``."""
    kind = type(value)
    if kind is dict:
        return {key: item if type(item) in _ATOMS else _plain(item) for key, item in value.items()}
    if kind is list or kind is tuple:
        return [item if type(item) in _ATOMS else _plain(item) for item in value]
    if kind in _ATOMS:
        return value
    raise _Slow


def _is_wrapped_intrinsic(value: Any) -> bool:
    return type(value) is dict and is_intrinsic(value)


def _validated(function: Any, value: Any) -> Any:
    """What troposphere stores for a validator prop: the wrapped value (an intrinsic) or the validator's answer."""
    wrapped = wrap_intrinsics(value)
    if isinstance(wrapped, AWSHelperFn) and not isinstance(wrapped, Tags):
        return wrapped
    return function(wrapped)


def _properties(schema: _Schema, data: Any) -> dict[str, Any]:
    """The encoded properties of an object of ``schema`` made from ``data``; ``_Slow`` when not sure."""
    if type(data) is not dict or is_intrinsic(data):
        raise _Slow
    if schema.custom_validate and not schema.top_level:
        raise _Slow
    kinds = schema.props
    never: tuple[int, Any] = (_NEVER, None)
    out: dict[str, Any] = {}
    for name, value in data.items():
        kind, argument = kinds.get(name, never)  # props are str-keyed: any other key is never found
        if kind == _TYPE:
            if type(value) in _ATOMS:
                if not isinstance(value, argument):
                    raise _Slow
                out[name] = value
            else:
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
            if type(value) in _ATOMS:  # the common case: a scalar in, a scalar out, nothing to wrap or encode
                checked = argument(value)
                out[name] = checked if type(checked) in _ATOMS else encode_to_dict(checked)
            else:
                out[name] = encode_to_dict(_validated(argument, value))
        elif kind == _FUNCTION_LIST:
            if type(value) is not list:
                raise _Slow
            out[name] = encode_to_dict([argument(wrap_intrinsics(item)) for item in value])
        elif kind == _TYPE_LIST:
            if type(value) is not list:
                raise _Slow
            for item in value:
                if not _is_wrapped_intrinsic(item) and not isinstance(item, argument):
                    raise _Slow
            out[name] = _plain(value)
        elif kind == _RAW:
            out[name] = _plain(value)
        elif kind == _RAW_LIST:
            if type(value) is not list:
                raise _Slow
            out[name] = _plain(value)
        else:
            raise _Slow
    for name in schema.required:
        if name not in out:
            raise _Slow
    return out


_FLAT = frozenset((_FUNCTION, _FUNCTION_LIST, _TYPE_LIST, _TYPE))


def _instance(cls: Any, schema: _Schema, logical_id: str, data: dict[str, Any]) -> Any:
    """The object troposphere's ``from_dict`` makes, for its ``validate()``; already checked by ``_properties``.

    Without nested objects, it is built directly: the instance state ``BaseAWSObject.__init__`` sets, with
    the values its ``__setattr__`` stores (intrinsics wrapped, validators' answers).
    """
    stored: dict[str, Any] = {}
    for name, value in data.items():
        kind, argument = schema.props[name]
        if kind not in _FLAT:
            return cls._from_dict(logical_id, **wrap_intrinsics(data))
        if kind == _FUNCTION:
            stored[name] = _validated(argument, value)
        elif kind == _FUNCTION_LIST:
            stored[name] = [argument(wrap_intrinsics(item)) for item in value]
        else:
            stored[name] = wrap_intrinsics(value)
    instance = object.__new__(cls)
    instance.__dict__.update(
        {
            "title": logical_id,
            "template": None,
            "do_validation": True,
            "propnames": set(cls.props),
            "attributes": list(_ATTRIBUTE_ORDER),
            "properties": stored,
            "resource": {"Properties": stored, "Type": schema.resource_type},
            "_BaseAWSObject__initialized": True,
        }
    )
    return instance


def checked(resource_type: Any, logical_id: Any, properties: Any) -> dict[str, Any] | None:
    """``resource_type.from_dict(logical_id, properties).to_dict()``, or None when troposphere must decide."""
    schema = _schema(resource_type) if _FAST and isinstance(resource_type, type) else None
    if schema is None or not schema.top_level:
        return None
    if type(logical_id) is not str or not valid_names.match(logical_id):
        return None
    try:
        encoded = _properties(schema, properties)
        if schema.custom_validate:  # e.g. SecurityGroupIngress: the class's own rule, on what troposphere holds
            _instance(resource_type, schema, logical_id, properties).validate()
    except Exception:  # _Slow, or a validator's error: troposphere raises it, with its own message
        return None
    typed: dict[str, Any] = {"Type": schema.resource_type}
    if encoded:
        typed["Properties"] = encoded
    return typed
