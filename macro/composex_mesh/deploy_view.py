"""The template as CloudFormation will deploy it this time (SPEC §7): the one place that knows its semantics.

CloudFormation runs the macro at every create and update with that deploy's parameter values, so the macro
reads the template the way CloudFormation is about to: ``Conditions`` are evaluated, ``Fn::If`` takes its
branch, ``AWS::NoValue`` removes what it stands in, a resource whose ``Condition`` is false does not exist,
and ``Ref`` to parameters and pseudo parameters, ``Fn::Sub``, ``Fn::Join``, ``Fn::Select``, ``Fn::Split`` and
``Fn::FindInMap`` give their values where every input is known.

Two readings, in the manner of the AWS SAM translator's intrinsics resolver (one action per function):

- ``deployed(value)``: the value as this deploy sees it, with ``Fn::If`` and ``AWS::NoValue`` resolved and
  every other intrinsic kept as written: what the macro may pass on into the resources it generates;
- ``known(value)``: the literal value, or an ``Unknown`` that names the function that hides it (a
  ``Fn::GetAtt``, a ``Fn::ImportValue``, ``AWS::StackName``, a parameter without a value).

No message here quotes a parameter's value (a ``NoEcho`` parameter's value must never be shown).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .errors import ErrorCollector

NO_VALUE_REF = "AWS::NoValue"


class _NoValue:
    """What ``{"Ref": "AWS::NoValue"}`` evaluates to: the property or list item is absent."""

    _instance: _NoValue | None = None

    def __new__(cls) -> _NoValue:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "NO_VALUE"


NO_VALUE: Any = _NoValue()


@dataclass(frozen=True)
class Unknown:
    """A value this deploy cannot know before CloudFormation creates resources: why, in the user's terms."""

    function: str
    """What hides the value: ``Fn::GetAtt``, ``Fn::ImportValue``, ``Ref to AWS::StackName``..."""
    missing_parameter: str | None = None
    """Set when the value is a parameter that has neither a value nor a ``Default``."""

    def describe(self) -> str:
        if self.missing_parameter is not None:
            return (
                f"uses parameter '{self.missing_parameter}', which has no value: pass "
                f"--parameter {self.missing_parameter}=VALUE (or give the parameter a Default)"
            )
        return f"is {_article(self.function)} {self.function}, whose value is only known once CloudFormation deploys"


PSEUDO_UNKNOWN = ("AWS::StackName", "AWS::StackId", "AWS::NotificationARNs")


def partition_of(region: str) -> str:
    """``AWS::Partition`` of a region: ``aws``, ``aws-cn`` (China), ``aws-us-gov`` (GovCloud), the ISO ones."""
    for prefix, partition in (
        ("cn-", "aws-cn"),
        ("us-gov-", "aws-us-gov"),
        ("us-isob-", "aws-iso-b"),
        ("us-iso-", "aws-iso"),
        ("eu-isoe-", "aws-iso-e"),
        ("us-isof-", "aws-iso-f"),
    ):
        if region.startswith(prefix):
            return partition
    return "aws"


_URL_SUFFIXES = {
    "aws": "amazonaws.com",
    "aws-cn": "amazonaws.com.cn",
    "aws-us-gov": "amazonaws.com",
    "aws-iso": "c2s.ic.gov",
    "aws-iso-b": "sc2s.sgov.gov",
    "aws-iso-e": "cloud.adc-e.uk",
    "aws-iso-f": "csp.hci.ic.gov",
}


def url_suffix_of(region: str) -> str:
    """``AWS::URLSuffix`` of a region."""
    return _URL_SUFFIXES[partition_of(region)]


def is_intrinsic(value: Any) -> bool:
    """``{"Ref": ...}``, ``{"Fn::...": ...}`` or ``{"Condition": ...}``: a one-key function object."""
    if not isinstance(value, Mapping) or len(value) != 1:
        return False
    (name,) = value
    return name == "Ref" or name == "Condition" or (isinstance(name, str) and name.startswith("Fn::"))


def function_name(value: Any) -> str | None:
    """The function of an intrinsic (``Ref``, ``Fn::GetAtt``...), else None."""
    return next(iter(value)) if is_intrinsic(value) else None


def logical_id_of(value: Any) -> str | None:
    """The logical ID a ``Ref`` or ``Fn::GetAtt`` (list or ``"A.B"`` form) points at, else None."""
    if not isinstance(value, Mapping) or len(value) != 1:
        return None
    if "Ref" in value and isinstance(value["Ref"], str):
        return value["Ref"]
    attribute = value.get("Fn::GetAtt")
    if isinstance(attribute, list) and attribute and isinstance(attribute[0], str):
        return attribute[0]
    if isinstance(attribute, str):
        return attribute.split(".", 1)[0]
    return None


def join_path(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


class _Unresolvable(Exception):
    """Raised inside ``known()``: a part of the value cannot be known."""

    def __init__(self, unknown: Unknown) -> None:
        super().__init__(unknown.function)
        self.unknown = unknown


class _Malformed(Exception):
    """Raised inside ``known()``: a function's arguments are not what CloudFormation takes."""


_SUB_VARIABLE = re.compile(r"\$\{([^}]*)\}")


class DeployView:
    """One template, read as this deploy will see it. One instance per expansion.

    ``errors`` receives the problems of the template itself (a condition that cannot be evaluated);
    ``require()`` reports a value that must be known and is not.
    """

    def __init__(
        self,
        fragment: Mapping[str, Any],
        parameter_values: Mapping[str, Any],
        region: str,
        account_id: str,
        errors: ErrorCollector,
    ) -> None:
        self.errors = errors
        self.values = parameter_values
        parameters = fragment.get("Parameters")
        self.declared: Mapping[str, Any] = parameters if isinstance(parameters, Mapping) else {}
        mappings = fragment.get("Mappings")
        self.mappings: Mapping[str, Any] = mappings if isinstance(mappings, Mapping) else {}
        conditions = fragment.get("Conditions")
        self.conditions: Mapping[str, Any] = conditions if isinstance(conditions, Mapping) else {}
        resources = fragment.get("Resources")
        self.all_resources: Mapping[str, Any] = resources if isinstance(resources, Mapping) else {}
        self.pseudo: dict[str, Any] = {
            "AWS::Region": region,
            "AWS::AccountId": account_id,
            "AWS::Partition": partition_of(region),
            "AWS::URLSuffix": url_suffix_of(region),
        }
        self._conditions: dict[str, bool] = {}
        self._evaluating: list[str] = []
        self._properties: dict[str, Mapping[str, Any]] = {}
        self._reported: set[tuple[str, str]] = set()
        self._functions: dict[str, Callable[[Any], Any]] = {
            "Ref": self._ref,
            "Fn::If": self._if,
            "Fn::Sub": self._sub,
            "Fn::Join": self._join,
            "Fn::Select": self._select,
            "Fn::Split": self._split,
            "Fn::FindInMap": self._find_in_map,
            "Fn::Equals": self._equals,
            "Fn::And": self._and,
            "Fn::Or": self._or,
            "Fn::Not": self._not,
            "Condition": self._condition_function,
        }
        self.resources: Mapping[str, Any] = _ExistingResources(self)
        """The resources that exist in this deploy (no Condition, or a true one), as written. A condition is
        evaluated when a resource is looked up: one that nothing reads needs no parameter value."""

    # -- conditions and resources -----------------------------------------------------------------------

    def condition(self, name: Any) -> bool:
        """The value of a named condition this deploy; one that cannot be evaluated is reported, and false."""
        if not isinstance(name, str) or name not in self.conditions:
            where = "Conditions" if self.conditions else "Resources"
            self._report(where, f"'{name}' is not a condition under Conditions; define it, or fix the name.")
            return False
        if name in self._conditions:
            return self._conditions[name]
        path = f"Conditions.{name}"
        if name in self._evaluating:
            cycle = " -> ".join([*self._evaluating[self._evaluating.index(name) :], name])
            raise _Malformed(f"it refers to itself ({cycle}); CloudFormation rejects circular conditions.")
        self._evaluating.append(name)
        try:
            value = self._known(self.conditions[name])
        except _Unresolvable as error:
            self._report(path, f"cannot be evaluated: it {error.unknown.describe()}.")
            value = False
        except _Malformed as error:
            self._report(path, f"cannot be evaluated: {error}")
            value = False
        finally:
            self._evaluating.pop()
        if not isinstance(value, bool):
            self._report(path, "must be a condition function (Fn::Equals, Fn::And, Fn::Or, Fn::Not, Condition).")
            value = False
        self._conditions[name] = value
        return value

    def exists(self, logical_id: str) -> bool:
        """True when the resource is in the template and its Condition (if any) holds this deploy."""
        if logical_id not in self.all_resources:
            return False
        resource = self.all_resources[logical_id]
        if not isinstance(resource, Mapping):
            return True
        return "Condition" not in resource or self.condition(resource["Condition"])

    def of_type(self, resource_type: str) -> list[str]:
        """The logical IDs of the existing resources of a type, in template order."""
        return [
            logical_id
            for logical_id, resource in self.all_resources.items()
            if isinstance(resource, Mapping) and resource.get("Type") == resource_type and self.exists(logical_id)
        ]

    def absent_reason(self, logical_id: str) -> str | None:
        """Why a resource of the template does not exist this deploy (its false Condition), else None."""
        resource = self.all_resources.get(logical_id)
        if logical_id in self.resources or not isinstance(resource, Mapping):
            return None
        return f"has Condition '{resource.get('Condition')}', which is false in this deploy"

    def type_of(self, logical_id: str) -> str | None:
        """The Type of an existing resource, else None."""
        resource = self.resources.get(logical_id)
        kind = resource.get("Type") if isinstance(resource, Mapping) else None
        return kind if isinstance(kind, str) else None

    def properties(self, logical_id: str) -> Mapping[str, Any]:
        """An existing resource's Properties as deployed (``Fn::If`` taken, ``AWS::NoValue`` removed)."""
        if logical_id not in self._properties:
            resource = self.resources.get(logical_id)
            props = resource.get("Properties") if isinstance(resource, Mapping) else None
            deployed = self.deployed(props) if isinstance(props, Mapping) else {}
            self._properties[logical_id] = deployed if isinstance(deployed, Mapping) else {}
        return self._properties[logical_id]

    # -- values -----------------------------------------------------------------------------------------

    def deployed(self, value: Any) -> Any:
        """``value`` as this deploy sees it: ``Fn::If`` takes its branch, ``AWS::NoValue`` is ``NO_VALUE``
        (and drops the key or list item it stands in); every other intrinsic is kept as written."""
        if isinstance(value, Mapping):
            if is_intrinsic(value):
                name = function_name(value)
                if name == "Ref" and value["Ref"] == NO_VALUE_REF:
                    return NO_VALUE
                if name == "Fn::If":
                    arguments = value["Fn::If"]
                    if isinstance(arguments, list) and len(arguments) == 3:
                        return self.deployed(arguments[1] if self.condition(arguments[0]) else arguments[2])
                    return value
                if name in ("Ref", "Condition"):
                    return value
            items = ((key, self.deployed(item)) for key, item in value.items())
            return {key: item for key, item in items if item is not NO_VALUE}
        if isinstance(value, list):
            return [item for item in (self.deployed(entry) for entry in value) if item is not NO_VALUE]
        return value

    def items(self, value: Any) -> list[tuple[int, Any]]:
        """The items of a deployed list with their indexes as written (items that are ``NO_VALUE`` skipped)."""
        if not isinstance(value, list):
            return []
        deployed = ((index, self.deployed(item)) for index, item in enumerate(value))
        return [(index, item) for index, item in deployed if item is not NO_VALUE]

    def known(self, value: Any) -> Any:
        """The literal value of ``value`` this deploy, or an ``Unknown`` that says what hides it.

        ``AWS::NoValue`` gives ``NO_VALUE``. A malformed function gives an ``Unknown`` naming it.
        """
        try:
            return self._known(value)
        except _Unresolvable as error:
            return error.unknown
        except _Malformed:
            return Unknown(function_name(value) or "malformed value")

    def require(self, value: Any, path: str, what: str, instead: str) -> Any:
        """The literal value, else None and an error at ``path``: ``what`` <why>; ``instead`` (what to write)."""
        result = self.known(value)
        if isinstance(result, Unknown):
            self.errors.add(path, f"{what} {result.describe()}, and the macro needs it now: {instead}.")
            return None
        return result

    def raw_at(self, root: Any, steps: tuple[str | int, ...]) -> Any:
        """The object written at ``steps`` (keys and indexes as written) under ``root``, through the taken
        branch of any ``Fn::If`` on the way: where a patch writes into the user's own structure."""
        node = self._taken(root)
        for step in steps:
            node = self._taken(node[step])
        return node

    def _taken(self, value: Any) -> Any:
        while function_name(value) == "Fn::If" and isinstance(value["Fn::If"], list) and len(value["Fn::If"]) == 3:
            condition, when_true, when_false = value["Fn::If"]
            value = when_true if self.condition(condition) else when_false
        return value

    def same(self, left: Any, right: Any) -> bool:
        """True when two values name the same thing this deploy: equal once evaluated, ``Ref X`` and
        ``Fn::GetAtt X.Id`` / ``X.GroupId`` of one resource, the two spellings of ``Fn::GetAtt``."""
        return bool(self.identity(left) == self.identity(right))

    def identity(self, value: Any) -> Any:
        """A comparable form of a value (see ``same``)."""
        value = self.deployed(value)
        result = self.known(value)
        if not isinstance(result, Unknown):
            return ("value", _hashable(result))
        target = logical_id_of(value)
        if target is not None and target in self.all_resources:
            attribute = value.get("Fn::GetAtt") if isinstance(value, Mapping) else None
            name = attribute[1] if isinstance(attribute, list) and len(attribute) > 1 else None
            if isinstance(attribute, str) and "." in attribute:
                name = attribute.split(".", 1)[1]
            if name in (None, "Id", "GroupId"):
                return ("resource", target)
            return ("attribute", target, str(name))
        return ("expression", _hashable(value))

    # -- known(): one action per function -----------------------------------------------------------------

    def _known(self, value: Any) -> Any:
        if isinstance(value, Mapping):
            name = function_name(value)
            if name is not None:
                action = self._functions.get(name)
                if action is None:
                    raise _Unresolvable(Unknown(name))
                return action(value[name])
            items = ((key, self._known(item)) for key, item in value.items())
            return {key: item for key, item in items if item is not NO_VALUE}
        if isinstance(value, list):
            return [item for item in (self._known(entry) for entry in value) if item is not NO_VALUE]
        return value

    def _ref(self, name: Any) -> Any:
        if not isinstance(name, str):
            raise _Malformed("Ref takes the name of a parameter, pseudo parameter or resource.")
        if name == NO_VALUE_REF:
            return NO_VALUE
        if name in self.pseudo:
            return self.pseudo[name]
        if name in PSEUDO_UNKNOWN:
            raise _Unresolvable(Unknown(f"Ref to {name}"))
        if name in self.values:
            return self.values[name]
        if name in self.declared:
            raise _Unresolvable(Unknown("Ref", missing_parameter=name))
        if name in self.all_resources:
            raise _Unresolvable(Unknown(f"Ref to resource {name}"))
        raise _Unresolvable(Unknown(f"Ref to '{name}' (neither a parameter nor a resource)"))

    def _if(self, arguments: Any) -> Any:
        if not isinstance(arguments, list) or len(arguments) != 3:
            raise _Malformed("Fn::If takes [condition name, value if true, value if false].")
        return self._known(arguments[1] if self.condition(arguments[0]) else arguments[2])

    def _condition_function(self, name: Any) -> bool:
        return self.condition(name)

    def _sub(self, arguments: Any) -> Any:
        variables: Mapping[str, Any] = {}
        if isinstance(arguments, str):
            text = arguments
        elif (
            isinstance(arguments, list)
            and len(arguments) == 2
            and isinstance(arguments[0], str)
            and isinstance(arguments[1], Mapping)
        ):
            text, variables = arguments[0], arguments[1]
        else:
            raise _Malformed("Fn::Sub takes a string, or [string, {variable: value}].")

        def substitute(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in variables:
                result = self._known(variables[name])
            elif "." in name and name.split(".", 1)[0] in self.all_resources:
                raise _Unresolvable(Unknown("Fn::GetAtt"))
            else:
                result = self._ref(name)
            return _text(result, "Fn::Sub")

        return _SUB_VARIABLE.sub(substitute, text)

    def _join(self, arguments: Any) -> Any:
        if not isinstance(arguments, list) or len(arguments) != 2 or not isinstance(arguments[0], str):
            raise _Malformed("Fn::Join takes [delimiter, [values]].")
        values = self._known(arguments[1])
        if not isinstance(values, list):
            raise _Malformed("Fn::Join takes a list of values to join.")
        return arguments[0].join(_text(item, "Fn::Join") for item in values)

    def _select(self, arguments: Any) -> Any:
        if not isinstance(arguments, list) or len(arguments) != 2:
            raise _Malformed("Fn::Select takes [index, [values]].")
        index = self._known(arguments[0])
        values = self._known(arguments[1])
        if isinstance(index, str) and index.isascii() and index.isdigit():
            index = int(index)
        if not isinstance(index, int) or isinstance(index, bool) or not isinstance(values, list):
            raise _Malformed("Fn::Select takes [index, [values]].")
        if not 0 <= index < len(values):
            raise _Malformed(f"Fn::Select index {index} is outside the list of {len(values)} values.")
        return values[index]

    def _split(self, arguments: Any) -> Any:
        if not isinstance(arguments, list) or len(arguments) != 2 or not isinstance(arguments[0], str):
            raise _Malformed("Fn::Split takes [delimiter, string].")
        text = self._known(arguments[1])
        if not isinstance(text, str) or not arguments[0]:
            raise _Malformed("Fn::Split takes [delimiter, string].")
        return text.split(arguments[0])

    def _find_in_map(self, arguments: Any) -> Any:
        if not isinstance(arguments, list) or len(arguments) not in (3, 4):
            raise _Malformed("Fn::FindInMap takes [map name, top-level key, second-level key].")
        keys = [_text(self._known(item), "Fn::FindInMap") for item in arguments[:3]]
        table = self.mappings.get(keys[0])
        entry = table.get(keys[1]) if isinstance(table, Mapping) else None
        if isinstance(entry, Mapping) and keys[2] in entry:
            return self._known(entry[keys[2]])
        default = arguments[3] if len(arguments) == 4 else None
        if isinstance(default, Mapping) and "DefaultValue" in default:
            return self._known(default["DefaultValue"])
        raise _Malformed(f"Fn::FindInMap finds no {keys[1]}/{keys[2]} in mapping '{keys[0]}'.")

    def _equals(self, arguments: Any) -> bool:
        if not isinstance(arguments, list) or len(arguments) != 2:
            raise _Malformed("Fn::Equals takes [value, value].")
        left, right = (_comparable(self._known(item)) for item in arguments)
        return bool(left == right)

    def _and(self, arguments: Any) -> bool:
        return all(self._conditions_of(arguments, "Fn::And"))

    def _or(self, arguments: Any) -> bool:
        return any(self._conditions_of(arguments, "Fn::Or"))

    def _not(self, arguments: Any) -> bool:
        values = self._conditions_of(arguments, "Fn::Not")
        if len(values) != 1:
            raise _Malformed("Fn::Not takes one condition.")
        return not values[0]

    def _conditions_of(self, arguments: Any, name: str) -> list[bool]:
        if not isinstance(arguments, list) or not arguments:
            raise _Malformed(f"{name} takes a list of conditions.")
        values = [self._known(item) for item in arguments]
        if not all(isinstance(item, bool) for item in values):
            raise _Malformed(f"{name} takes conditions (Fn::Equals, Fn::And, Fn::Or, Fn::Not, Condition).")
        return values

    def _report(self, path: str, message: str) -> None:
        if (path, message) not in self._reported:
            self._reported.add((path, message))
            self.errors.add(path, message)


class _ExistingResources(Mapping[str, Any]):
    """The template's resources that exist this deploy; conditions are evaluated on lookup."""

    def __init__(self, view: DeployView) -> None:
        self._view = view

    def __getitem__(self, logical_id: str) -> Any:
        if not isinstance(logical_id, str) or not self._view.exists(logical_id):
            raise KeyError(logical_id)
        return self._view.all_resources[logical_id]

    def __contains__(self, logical_id: object) -> bool:
        return isinstance(logical_id, str) and logical_id in self._view.all_resources and self._view.exists(logical_id)

    def __iter__(self) -> Any:
        return (logical_id for logical_id in self._view.all_resources if self._view.exists(logical_id))

    def __len__(self) -> int:
        return sum(1 for _ in self)


def _text(value: Any, function: str) -> str:
    """A scalar as the string CloudFormation substitutes or joins."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, int, float)):
        return str(value)
    raise _Malformed(f"{function} takes strings, not a list or a mapping.")


def _comparable(value: Any) -> Any:
    if isinstance(value, list):
        return [_comparable(item) for item in value]
    if isinstance(value, (bool, int, float)):
        return _text(value, "Fn::Equals")
    return value


def _hashable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return tuple(sorted((str(key), _hashable(item)) for key, item in value.items()))
    if isinstance(value, list):
        return tuple(_hashable(item) for item in value)
    return value


def _article(word: str) -> str:
    return "an" if word[:1].lower() in "aeiou" else "a"
