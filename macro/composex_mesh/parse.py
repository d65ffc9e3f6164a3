"""Parse the raw section into the typed model, collecting every error with its path.

Driven by the model's field metadata (``fields.py``): types, enums, ranges and unknown keys are checked
here; rules that span several keys (exactly one of, protocols, references) live in ``checks.py``.
"""

from __future__ import annotations

import dataclasses
import re
import typing
from collections.abc import Mapping
from typing import Any

from . import model
from .deploy_view import NO_VALUE, DeployView, Unknown, is_intrinsic
from .errors import ErrorCollector
from .fields import FieldSpec, PartialList, did_you_mean, fields_of, split_optional

_INVALID = object()
_DURATION = re.compile(r"^(\d+)(ms|s|m|h)$")
_DURATION_UNITS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000}
_NAME = re.compile(model.NAME_PATTERN)
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_NAMED_MAPS = {"Nodes", "Routers", "Services", "Targets"}


def join_path(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def describe(raw: Any) -> str:
    """A short, readable rendering of a user's value for error messages."""
    if isinstance(raw, bool):
        return "true" if raw else "false"
    if isinstance(raw, str):
        return f"'{raw}'" if len(raw) <= 60 else f"'{raw[:57]}...'"
    if isinstance(raw, Mapping):
        return "an intrinsic function" if is_intrinsic(raw) else "a mapping"
    if isinstance(raw, list):
        return "a list"
    if raw is None:
        return "null"
    return str(raw)


class SectionParser:
    """Turns the raw section into a ``model.Section``; every problem goes to ``errors``."""

    def __init__(
        self, errors: ErrorCollector, parameter_values: Mapping[str, Any], view: DeployView | None = None
    ) -> None:
        self.errors = errors
        self.parameter_values = parameter_values
        self.view = view
        """The template as this deploy sees it: intrinsics in the section are read through it (SPEC §7)."""
        self.broken_names: set[str] = set()
        """Names of nodes, routers and services that exist but failed to parse: references to them are fine."""

    def parse_section(self, raw: Any) -> model.Section | None:
        section = self.parse_object(model.Section, raw, "")
        return section if isinstance(section, model.Section) else None

    def parse_object(self, cls: type, raw: Any, path: str) -> Any:
        if not isinstance(raw, Mapping) or is_intrinsic(raw):
            self.errors.add_parse(path, f"must be a mapping with the keys {_key_list(cls)}, not {describe(raw)}.")
            return _INVALID
        specs = fields_of(cls)
        known = {spec.key for spec in specs}
        for name in raw:
            if name not in known:
                hint = did_you_mean(str(name), known) or f" Valid keys: {_key_list(cls)}."
                self.errors.add_parse(join_path(path, str(name)), f"is not a valid key.{hint}")
        values: dict[str, Any] = {}
        failed = False
        for spec in specs:
            field_path = join_path(path, spec.key)
            if spec.key not in raw:
                if spec.required:
                    self.errors.add_parse(field_path, "is required.")
                    failed = True
                continue
            parsed = self.parse_field(spec, raw[spec.key], field_path)
            if parsed is _INVALID:
                failed = failed or spec.required
            else:
                values[spec.attribute] = parsed
        if failed:
            self.errors.tainted.add(path)
            return _INVALID
        return cls(**values)

    def parse_field(self, spec: FieldSpec, raw: Any, path: str) -> Any:
        if self._absent(raw) and not spec.required:
            return spec.default
        if raw is None and not spec.required:
            return spec.default
        return self.parse_hint(spec.hint, raw, path, spec)

    def parse_hint(self, hint: Any, raw: Any, path: str, spec: FieldSpec) -> Any:
        members = split_optional(hint)
        raw = self._as_deployed(raw, spec, path, scalar=any(_is_scalar(member) for member in members))
        if raw is _INVALID:
            return _INVALID
        if len(members) > 1:
            return self._parse_union(members, raw, path, spec)
        hint = members[0]
        origin = typing.get_origin(hint)
        if origin is typing.Literal:
            return self._parse_choice(typing.get_args(hint), raw, path)
        if origin is tuple:
            return self._parse_list(typing.get_args(hint)[0], raw, path, spec)
        if origin is dict:
            return self._parse_map(typing.get_args(hint)[1], raw, path, spec)
        if hint is Any:
            return self._parse_value(raw, path)
        if dataclasses.is_dataclass(hint) and hint is not model.Duration:
            return self.parse_object(typing.cast(type, hint), raw, path)
        scalar = _SCALARS[hint]
        return scalar(self, raw, path, spec)

    def _as_deployed(self, raw: Any, spec: FieldSpec, path: str, scalar: bool = True) -> Any:
        """An intrinsic in the section, as this deploy sees it: ``Fn::If`` takes its branch (``AWS::NoValue``:
        the key is absent); where the section needs a literal scalar, the intrinsic's value, or an error saying why
        it cannot be known. Keys that take intrinsics (``value``) keep the others as written; mappings and lists
        written as another intrinsic are refused by the parser as before."""
        if not is_intrinsic(raw):
            return raw
        if self.view is None:  # no template around the section: parameters only
            if spec.value or not (set(raw) == {"Ref"} and isinstance(raw["Ref"], str)):
                return raw
            return self.parameter_values.get(raw["Ref"], raw)
        if "Fn::If" in raw:
            arguments = raw["Fn::If"]
            condition = arguments[0] if isinstance(arguments, list) and len(arguments) == 3 else None
            if not isinstance(condition, str) or condition not in self.view.conditions:
                message = "is an Fn::If that names no condition under Conditions: write [condition, if true, if false]."
                self.errors.add_parse(path, message)
                return _INVALID
            return self._as_deployed(self.view.deployed(raw), spec, path, scalar)
        if spec.value or not scalar:
            return raw
        known = self.view.known(raw)
        if isinstance(known, Unknown):
            self.errors.add_parse(path, f"{known.describe()}, and the macro needs its value now: write it literally.")
            return _INVALID
        return known

    def _absent(self, raw: Any) -> bool:
        """An item written ``!If [cond, ..., !Ref AWS::NoValue]`` whose taken branch is ``AWS::NoValue``."""
        return self.view is not None and is_intrinsic(raw) and self.view.deployed(raw) is NO_VALUE

    def _parse_union(self, members: tuple[Any, ...], raw: Any, path: str, spec: FieldSpec) -> Any:
        if isinstance(raw, str) and str in members:
            return raw
        objects = [member for member in members if isinstance(member, type) and dataclasses.is_dataclass(member)]
        if isinstance(raw, Mapping) and objects:
            return self.parse_object(objects[0], raw, path)
        expected = " or ".join(_describe_hint(member) for member in members)
        self.errors.add_parse(path, f"must be {expected}, not {describe(raw)}.")
        return _INVALID

    def _parse_choice(self, choices: tuple[str, ...], raw: Any, path: str) -> Any:
        if isinstance(raw, str) and raw in choices:
            return raw
        listed = ", ".join(choices)
        hint = did_you_mean(raw, choices) if isinstance(raw, str) else ""
        self.errors.add_parse(path, f"{describe(raw)} is not one of {listed}.{hint}")
        return _INVALID

    def _parse_list(self, item_hint: Any, raw: Any, path: str, spec: FieldSpec) -> Any:
        if not isinstance(raw, list):
            self.errors.add_parse(path, f"must be a list, not {describe(raw)}.")
            return _INVALID
        if spec.min_items and len(raw) < spec.min_items:
            self.errors.add_parse(path, f"must have at least {spec.min_items} item(s).")
            return _INVALID
        raw = [item for item in raw if not self._absent(item)]
        items = [self.parse_hint(item_hint, item, join_path(path, index), spec) for index, item in enumerate(raw)]
        if any(item is _INVALID for item in items):
            # The valid items keep their indexes as written: the checks still report on them (SPEC §2).
            return PartialList((index, item) for index, item in enumerate(items) if item is not _INVALID)
        return tuple(items)

    def _parse_map(self, value_hint: Any, raw: Any, path: str, spec: FieldSpec) -> Any:
        if not isinstance(raw, Mapping) or is_intrinsic(raw):
            self.errors.add_parse(
                path, f"must be a mapping of names to {_describe_hint(value_hint)}, not {describe(raw)}."
            )
            return _INVALID
        pattern, rule = (
            (_NAME, "letters, digits, '-' and '_', 1 to 255 characters")
            if spec.key in _NAMED_MAPS
            else (_ENV_NAME, "letters, digits and '_', not starting with a digit")
        )
        parsed: dict[str, Any] = {}
        failed = False
        for name, item in raw.items():
            if self._absent(item):
                continue
            item_path = join_path(path, str(name))
            if not isinstance(name, str) or not pattern.match(name):
                self.errors.add_parse(item_path, f"{describe(name)} is not a valid name: use {rule}.")
                self.broken_names.add(str(name))
                failed = True
                continue
            value = self.parse_hint(value_hint, item, item_path, spec)
            if value is _INVALID:
                failed = True
                self.broken_names.add(name)
            else:
                parsed[name] = value
        # A route's weights only make sense together; named maps keep their valid entries.
        return _INVALID if failed and spec.key == "Targets" else parsed

    def _parse_value(self, raw: Any, path: str) -> Any:
        if isinstance(raw, str) and raw:
            return raw
        if isinstance(raw, (int, float)) and not isinstance(raw, bool):
            return str(raw)
        if is_intrinsic(raw):
            return raw
        self.errors.add_parse(path, f"must be a non-empty string or an intrinsic function, not {describe(raw)}.")
        return _INVALID


def _parse_int(parser: SectionParser, raw: Any, path: str, spec: FieldSpec) -> Any:
    number: int | None = None
    if isinstance(raw, int) and not isinstance(raw, bool):
        number = raw
    elif isinstance(raw, str) and re.fullmatch(r"-?\d{1,30}", raw.strip()):  # int() refuses > 4300 digits
        number = int(raw)
    if number is None:
        parser.errors.add_parse(path, f"must be an integer, not {describe(raw)}.")
        return _INVALID
    if (spec.minimum is not None and number < spec.minimum) or (spec.maximum is not None and number > spec.maximum):
        parser.errors.add_parse(path, f"{number} is out of range: {_range_text(spec)}.")
        return _INVALID
    return number


def _parse_bool(parser: SectionParser, raw: Any, path: str, spec: FieldSpec) -> Any:
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, str) and raw.lower() in ("true", "false"):
        return raw.lower() == "true"
    parser.errors.add_parse(path, f"must be true or false, not {describe(raw)}.")
    return _INVALID


def _parse_str(parser: SectionParser, raw: Any, path: str, spec: FieldSpec) -> Any:
    if isinstance(raw, str) and raw:
        return raw
    parser.errors.add_parse(path, f"must be a non-empty string, not {describe(raw)}.")
    return _INVALID


def _parse_duration(parser: SectionParser, raw: Any, path: str, spec: FieldSpec) -> Any:
    match = _DURATION.match(raw) if isinstance(raw, str) else None
    if not match:
        parser.errors.add_parse(
            path, f"{describe(raw)} is not a duration: write a whole number and a unit, e.g. 250ms, 15s, 5m."
        )
        return _INVALID
    return model.Duration(int(match.group(1)) * _DURATION_UNITS[match.group(2)], raw)


_SCALARS = {int: _parse_int, bool: _parse_bool, str: _parse_str, model.Duration: _parse_duration}


def _is_scalar(hint: Any) -> bool:
    """A hint whose value is one literal (a number, string, boolean, choice or duration), not a mapping or list."""
    return hint in (int, str, bool, model.Duration) or typing.get_origin(hint) is typing.Literal


def _range_text(spec: FieldSpec) -> str:
    if spec.minimum is not None and spec.maximum is not None:
        return f"it must be from {spec.minimum} to {spec.maximum}"
    if spec.minimum is not None:
        return f"it must be {spec.minimum} or more"
    return f"it must be {spec.maximum} or less"


def _key_list(cls: type) -> str:
    return ", ".join(spec.key for spec in fields_of(cls))


def _describe_hint(hint: Any) -> str:
    if hint is str:
        return "a string"
    if hint is int:
        return "an integer"
    if dataclasses.is_dataclass(hint):
        return f"a mapping with the keys {_key_list(typing.cast(type, hint))}"
    return "a value"
